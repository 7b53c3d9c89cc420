/**
 * DP-SGD's logical batches in physical chunks (Opacus BatchMemoryManager semantics) and
 * parameter averaging (EMA with De et al. 2022's warm-up):
 * - Trainer.dpGradients on a batch in chunks gives the clipped sums, norms, loss and correct
 *   count of the unchunked run (clip and per-example modes), to float tolerance;
 * - a whole seeded fitPrivate run with a physical batch size equals the run without it;
 * - ParameterAverage against averages computed by hand;
 * - fitPrivate with EMA: decay 0 returns the last iterate, decay ~1 without warm-up the
 *   initial weights.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildModel } from '../models/index.js';
import { Trainer } from '../src/train/trainer.js';
import { ParameterAverage } from '../src/train/ema.js';
import { fitPrivate, type DpFitOptions } from '../src/train/dp/dp-sgd.js';
import { makeDataset } from '../src/data/dataset.js';
import { tensorToFloat32 } from '../src/graph/tensor.js';
import { Random } from '../src/random.js';
import type { Model } from '../src/graph/ir.js';

const S = 14;
const model = () => buildModel('dp-cnn', { imageSize: S, classes: 3, seed: 2 });

function data(n: number, seed: number) {
  const rng = new Random(seed);
  const images = Float32Array.from({ length: n * S * S }, () => rng.uniform());
  const labels = Int32Array.from({ length: n }, () => rng.int(3));
  return makeDataset({ images, labels, count: n, shape: [1, S, S], classes: 3, name: 'synthetic', source: 'test' });
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = 1e-5) => {
  assert.equal(a.length, b.length, what);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (1e-3 + Math.abs(b[i]!)));
  assert.ok(worst < tol, `${what}: relative difference ${worst}`);
};

test('dpGradients in physical chunks equals the unchunked run (clip and per-example modes)', async () => {
  const ds = data(37, 1);
  for (const mode of ['clip', 'per-example'] as const) {
    const t = await Trainer.create(model(), { optimizer: 'sgd', threads: 1, dp: { mode } });
    const whole = await t.dpGradients(ds.images, ds.labels, 37, 0.5);
    const wholeGrads = new Map([...whole.grads].map(([k, g]) => [k, Float32Array.from(g)]));
    const wholeNorms = Float32Array.from(whole.norms);
    for (const chunk of [1, 8, 36, 37, 100]) {
      const parts = await t.dpGradients(ds.images, ds.labels, 37, 0.5, chunk);
      assert.equal(parts.size, 37);
      assert.equal(parts.correct, whole.correct, `${mode} chunk ${chunk} correct`);
      assert.ok(Math.abs(parts.loss - whole.loss) < 1e-5, `${mode} chunk ${chunk} loss ${parts.loss} vs ${whole.loss}`);
      close(parts.norms, wholeNorms, `${mode} chunk ${chunk} norms`);
      for (const [k, g] of wholeGrads) close(parts.grads.get(k)!, g, `${mode} chunk ${chunk} ${k}`, 1e-4); // float32 sums in another order
    }
    // Clip mode really clips per example: the summed gradient's norm is at most n * C.
    if (mode === 'clip') {
      let sq = 0;
      for (const g of wholeGrads.values()) for (const v of g) sq += v * v;
      assert.ok(Math.sqrt(sq) <= 37 * 0.5 * (1 + 1e-5));
      assert.ok(wholeNorms.some((x) => x > 0.5), 'some examples are clipped');
    }
    await assert.rejects(() => t.dpGradients(ds.images, ds.labels, 37, 0.5, 0), /physicalBatchSize must be a positive integer/);
    await t.release();
  }
});

const weights = (m: Model) => new Map([...m.graph.initializers].filter(([k]) => k.endsWith('.weight') || k.endsWith('.bias')).map(([k, t]) => [k, tensorToFloat32(t)]));

function dpOptions(extra: Partial<DpFitOptions> = {}): DpFitOptions {
  return {
    optimizer: 'sgd', momentum: 0.9, threads: 1, epochs: 2, batchSize: 24, lr: 2, seed: 0, ...extra,
    dp: {
      maxGradNorm: 0.3, delta: 1e-5, noiseMultiplier: 0.8, noiseSchedule: 'constant', noiseEndRatio: 1, sampling: 'poisson',
      clip: 'constant', clipQuantile: 0.5, clipLearningRate: 0.2, noise: 'gaussian', secureRng: false, seed: 7,
    },
  };
}

test('a seeded DP-SGD run with physical batches equals the same run without them', async () => {
  const ds = data(96, 3);
  const a = await fitPrivate(model(), ds, undefined, dpOptions());
  const b = await fitPrivate(model(), ds, undefined, dpOptions({ physicalBatchSize: 5 }));
  assert.equal(a.steps, 8);
  assert.equal(b.steps, a.steps);
  assert.equal(b.privacy.epsilon, a.privacy.epsilon);
  const wa = weights(a.model), wb = weights(b.model), w0 = weights(model());
  for (const [k, v] of wa) {
    close(wb.get(k)!, v, k, 1e-4);
    assert.ok(v.some((x, i) => x !== w0.get(k)![i]), `${k} was trained`);
  }
  assert.equal(b.record.physicalBatchSize, 5);
});

test('ParameterAverage: hand-computed averages with and without warm-up', () => {
  const theta = [[1, -2], [2, 0], [4, 6], [0, 3]].map((v) => new Map([['w', Float32Array.from(v)]]));
  // Warm-up, decay 0.2: mu_1 = min(0.2, 2/11) = 2/11, mu_2 = min(0.2, 3/12) = 0.2, mu_3 = 0.2.
  //   w[0]: 1 -> 2/11*1 + 9/11*2 = 20/11 -> 0.2*20/11 + 0.8*4 = 39.2/11 -> 0.2*39.2/11 + 0 = 7.84/11
  //   w[1]: -2 -> 2/11*(-2) + 0 = -4/11 -> 0.2*(-4/11) + 0.8*6 = 52/11 -> 0.2*52/11 + 0.8*3 = 36.8/11
  const warm = new ParameterAverage(theta[0]!, { decay: 0.2 });
  assert.ok(Math.abs(warm.decayAt(1) - 2 / 11) < 1e-15);
  for (const t of theta.slice(1)) warm.update(t);
  close(warm.averages.get('w')!, [7.84 / 11, 36.8 / 11], 'warm-up', 1e-12);
  assert.equal(warm.updates, 3);
  // Without warm-up, decay 0.5: 1 -> 1.5 -> 2.75 -> 1.375; -2 -> -1 -> 2.5 -> 2.75.
  const plain = new ParameterAverage(theta[0]!, { decay: 0.5, warmup: false });
  for (const t of theta.slice(1)) plain.update(t);
  close(plain.averages.get('w')!, [1.375, 2.75], 'no warm-up', 1e-12);
  // De et al.'s warm-up is (1 + t) / (10 + t) until it reaches the decay.
  const big = new ParameterAverage(theta[0]!, { decay: 0.999 });
  assert.equal(big.decayAt(90), 91 / 100);
  assert.equal(big.decayAt(10_000), 0.999);
  assert.throws(() => new ParameterAverage(theta[0]!, { decay: 1 }), /EMA decay must be in \[0, 1\)/);
});

test('fitPrivate with EMA returns the averaged weights: decay 0 = last iterate, decay ~1 = initial weights', async () => {
  const ds = data(96, 4);
  const test = data(30, 5);
  const raw = await fitPrivate(model(), ds, test, dpOptions());
  const last = await fitPrivate(model(), ds, test, dpOptions({ ema: { decay: 0 } }));
  for (const [k, v] of weights(raw.model)) close(weights(last.model).get(k)!, v, `decay 0 ${k}`, 1e-6);
  assert.equal(last.epochs.at(-1)!.emaTestAccuracy, raw.epochs.at(-1)!.testAccuracy);
  assert.equal(last.finalTestAccuracy, last.epochs.at(-1)!.emaTestAccuracy);
  const frozen = await fitPrivate(model(), ds, undefined, dpOptions({ ema: { decay: 1 - 1e-12, warmup: false } }));
  for (const [k, v] of weights(model())) close(weights(frozen.model).get(k)!, v, `decay ~1 ${k}`, 1e-6);
  assert.equal(raw.epochs[0]!.emaTestAccuracy, undefined);
});
