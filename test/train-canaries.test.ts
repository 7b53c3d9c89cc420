/**
 * The one-run audit around trainModel (`train --audit-canaries M`): canaries appended through the
 * training-audit hook, scored after training, the result in the training record; sound under
 * DP-SGD with fresh noise (never above the accountant's epsilon), positive without DP, and the
 * record's members are the ordinary training examples only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trainModel } from '../src/train/train-model.js';
import { oneRunAuditHook, type OneRunAuditRecord } from '../src/audit/one-run-audit.js';
import { readTrainingRecord } from '../src/audit/training-record.js';
import { Random } from '../src/random.js';
import { gaussianData, logisticModel, writeDataDir } from './helpers/synthetic-mia.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveModel } from '../src/graph/io.js';
import { runCli } from './helpers/cli.js';

const recipe = { epochs: 40, batchSize: 16, lr: 0.05, optimizer: 'sgd', momentum: 0.9, weightDecay: 0, schedule: 'constant', batchNorm: 'train', seed: 1, shuffle: true };

test('without DP on a small training set the one-run bound is clearly positive, and the record covers the ordinary examples only', async (t) => {
  const train = gaussianData(48, new Random(31), 'train');
  const out = await trainModel({
    model: logisticModel(), train, dataName: 'synthetic', recipe, options: { threads: 1 },
    audit: oneRunAuditHook({ canaries: 48, seed: 4, guessIn: 10, guessOut: 10, threads: 1 }),
  });
  const a = out.audit!.result as unknown as OneRunAuditRecord;
  t.diagnostic(`no DP: ${a.correct}/${a.guesses} right (${a.included} of ${a.canaries} canaries included), eps >= ${a.epsilonLowerBound.toFixed(3)} at delta ${a.delta}`);
  assert.equal(out.audit!.key, 'oneRunAudit');
  assert.equal(a.canaries, 48);
  assert.equal(a.guesses, 20);
  assert.equal(a.confidence, 0.95);
  assert.equal(a.kind, 'mislabel');
  // defaultDelta(48) = the largest power of ten <= 0.1/48.
  assert.equal(a.delta, 1e-3);
  assert.ok(a.epsilonLowerBound > 1, `without DP: ${a.epsilonLowerBound}`);
  // Recorded in rp-onnx.training beside the ordinary record, which counts the 48 ordinary examples only.
  const raw = JSON.parse(out.model.getMetadata('rp-onnx.training')!);
  assert.deepEqual(raw.oneRunAudit, a);
  assert.equal(raw.examples, 48);
  const rec = readTrainingRecord(out.model)!;
  assert.equal(rec.examples, 48);
  assert.ok(rec.used.every((i) => i < 48));
});

test('canaries never become members: a short unshuffled run marks only the ordinary examples its batches held', async () => {
  const train = gaussianData(20, new Random(5), 'train');
  const out = await trainModel({
    model: logisticModel(), train, dataName: 'synthetic', recipe: { ...recipe, epochs: undefined, steps: 2, batchSize: 8, shuffle: false }, options: { threads: 1 },
    audit: oneRunAuditHook({ canaries: 10, seed: 2, threads: 1 }),
  });
  // Batches in file order: examples 0-7 and 8-15 of the 20 ordinary ones (canaries come after them).
  const rec = readTrainingRecord(out.model)!;
  assert.equal(rec.examples, 20);
  assert.deepEqual(rec.used, Array.from({ length: 16 }, (_, i) => i));
  assert.equal(out.training.examplesUsed, 16);
  // A run long enough to reach the canaries still records only the 20 ordinary examples.
  const all = await trainModel({
    model: logisticModel(), train, dataName: 'synthetic', recipe: { ...recipe, epochs: undefined, steps: 6, batchSize: 8, shuffle: false }, options: { threads: 1 },
    audit: oneRunAuditHook({ canaries: 10, seed: 2, threads: 1 }),
  });
  assert.equal(all.training.examples, 20);
  assert.equal(all.training.examplesUsed, 20);
  assert.equal(all.training.examplesUsedBitmap, undefined);
});

test('under DP-SGD with fresh noise the one-run bound never exceeds the accountant\'s epsilon', async (t) => {
  const train = gaussianData(48, new Random(31), 'train');
  for (const sigma of [0.7, 1.5]) {
    const out = await trainModel({
      model: logisticModel(), train, dataName: 'synthetic', recipe: { ...recipe, epochs: 15, batchSize: 8, lr: 0.5, momentum: 0 }, options: { threads: 1 },
      dp: { options: { maxGradNorm: 1, delta: 1e-5, noiseMultiplier: sigma, noiseSchedule: 'constant', noiseEndRatio: 1, sampling: 'poisson', clip: 'constant', clipQuantile: 0.5, clipLearningRate: 0.2, noise: 'gaussian', secureRng: true } },
      // No seed: canaries and coins fresh, as the CLI draws them.
      audit: oneRunAuditHook({ canaries: 48, guessIn: 10, guessOut: 10, threads: 1 }),
    });
    const a = out.audit!.result as unknown as OneRunAuditRecord;
    const eps = out.privacy!.epsilon!;
    t.diagnostic(`DP-SGD sigma ${sigma}: accountant eps ${eps.toFixed(3)}, ${a.correct}/${a.guesses} right, one-run eps >= ${a.epsilonLowerBound.toFixed(3)}`);
    assert.ok(Number.isFinite(eps) && out.privacy!.private);
    // The bound is at the run's delta, and the sampling rate counts the canaries put in.
    assert.equal(a.delta, 1e-5);
    const rec = out.privacyRecord as { sampleRate: number; examples: number };
    assert.equal(rec.examples, 48 + a.included);
    assert.ok(Math.abs(rec.sampleRate - 8 / (48 + a.included)) < 1e-12, `q ${rec.sampleRate}`);
    assert.ok(a.epsilonLowerBound <= eps, `one-run ${a.epsilonLowerBound} > accountant ${eps}`);
  }
});

test('train --audit-canaries M: JSON oneRunAudit next to the run, inspect and the audit report show it; flag errors are one line', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-canaries-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const rng = new Random(8);
  writeDataDir(join(dir, 'data'), gaussianData(40, rng), gaussianData(30, rng));
  const init = join(dir, 'init.onnx');
  saveModel(logisticModel(), init);
  const out = join(dir, 'trained.onnx');
  const recipeFlags = ['--data', join(dir, 'data'), '--epochs', '20', '--batch', '16', '--lr', '0.05', '--momentum', '0.9', '--weight-decay', '0', '--schedule', 'constant', '--threads', '1'];
  let r = runCli(['train', init, ...recipeFlags, '--audit-canaries', '32', '-o', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { examples: number; oneRunAudit: Record<string, unknown> };
  assert.equal(j.examples, 40);
  // 10% of 32 canaries guessed IN and 10% OUT: 3 + 3.
  assert.deepEqual(Object.keys(j.oneRunAudit).filter((k) => ['canaries', 'guesses', 'correct', 'epsilonLowerBound', 'confidence'].includes(k)).sort(), ['canaries', 'confidence', 'correct', 'epsilonLowerBound', 'guesses']);
  assert.equal(j.oneRunAudit.canaries, 32);
  assert.equal(j.oneRunAudit.guesses, 6);
  assert.equal(j.oneRunAudit.confidence, 0.95);
  assert.equal(j.oneRunAudit.kind, 'mislabel');
  const insp = runCli(['inspect', out]);
  assert.equal(insp.status, 0, insp.stderr);
  assert.match(insp.stdout, /^one-run audit {2}\d+ of 6 guesses right on 32 mislabel canaries: epsilon >= \d+\.\d{3} at 95% confidence, delta 0\.001 /m);
  assert.match(insp.stdout, /^training {4}data .*, 40 examples,/m);
  const report = join(dir, 'report.html');
  r = runCli(['audit', out, '--train-data', join(dir, 'data'), '--attacks', 'loss', '--threads', '1', '--report', report, '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { members: number }).members, 30);
  const html = readFileSync(report, 'utf8');
  assert.ok(html.includes('<h2>One-run audit of the training run</h2>') && html.includes('<td>no DP-SGD record</td>'));
  // Out-of-distribution canaries need no source examples: more canaries than training examples.
  r = runCli(['train', init, ...recipeFlags, '--epochs', '2', '--audit-canaries', '50', '--canary-kind', 'ood', '-o', join(dir, 'ood.onnx'), '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { oneRunAudit: { kind: string; canaries: number } }).oneRunAudit.kind, 'ood');
  for (const [args, re] of [
    [['--canary-kind', 'ood'], /--canary-kind goes with --audit-canaries/],
    [['--audit-canaries', '1'], /--audit-canaries must be an integer >= 2/],
    [['--audit-canaries', '41'], /41 mislabelled canaries need as many source examples, the data has 40/],
    [['--audit-canaries', '8', '--resume', '--checkpoint-dir', join(dir, 'ck')], /--audit-canaries cannot be combined with --resume/],
  ] as const) {
    const e = runCli(['train', init, ...recipeFlags, '--epochs', '1', ...args, '-o', join(dir, 'x.onnx'), '--force']);
    assert.notEqual(e.status, 0, args.join(' '));
    assert.match(e.stderr, re);
    assert.equal(e.stderr.trim().split('\n').length, 1, e.stderr);
  }
});
