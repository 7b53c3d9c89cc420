/** Many rp-onnx command lines in one child process (see cli-in-process.ts): exit code, stdout, stderr of each. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliRun } from './cli-in-process.js';

export type { CliRun };

const runner = join(dirname(fileURLToPath(import.meta.url)), 'cli-in-process.ts');

export function cliMany(cases: string[][]): CliRun[] {
  const r = spawnSync(process.execPath, ['--import', 'tsx', runner, JSON.stringify(cases)], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as CliRun[];
}

/** A usage error as every command reports it: exit 2, nothing on stdout, one line `error: ... (see 'PATH --help')`. */
export function assertUsage(r: CliRun, path: string, what: string, message?: RegExp): void {
  assert.equal(r.code, 2, `${what}: exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '', `${what}: nothing on stdout`);
  const lines = r.stderr.split('\n');
  assert.equal(lines.length, 2, `${what}: one line, got ${JSON.stringify(r.stderr)}`);
  assert.match(lines[0]!, /^error: \S/, what);
  assert.ok(lines[0]!.endsWith(` (see '${path} --help')`), `${what}: hint in ${JSON.stringify(lines[0])}`);
  if (message) assert.match(lines[0]!, message, what);
}
