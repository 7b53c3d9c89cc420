/**
 * The test command provisions the system packages it needs (scripts/test-deps.mjs): which are
 * missing -> which command, checked with fake probes and a fake runner (nothing is installed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TEST_PACKAGES, ensureTestDeps, missingPackages, provisionPlan } from '../scripts/test-deps.mjs';

test('test deps: one list of the Debian packages the suite needs', () => {
  assert.deepEqual(TEST_PACKAGES.map((p) => p.name), ['libonnx-testdata', 'chromium', 'redis-server']);
  for (const p of TEST_PACKAGES) assert.ok((p.path !== undefined) !== (p.commands !== undefined), `${p.name}: one way to find it`);
  // CI and the README's Quick start use npm test itself, not a list of their own.
  const ci = readFileSync('.ci/run', 'utf8');
  assert.doesNotMatch(ci, /apt-get|libonnx-testdata|chromium/);
  assert.match(ci, /^npm ci --no-audit --no-fund\nnpm test\n$/m);
  assert.match(readFileSync('scripts/run-tests.mjs', 'utf8'), /if \(!ensureTestDeps\(\)\) process\.exit\(1\);/);
  const quick = /## Quick start\n\n```sh\n([^`]*)```/.exec(readFileSync('README.md', 'utf8'))![1]!;
  assert.deepEqual(quick.trim().split('\n'), ['npm ci && npm run demo', 'npm test']);
});

test('test deps: a package counts as present by its file or any of its commands', () => {
  const probe = (files: string[], commands: string[]) => ({ exists: (p: string) => files.includes(p), onPath: (c: string) => commands.includes(c) });
  assert.deepEqual(missingPackages(undefined, probe([], [])), ['libonnx-testdata', 'chromium', 'redis-server']);
  assert.deepEqual(missingPackages(undefined, probe(['/usr/share/libonnx-testdata/data'], ['google-chrome'])), ['redis-server']);
  assert.deepEqual(missingPackages(undefined, probe(['/usr/share/libonnx-testdata/data'], ['chromium-browser', 'redis-server'])), []);
});

test('test deps: which packages missing -> which command', () => {
  assert.deepEqual(provisionPlan({ missing: [], isRoot: false, hasAptGet: false }), { action: 'none' });
  assert.deepEqual(provisionPlan({ missing: ['chromium', 'redis-server'], isRoot: true, hasAptGet: true }), {
    action: 'install',
    steps: [['apt-get', 'update', '-q'], ['apt-get', 'install', '-y', '-q', '--no-install-recommends', 'chromium', 'redis-server']],
  });
  assert.deepEqual(provisionPlan({ missing: ['libonnx-testdata'], isRoot: false, hasAptGet: true }), {
    action: 'instruct', command: 'sudo apt-get update && sudo apt-get install -y -q --no-install-recommends libonnx-testdata',
  });
  const elsewhere = provisionPlan({ missing: ['chromium'], isRoot: true, hasAptGet: false });
  assert.equal(elsewhere.action, 'instruct');
  assert.match((elsewhere as { command: string }).command, /install chromium \(Debian package names\).*RP_ONNX_TEST_DEPS=skip/);
});

test('test deps: ensureTestDeps installs when root with apt-get, says what it runs, else prints the command and fails', () => {
  const session = (missingBefore: string[], missingAfter: string[], isRoot: boolean, hasAptGet: boolean, status = 0) => {
    const log: string[] = [];
    const ran: string[][] = [];
    let calls = 0;
    const ok = ensureTestDeps({
      env: {}, log: (s) => log.push(s), run: (cmd, args) => { ran.push([cmd, ...args]); return status; },
      facts: () => ({ missing: calls++ === 0 ? missingBefore : missingAfter, isRoot, hasAptGet }),
    });
    return { ok, log, ran };
  };
  const none = session([], [], false, false);
  assert.deepEqual(none, { ok: true, log: [], ran: [] });

  const root = session(['chromium', 'redis-server'], [], true, true);
  assert.equal(root.ok, true);
  assert.deepEqual(root.ran, [['apt-get', 'update', '-q'], ['apt-get', 'install', '-y', '-q', '--no-install-recommends', 'chromium', 'redis-server']]);
  assert.equal(root.log.length, 1);
  assert.match(root.log[0]!, /^npm test: installing the Debian packages the tests need: chromium redis-server \(apt-get update -q; apt-get install .* chromium redis-server\)$/);

  const user = session(['libonnx-testdata'], [], false, true);
  assert.equal(user.ok, false);
  assert.deepEqual(user.ran, []);
  assert.match(user.log.join('\n'), /\n {2}sudo apt-get update && sudo apt-get install -y -q --no-install-recommends libonnx-testdata\n/);

  const failing = session(['chromium'], ['chromium'], true, true, 100);
  assert.equal(failing.ok, false);
  assert.equal(failing.ran.length, 1, 'stops at the failed apt-get update');
  assert.match(failing.log.at(-1)!, /'apt-get update -q' failed \(exit 100\); install chromium yourself/);

  const stillMissing = session(['chromium'], ['chromium'], true, true);
  assert.equal(stillMissing.ok, false);
  assert.match(stillMissing.log.at(-1)!, /still missing after apt-get: chromium/);

  assert.equal(ensureTestDeps({ env: { RP_ONNX_TEST_DEPS: 'skip' }, facts: () => { throw new Error('not consulted'); } }), true);
});
