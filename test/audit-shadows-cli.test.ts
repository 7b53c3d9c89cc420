import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveModel } from '../src/graph/io.js';
import { runCli } from './helpers/cli.js';
import { gaussianData, logisticModel, writeDataDir } from './helpers/synthetic-mia.js';
import { encodeExampleBitmap } from '../src/audit/training-record.js';
import { Random } from '../src/random.js';

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

test('audit draws members only from the examples the training record says were used (contract bitmap)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-audit-used-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const rng = new Random(2);
  writeDataDir(join(dir, 'data'), gaussianData(40, rng), gaussianData(30, rng));
  const model = logisticModel();
  model.setMetadata('rp-onnx.training', JSON.stringify({
    data: 'x', examples: 40, steps: 1, epochs: 1, examplesUsed: 6, examplesUsedBitmap: encodeExampleBitmap([1, 4, 6, 9, 12, 20], 40),
    recipe: { steps: 1, batchSize: 6, lr: 0.1, optimizer: 'sgd', momentum: 0, weightDecay: 0, schedule: 'constant', batchNorm: 'train', seed: 0, shuffle: true },
    finalTestAccuracy: null,
  }));
  const m = join(dir, 'm.onnx');
  saveModel(model, m);
  const r = runCli(['audit', m, '--train-data', join(dir, 'data'), '--attacks', 'loss', '--threads', '1', '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { members: number }).members, 6);
});
