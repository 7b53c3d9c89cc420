/** The TypeScript side of DP-SGD: schedules, ledger, adaptive clipping, noise, encoding, norm fix. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noiseAt, scheduleSegments, type NoiseSchedule } from '../src/train/dp/noise-schedule.js';
import { PrivacyLedger } from '../src/train/dp/accountant.js';
import { AdaptiveClipper, gradientNoiseMultiplier } from '../src/train/dp/adaptive-clipping.js';
import { addNoise } from '../src/train/dp/noise.js';
import { topKIndices, keepTopK, denoise } from '../src/train/dp/encoding.js';
import { type DpOptions } from '../src/train/dp/dp-sgd.js';
import { planNoise } from '../src/train/dp/plan.js';
import { epsilon } from '../src/privacy/rdp.js';
import { PrvAccountant } from '../src/privacy/accountants/prv.js';
import { gaussianEpsilon } from './helpers/gaussian-mechanism.js';
import { Random } from '../src/random.js';
import { batchNormToGroupNorm } from '../src/passes/norm-fix.js';
import { buildResNet } from '../models/index.js';
import { evaluate, f64 } from '../src/reference/interpreter.js';

const sched = (name: NoiseSchedule['name'], start = 2, end = 0.5, period = 10, totalSteps = 101): NoiseSchedule => ({ name, start, end, period, totalSteps });

test('noise schedules follow their documented formulas', () => {
  assert.equal(noiseAt(sched('constant'), 50), 2);
  assert.equal(noiseAt(sched('linear'), 0), 2);
  assert.ok(Math.abs(noiseAt(sched('linear'), 50) - 1.25) < 1e-12);
  assert.ok(Math.abs(noiseAt(sched('linear'), 100) - 0.5) < 1e-12);
  assert.ok(Math.abs(noiseAt(sched('exponential'), 50) - 1) < 1e-12); // geometric midpoint of 2 and 0.5
  assert.ok(Math.abs(noiseAt(sched('exponential'), 100) - 0.5) < 1e-12);
  // staircase: 10 stairs of 10 steps, constant within a stair, reaching `end` on the last one
  assert.equal(noiseAt(sched('staircase'), 3), 2);
  assert.equal(noiseAt(sched('staircase'), 9), 2);
  assert.ok(Math.abs(noiseAt(sched('staircase'), 10) - 2 * 0.25 ** 0.1) < 1e-12);
  assert.ok(Math.abs(noiseAt(sched('staircase'), 100) - 0.5) < 1e-12);
  // cyclic: start at t = 0 and every period, end at half periods
  assert.equal(noiseAt(sched('cyclic'), 0), 2);
  assert.ok(Math.abs(noiseAt(sched('cyclic'), 5) - 0.5) < 1e-12);
  assert.ok(Math.abs(noiseAt(sched('cyclic'), 20) - 2) < 1e-12);
});

test('schedule segments compose to the same epsilon as step-by-step accounting', () => {
  const s = sched('staircase', 1.5, 0.8, 25, 200);
  const segs = scheduleSegments(s, 0.02);
  assert.equal(segs.reduce((a, g) => a + g.steps, 0), 200);
  const ledger = new PrivacyLedger({ accountant: 'rdp', sampling: 'poisson', sampleRate: 0.02, delta: 1e-5 });
  for (let t = 0; t < 200; t++) ledger.record(noiseAt(s, t));
  assert.ok(Math.abs(ledger.epsilon() - epsilon(segs, 1e-5)) < 1e-9);
  // One more step at sigma 0.8 is what epsilon(nextSigma) predicts.
  const predicted = ledger.epsilon(0.8);
  ledger.record(0.8);
  assert.ok(Math.abs(ledger.epsilon() - predicted) < 1e-12);
});

test('shuffle accounting: one unamplified Gaussian mechanism per epoch at its smallest sigma, halved (replace-one, sensitivity 2C)', () => {
  const ledger = new PrivacyLedger({ accountant: 'rdp', sampling: 'shuffle', sampleRate: 0.1, delta: 1e-5 });
  for (let e = 0; e < 3; e++) {
    for (let t = 0; t < 10; t++) ledger.record(t === 4 ? 1.5 : 2);
    ledger.endEpoch();
  }
  assert.ok(Math.abs(ledger.epsilon() - epsilon([{ sampleRate: 1, noiseMultiplier: 0.75, steps: 3 }], 1e-5)) < 1e-9);
});

test('calibration to a target epsilon: constant and scheduled noise end at or just below the target', () => {
  const base: DpOptions = {
    maxGradNorm: 1, delta: 1e-5, targetEpsilon: 3, noiseSchedule: 'constant', noiseEndRatio: 0.5, sampling: 'poisson',
    clip: 'constant', clipQuantile: 0.5, clipLearningRate: 0.2, noise: 'gaussian', secureRng: false,
  };
  const q = 256 / 60000;
  const stepsPerEpoch = Math.round(1 / q);
  const steps = 5 * stepsPerEpoch;
  for (const name of ['constant', 'linear', 'exponential'] as const) {
    const s = planNoise({ ...base, accountant: 'rdp', noiseSchedule: name }, { sampleRate: q, stepsPerEpoch, totalSteps: steps });
    const eps = epsilon(scheduleSegments(s, q, steps), 1e-5);
    assert.ok(eps <= 3 + 1e-9 && eps > 2.9, `${name}: eps ${eps} at start sigma ${s.start}`);
    if (name !== 'constant') assert.ok(Math.abs(s.end / s.start - 0.5) < 1e-12);
  }
  assert.throws(() => planNoise({ ...base, noise: 'laplace' }, { sampleRate: q, stepsPerEpoch, totalSteps: steps }), /no accountant/);
});

test('a target is never exceeded with a schedule and shuffle sampling: N 1000, B 100, linear, target 3 (was 3.086 at 25 steps, 3.104 at 35)', () => {
  const base: DpOptions = {
    maxGradNorm: 1, delta: 1e-5, targetEpsilon: 3, noiseSchedule: 'linear', noiseEndRatio: 0.5, sampling: 'shuffle',
    clip: 'constant', clipQuantile: 0.5, clipLearningRate: 0.2, noise: 'gaussian', secureRng: false,
  };
  const stepsPerEpoch = 10; // ceil(1000 / 100), as the loop runs
  for (const accountant of ['rdp', 'prv'] as const) {
    for (const totalSteps of [25, 35]) {
      const s = planNoise({ ...base, accountant }, { sampleRate: 0.1, stepsPerEpoch, totalSteps });
      // Replay as the loop runs: epochs of 10 steps (the last one short), each one Gaussian
      // mechanism at its smallest sigma, halved (replace-one, sensitivity 2C); q = 1 closed forms.
      let inv = 0; // sum over epochs of (2 / sigma_min)^2
      for (let e = 0; e * stepsPerEpoch < totalSteps; e++) {
        let min = Infinity;
        for (let t = e * stepsPerEpoch; t < Math.min(totalSteps, (e + 1) * stepsPerEpoch); t++) min = Math.min(min, noiseAt(s, t));
        inv += (2 / min) ** 2;
      }
      if (accountant === 'rdp') {
        // RDP(alpha) = alpha * inv / 2, converted at the best order on a fine grid (Balle et al. 2020).
        let best = Infinity;
        for (let a = 1.01; a < 300; a += 0.01) best = Math.min(best, (a * inv) / 2 + Math.log((a - 1) / a) - (Math.log(1e-5) + Math.log(a)) / (a - 1));
        assert.ok(best <= 3 && best > 2.95, `rdp, ${totalSteps} steps: closed-form eps ${best} at start ${s.start}`);
      } else {
        const exact = gaussianEpsilon(1 / Math.sqrt(inv), 1e-5);
        assert.ok(exact <= 3 && exact > 2.95, `prv, ${totalSteps} steps: exact eps ${exact} at start ${s.start}`);
      }
    }
  }
});

test('PRV calibration (the default): never above the target, and less noise than RDP needs', () => {
  const base: DpOptions = {
    maxGradNorm: 1, delta: 1e-5, targetEpsilon: 2, noiseSchedule: 'constant', noiseEndRatio: 1, sampling: 'poisson',
    clip: 'constant', clipQuantile: 0.5, clipLearningRate: 0.2, noise: 'gaussian', secureRng: false,
  };
  const plan = { sampleRate: 0.01, stepsPerEpoch: 100, totalSteps: 300 };
  const prv = planNoise(base, plan);
  const rdp = planNoise({ ...base, accountant: 'rdp' }, plan);
  const a = new PrvAccountant();
  a.step({ noiseMultiplier: prv.start, sampleRate: 0.01 }, 300);
  const b = a.bounds(1e-5);
  assert.ok(b.upper <= 2 && b.upper > 1.98, JSON.stringify(b));
  assert.ok(prv.start < rdp.start && epsilon([{ sampleRate: 0.01, noiseMultiplier: rdp.start, steps: 300 }], 1e-5) <= 2);
});

test('adaptive clipping: the composed noise multiplier and the geometric update', () => {
  // (sigma_g^-2 + (2 sigma_b)^-2)^(-1/2) = sigma
  const sg = gradientNoiseMultiplier(1.1, 5);
  assert.ok(Math.abs((sg ** -2 + 10 ** -2) ** -0.5 - 1.1) < 1e-12);
  assert.throws(() => gradientNoiseMultiplier(2, 0.5), /too small/);
  const c = new AdaptiveClipper({ initial: 1, targetQuantile: 0.5, learningRate: 0.2, countNoise: 1e-9 });
  // All norms above the bound: fraction unclipped 0 -> C grows by exp(0.2 * 0.5).
  c.update([2, 3, 4, 5], 4, new Random(1));
  assert.ok(Math.abs(c.bound - Math.exp(0.1)) < 1e-6);
  // Repeated updates converge to the median of the norms.
  const norms = Array.from({ length: 101 }, (_, i) => 0.5 + i / 100);
  const d = new AdaptiveClipper({ initial: 0.1, targetQuantile: 0.5, learningRate: 0.2, countNoise: 1e-9 });
  for (let i = 0; i < 400; i++) d.update(norms, norms.length, new Random(i));
  assert.ok(Math.abs(d.bound - 1.0) < 0.02, `bound ${d.bound}`);
});

test('adaptive clipping is accounted at its true cost: the joint (gradient sum, count) release, computed directly (B 20, sigma 0.8, q 0.02, 500 steps)', () => {
  // The released count statistic, read back from the bound update with (almost) no noise.
  const eta = 0.2;
  const released = (norms: number[], expected: number) => {
    const c = new AdaptiveClipper({ initial: 1, targetQuantile: 0.5, learningRate: eta, countNoise: 1e-12 });
    c.update(norms, expected, new Random(1));
    return (0.5 - Math.log(c.bound) / eta) * expected; // noisy fraction * expected batch
  };
  const batch = Array.from({ length: 20 }, (_, i) => 0.2 + i * 0.1);
  const base = released(batch, 20);
  // Add/remove one example, below or above the bound: the largest change is the sensitivity.
  const sensitivity = Math.max(
    Math.abs(released([...batch, 0.1], 20) - base),
    Math.abs(released([...batch, 9], 20) - base),
    Math.abs(released(batch.slice(1), 20) - base),
    Math.abs(released(batch.slice(0, -1), 20) - base),
  );
  // Gradient sum: sensitivity C, noise sigma_g C; count: `sensitivity`, noise sigma_b. The joint
  // Gaussian mechanism's noise multiplier is 1 / ||(1 / sigma_g, sensitivity / sigma_b)||.
  const sigma = 0.8;
  const countNoise = 1; // the loop's default: max(1, expected batch / 20)
  const sigmaG = gradientNoiseMultiplier(sigma, countNoise);
  const joint = 1 / Math.hypot(1 / sigmaG, sensitivity / countNoise);
  const trueEps = epsilon([{ sampleRate: 0.02, noiseMultiplier: joint, steps: 500 }], 1e-5);
  const ledgerEps = epsilon([{ sampleRate: 0.02, noiseMultiplier: sigma, steps: 500 }], 1e-5);
  assert.ok(trueEps <= ledgerEps + 1e-9, `released-count sensitivity ${sensitivity}: true eps ${trueEps} > accounted ${ledgerEps}`);
  assert.ok(Math.abs(ledgerEps - 5.37) < 0.01);
});

test('noise families have the requested standard deviation', () => {
  const rng = new Random(3);
  for (const family of ['gaussian', 'laplace', 'student-t'] as const) {
    const v = new Float32Array(200_000);
    addNoise(v, 0.7, family, rng);
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    assert.ok(Math.abs(mean) < 0.01, `${family} mean ${mean}`);
    assert.ok(Math.abs(std - 0.7) < (family === 'student-t' ? 0.03 : 0.01), `${family} std ${std}`);
  }
});

test('top-k encoding keeps exactly the k largest magnitudes; denoising zeroes small coordinates', () => {
  const v = Float32Array.from([0.1, -5, 3, 0, -0.2, 4, 2.5, -3.5]);
  assert.deepEqual([...topKIndices(v, 3)].sort(), [1, 5, 7].sort());
  const w = Float32Array.from(v);
  keepTopK(w, 4);
  assert.deepEqual([...w], [0, -5, 3, 0, 0, 4, 0, -3.5]);
  const rng = new Random(5);
  const big = Float32Array.from({ length: 5000 }, () => rng.normal());
  const k = 137;
  const kept = new Set(topKIndices(big, k));
  const threshold = Math.min(...[...kept].map((i) => Math.abs(big[i]!)));
  assert.equal(kept.size, k);
  assert.equal([...big].filter((x) => Math.abs(x) > threshold).length, k - 1);
  const s = Float32Array.from([0.5, -3, 1.9, 2.1, -0.1]);
  assert.equal(denoise(s, 1, 2), 3);
  assert.deepEqual([...s], [0, -3, 0, 2.1, 0].map((x) => Math.fround(x)));
});

test('BatchNorm -> GroupNorm replacement computes GroupNormalization (reference op, opset 21)', () => {
  const m = buildResNet('resnet8', { inChannels: 1, imageSize: 8, norm: 'batch', seed: 2 });
  const { model: gn, replaced } = batchNormToGroupNorm(m, { groups: 8 });
  assert.equal(replaced, m.graph.nodes.filter((n) => n.opType === 'BatchNormalization').length);
  assert.equal(gn.graph.nodes.filter((n) => n.opType === 'BatchNormalization').length, 0);
  // The same graph with each BatchNormalization swapped for an opset-21 GroupNormalization node,
  // evaluated by the reference interpreter, must give the same logits.
  const ref = m.clone();
  for (const n of ref.graph.nodes) {
    if (n.opType !== 'BatchNormalization') continue;
    const scale = ref.graph.initializers.get(n.inputs[1]!)!;
    const channels = Number(scale.dims[0]);
    n.opType = 'GroupNormalization';
    n.inputs = n.inputs.slice(0, 3);
    n.attributes = [];
    n.setAttr('num_groups', Math.min(8, channels));
  }
  const rng = new Random(9);
  const x = Float64Array.from({ length: 2 * 64 }, () => rng.uniform());
  const a = evaluate(gn.graph, { input: f64([2, 1, 8, 8], x) }, { opset: gn.opset() }).logits!.data as Float64Array;
  const b = evaluate(ref.graph, { input: f64([2, 1, 8, 8], x) }, { opset: 21 }).logits!.data as Float64Array;
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-6 * Math.max(1, Math.abs(b[i]!)), `logit ${i}: ${a[i]} vs ${b[i]}`);
});
