// The system packages the test suite needs, in one place. `npm test` (scripts/run-tests.mjs)
// calls ensureTestDeps() before running anything: what is missing is installed with apt-get
// when this process is root on a Debian-like system; otherwise the exact command to run is
// printed and the test command exits non-zero. .ci/run relies on the same call.
// `node scripts/test-deps.mjs` prints the plan without installing anything.
// RP_ONNX_TEST_DEPS=skip skips the check (e.g. on a system whose packages have other names).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Each Debian package, why the suite needs it, and how to tell it is there without dpkg (any of
 * `commands` on PATH, or `path` existing), so a system that has it another way is not bothered.
 */
export const TEST_PACKAGES = [
  { name: 'libonnx-testdata', why: "ONNX's backend test models for the round-trip and shape-inference tests", path: '/usr/share/libonnx-testdata/data' },
  { name: 'chromium', why: 'renders the HTML audit report in test/report-html.test.ts', commands: ['chromium', 'chromium-browser', 'google-chrome'] },
  { name: 'redis-server', why: 'the job-queue tests', commands: ['redis-server'] },
];

export function onPath(command, env = process.env) {
  return (env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, command)));
}

/** The packages of `packages` that are not there. */
export function missingPackages(packages = TEST_PACKAGES, probe = { exists: existsSync, onPath: (c) => onPath(c) }) {
  return packages.filter((p) => !(p.path !== undefined ? probe.exists(p.path) : (p.commands ?? []).some((c) => probe.onPath(c)))).map((p) => p.name);
}

const INSTALL_FLAGS = ['install', '-y', '-q', '--no-install-recommends'];

/**
 * What to do about the missing packages (pure: the decision the tests check).
 *   { action: 'none' }                                  nothing missing
 *   { action: 'install', steps: [[cmd, ...args], ...] } run these (root, apt-get present)
 *   { action: 'instruct', command: '...' }              print this and exit non-zero
 */
export function provisionPlan({ missing, isRoot, hasAptGet }) {
  if (missing.length === 0) return { action: 'none' };
  if (isRoot && hasAptGet) {
    return { action: 'install', steps: [['apt-get', 'update', '-q'], ['apt-get', ...INSTALL_FLAGS, ...missing]] };
  }
  const sudo = isRoot ? '' : 'sudo ';
  if (hasAptGet) {
    return { action: 'instruct', command: `${sudo}apt-get update && ${sudo}apt-get ${INSTALL_FLAGS.join(' ')} ${missing.join(' ')}` };
  }
  return { action: 'instruct', command: `install ${missing.join(', ')} (Debian package names) with this system's package manager, or set RP_ONNX_TEST_DEPS=skip` };
}

function describe(missing) {
  return missing.map((m) => `${m} (${TEST_PACKAGES.find((p) => p.name === m)?.why ?? 'needed by the tests'})`).join('; ');
}

/**
 * Makes sure the suite's packages are there. Returns true when the tests can run; prints what it
 * does or what to do on stderr.
 */
export function ensureTestDeps({
  env = process.env,
  log = (s) => process.stderr.write(`${s}\n`),
  run = (cmd, args) => spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...env, DEBIAN_FRONTEND: 'noninteractive' } }).status,
  facts = () => ({ missing: missingPackages(), isRoot: process.getuid?.() === 0, hasAptGet: onPath('apt-get', env) }),
} = {}) {
  if (env.RP_ONNX_TEST_DEPS === 'skip') return true;
  const { missing, isRoot, hasAptGet } = facts();
  const plan = provisionPlan({ missing, isRoot, hasAptGet });
  if (plan.action === 'none') return true;
  if (plan.action === 'instruct') {
    log(`npm test: the tests need ${describe(missing)}. Run:\n  ${plan.command}\nthen npm test again.`);
    return false;
  }
  log(`npm test: installing the Debian packages the tests need: ${missing.join(' ')} (${plan.steps.map((s) => s.join(' ')).join('; ')})`);
  for (const [cmd, ...args] of plan.steps) {
    const status = run(cmd, args);
    if (status !== 0) {
      log(`npm test: '${[cmd, ...args].join(' ')}' failed (exit ${status}); install ${missing.join(' ')} yourself, then npm test again.`);
      return false;
    }
  }
  const still = facts().missing;
  if (still.length > 0) {
    log(`npm test: still missing after apt-get: ${still.join(' ')}`);
    return false;
  }
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const missing = missingPackages();
  const plan = provisionPlan({ missing, isRoot: process.getuid?.() === 0, hasAptGet: onPath('apt-get') });
  process.stdout.write(`${JSON.stringify({ packages: TEST_PACKAGES.map((p) => p.name), missing, plan })}\n`);
}
