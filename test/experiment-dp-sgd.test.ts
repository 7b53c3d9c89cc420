/**
 * `rp-onnx experiment dp-sgd` end to end on the embedded Fashion-MNIST subset (a few hundred
 * examples, one epoch: the plumbing, not the accuracy): JSON on stdout with the documented
 * fields, epsilon at or below the target and equal to the accountant's value for the sigma,
 * rate and steps it reports (checked with `rp-onnx account`), progress on stderr, no files
 * written, and one-line errors for bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, ROOT } from './helpers/cli.js';

const DATA = join(ROOT, 'data', 'fashion-mnist-small');

test('experiment dp-sgd: JSON result, epsilon within the target and reproducible by account, no files written', () => {
  const listing = () => [...readdirSync(ROOT), ...readdirSync(join(ROOT, 'docs')).map((f) => `docs/${f}`)].sort();
  const before = listing();
  {
    const r = runCli(['experiment', 'dp-sgd', '--data', DATA, '--target-epsilon', '3', '--limit', '512', '--batch-size', '128',
      '--physical-batch-size', '50', '--epochs', '2', '--threads', '1', '--json'], { timeoutMs: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(listing(), before, 'nothing written into the source tree');
    assert.match(r.stderr, /epoch 1: test [\d.]+% \(EMA [\d.]+%\), eps/);
    const j = JSON.parse(r.stdout) as Record<string, any>;
    for (const k of ['testAccuracy', 'lastIterateTestAccuracy', 'epsilon', 'delta', 'sigma', 'steps', 'seconds', 'recipe', 'statement', 'epochs']) assert.ok(k in j, k);
    assert.equal(j.delta, 1e-5);
    assert.equal(j.sampling, 'poisson');
    assert.equal(j.trainExamples, 512);
    assert.equal(j.sampleRate, 128 / 512);
    assert.equal(j.steps, 2 * 4);
    assert.ok(j.epsilon <= 3 && j.epsilon > 2.5, `epsilon ${j.epsilon}`);
    assert.ok(j.testAccuracy > 0 && j.testAccuracy <= 1);
    assert.equal(j.testExamples > 0, true);
    assert.deepEqual({ ...j.recipe, ema: undefined }, {
      model: 'dp-cnn', epochs: 2, batchSize: 128, physicalBatchSize: 50, lr: 4, momentum: 0.9, schedule: 'constant',
      maxGradNorm: 0.1, ema: undefined, delta: 1e-5, seed: 0,
    });
    assert.equal(j.recipe.ema.decay, 0.999);
    assert.equal(j.epochs.length, 2);
    assert.equal(j.testAccuracy, j.epochs[1].emaTestAccuracy);
    // The accountant run on its own, from the reported sigma, rate and steps, gives the same epsilon.
    const a = runCli(['account', '--noise-multiplier', String(j.sigma), '--sample-rate', String(j.sampleRate), '--steps', String(j.steps), '--delta', '1e-5', '--json']);
    assert.equal(a.status, 0, a.stderr);
    const eps = (JSON.parse(a.stdout) as { epsilon: number }).epsilon;
    assert.ok(Math.abs(eps - j.epsilon) < 1e-6, `account ${eps} vs experiment ${j.epsilon}`);
  }
});

test('experiment dp-sgd: bad input is a one-line error', () => {
  const cases: [string[], RegExp][] = [
    [['--target-epsilon', '-1'], /--target-epsilon must be a positive number/],
    [['--target-epsilon', '3', '--model', 'resnet20'], /--model must be one of dp-cnn, resnet8/],
    [['--target-epsilon', '3', '--limit', '100'], /--batch-size 2048 exceeds the 100 training examples/],
    [['--target-epsilon', '3', '--no-ema', '--ema-decay', '0.9'], /--ema-decay and --no-ema contradict/],
    [['--target-epsilon', '3', '--momentum', '1'], /--momentum must be in \[0, 1\)/],
  ];
  for (const [args, want] of cases) {
    const r = runCli(['experiment', 'dp-sgd', '--data', DATA, ...args]);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr, want, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('experiment dp-sgd --model scatternet-linear: trains the head on fixed scattering features; the deployed graph scores the same', () => {
  const r = runCli(['experiment', 'dp-sgd', '--data', DATA, '--target-epsilon', '3', '--model', 'scatternet-linear', '--limit', '512',
    '--batch-size', '128', '--physical-batch-size', '64', '--epochs', '2', '--threads', '1', '--json'], { timeoutMs: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as Record<string, any>;
  assert.equal(j.recipe.model, 'scatternet-linear');
  assert.equal(j.recipe.lr, 16);
  assert.equal(j.steps, 2 * 4);
  assert.ok(j.epsilon <= 3 && j.epsilon > 2.5, `epsilon ${j.epsilon}`);
  assert.ok(j.featureSeconds > 0 && j.featureSeconds <= j.seconds);
  // The full ONNX model (scattering + trained head) on raw test images agrees with the head on features.
  assert.equal(j.deployedTestAccuracy, j.testAccuracy);
  assert.ok(j.testAccuracy > 0.3, `test accuracy ${j.testAccuracy}`);
  assert.match(j.statement, /fixed function of each image alone/);
  const a = runCli(['account', '--noise-multiplier', String(j.sigma), '--sample-rate', String(j.sampleRate), '--steps', String(j.steps), '--delta', '1e-5', '--json']);
  assert.equal(a.status, 0, a.stderr);
  assert.ok(Math.abs((JSON.parse(a.stdout) as { epsilon: number }).epsilon - j.epsilon) < 1e-6);
});
