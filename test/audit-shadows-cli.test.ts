import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveModel } from '../src/graph/io.js';
import { runCli } from './helpers/cli.js';
import { logisticModel } from './helpers/synthetic-mia.js';

test('audit: shadow-attack flags are checked before any work, one line each, exit 2 (1 for an unreachable queue)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-audit-flags-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const m = join(dir, 'm.onnx');
  saveModel(logisticModel(), m);
  const cases: [string[], RegExp, number][] = [
    [['--shadows', '4', '--attack', 'lira-online'], /--shadows needs --init/, 2],
    [['--attack', 'rmia'], /rmia needs --shadows K and --init/, 2],
    [['--shadows', '1', '--init', m], /--shadows must be an integer >= 2/, 2],
    [['--shadows', '2', '--init', m, '--augment', 'rot'], /--augment must be one of none, hflip/, 2],
    [['--queue', 'redis://127.0.0.1:1'], /--queue, --artifacts and --non-members-from go with --shadows/, 2],
    [['--attack', 'nope'], /unknown attack 'nope'/, 2],
  ];
  for (const [args, re, code] of cases) {
    const r = runCli(['audit', m, ...args]);
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
