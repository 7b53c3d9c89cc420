// Runs every test/**/*.test.ts with node's test runner (TypeScript loaded through tsx).
// Extra arguments are passed on, e.g. `npm test -- --test-name-pattern=conv`.
// First it makes sure the system packages the suite needs are there (scripts/test-deps.mjs):
// installed when it can, else it prints the command to run and exits 1.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ensureTestDeps } from './test-deps.mjs';

if (!ensureTestDeps()) process.exit(1);

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const args = process.argv.slice(2);
const files = args.some((a) => a.endsWith('.ts')) ? [] : find('test').sort();
// onnxruntime's threads sleep instead of spinning (src/runtime/session.ts): the suite runs many
// sessions and child processes side by side, where spinning threads only take cores from them.
const env = { ...process.env, RP_ONNX_SPIN: process.env.RP_ONNX_SPIN ?? '0' };
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...args, ...files], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
