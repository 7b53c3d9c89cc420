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
