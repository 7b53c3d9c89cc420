import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Model } from '../src/graph/ir.js';
import type { Dataset } from '../src/data/index.js';
import { gaussianData as syntheticData, logisticModel as syntheticModel, K } from './helpers/synthetic-mia.js';
import { Random } from '../src/random.js';
import { auc } from '../src/audit/attack-metrics.js';
import { auditMembership, exampleStats, liraOfflineScores } from '../src/audit/membership-inference.js';

const close = (a: number, b: number, tol: number, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b} (tol ${tol})`);

test('per-example statistics from crafted logits match their definitions', () => {
  // Example 0: logits [2, 0, 0], label 0. Example 1: logits [0, 1, 3], label 0 (misclassified).
  const logits = [2, 0, 0, 0, 1, 3];
  const [a, b] = exampleStats(logits, [0, 0], 2);
  const z = 2 * 1 + Math.exp(2); // e^2 + e^0 + e^0
  const p = [Math.exp(2) / z, 1 / z, 1 / z];
  close(a!.loss, Math.log(z) - 2, 1e-12, 'loss');
  close(a!.trueProb, p[0]!, 1e-12);
  close(a!.maxProb, p[0]!, 1e-12);
  close(a!.entropy, -p.reduce((s, v) => s + v * Math.log(v), 0), 1e-12, 'entropy');
  // Song & Mittal: -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i).
  close(a!.modifiedEntropy, -(1 - p[0]!) * Math.log(p[0]!) - 2 * p[1]! * Math.log(1 - p[1]!), 1e-12, 'mentr');
  close(a!.phi, Math.log(p[0]! / (1 - p[0]!)), 1e-12, 'phi');
  assert.equal(a!.correct, true);
  const zb = 1 + Math.E + Math.exp(3);
  close(b!.loss, Math.log(zb), 1e-12);
  close(b!.maxProb, Math.exp(3) / zb, 1e-12);
  assert.equal(b!.correct, false);
  // A confident example: p_y rounds to 1 in float64, but phi = 100 - log(1) stays exact.
  const [c] = exampleStats([100, 0], [0], 1);
  assert.equal(c!.phi, 100);
  close(c!.loss, Math.exp(-100), 1e-50);
});

test('LiRA-offline score by hand', () => {
  // Example 0: target 1, references 0 and 2 (mean 1, sample variance 2).
  // Example 1: target 0, references 0 and -2 (mean -1, variance 2). Pooled variance 2.
  const { scores, variance } = liraOfflineScores([1, 0], [[0, 0], [2, -2]]);
  assert.equal(variance, 'pooled');
  close(scores[0]!, 0, 1e-12);
  close(scores[1]!, 1 / Math.SQRT2, 1e-12);
  // 16 references: per-example variance. Example 0's references alternate 0/2, example 1's 5/7.
  const refs = Array.from({ length: 16 }, (_, r) => [r % 2 ? 2 : 0, r % 2 ? 7 : 5]);
  const s16 = liraOfflineScores([3, 6], refs);
  assert.equal(s16.variance, 'per-example');
  const sd = Math.sqrt((16 * 1) / 15); // deviations all +-1, sample variance 16/15
  close(s16.scores[0]!, (3 - 1) / sd, 1e-12);
  close(s16.scores[1]!, 0, 1e-12);
});

// ---- a tiny deployed model: logistic regression (Flatten, MatMul, Add), optionally noisy ----

const D = 256;
const SHAPE = { dims: D, divisor: Math.sqrt(D) };
const gaussianData = (n: number, rng: Random, name: string): Dataset => syntheticData(n, rng, name, SHAPE);
const logisticModel = (w: Float32Array, noiseStd = 0): Model => syntheticModel(w, { dims: D, noiseStd });

/** A "trained" model that memorizes: W[:, c] = s * sum of the training examples of class c. */
function memorizingWeights(train: Dataset, s: number): Float32Array {
  const w = new Float32Array(D * K);
  for (let i = 0; i < train.count; i++) {
    for (let d = 0; d < D; d++) w[d * K + train.labels[i]!]! += s * train.images[i * D + d]!;
  }
  return w;
}

/** float64 reference: per-example losses of x -> x W. */
function referenceLosses(ds: Dataset, w: Float32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < ds.count; i++) {
    const z = Array.from({ length: K }, (_, c) => {
      let s = 0;
      for (let d = 0; d < D; d++) s += ds.images[i * D + d]! * w[d * K + c]!;
      return s;
    });
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
    out.push(lse - z[ds.labels[i]!]!);
  }
  return out;
}

test('audit of a memorizing logistic regression: losses, accuracies and AUC against a float64 reference', async () => {
  const rng = new Random(11);
  const members = gaussianData(60, rng, 'members');
  const nonMembers = gaussianData(90, rng, 'non-members');
  const w = memorizingWeights(members, 6);
  const r = await auditMembership(logisticModel(w), { members, nonMembers, delta: 1e-5, seed: 1, threads: 1 });
  // Balanced: all 60 members, 60 of the 90 non-members.
  assert.equal(r.members, 60);
  assert.equal(r.nonMembers, 60);
  assert.equal(r.memberLosses.length, 60);
  const refMembers = referenceLosses(members, w);
  for (let i = 0; i < 60; i++) close(r.memberLosses[i]!, refMembers[i]!, 1e-4 + 1e-4 * refMembers[i]!, `member loss ${i}`);
  // The audited non-members are a subset of the 90: each loss is one of the reference losses.
  const refNon = referenceLosses(nonMembers, w);
  for (const l of r.nonMemberLosses) assert.ok(refNon.some((v) => Math.abs(v - l) < 1e-4 + 1e-4 * v), `non-member loss ${l}`);
  const loss = r.attacks.find((a) => a.attack === 'loss')!;
  close(loss.auc, auc(refMembers.map((v) => -v), r.nonMemberLosses.map((v) => -v)), 1e-9, 'loss AUC');
  assert.ok(loss.auc > 0.9, `memorized members are found: AUC ${loss.auc}`);
  const correct = (ds: Dataset, losses: number[]) => losses.filter((_, i) => {
    const row = Array.from({ length: K }, (_, c) => { let s = 0; for (let d = 0; d < D; d++) s += ds.images[i * D + d]! * w[d * K + c]!; return s; });
    return row.indexOf(Math.max(...row)) === ds.labels[i];
  }).length;
  close(r.trainAccuracy, correct(members, refMembers) / 60, 1e-12, 'train accuracy');
  assert.ok(r.trainAccuracy > 0.9 && r.testAccuracy < 0.5, `train ${r.trainAccuracy}, test ${r.testAccuracy}`);
  close(r.generalizationGap, r.trainAccuracy - r.testAccuracy, 1e-12);
  assert.deepEqual(r.attacks.map((a) => a.attack), ['loss', 'confidence', 'max-confidence', 'entropy', 'modified-entropy']);
  for (const a of r.attacks) assert.ok(a.roc.length >= 2 && a.epsilon.lower95 >= 0);
});

test('a noisy deployed model: one noisy pass hides members, averaging many passes reveals them again', async () => {
  const rng = new Random(12);
  const members = gaussianData(80, rng, 'members');
  const nonMembers = gaussianData(80, rng, 'non-members');
  const w = memorizingWeights(members, 6);
  const clean = await auditMembership(logisticModel(w), { members, nonMembers, delta: 1e-5, attacks: ['loss'], threads: 1 });
  const noisy = logisticModel(w, 60);
  const one = await auditMembership(noisy, { members, nonMembers, delta: 1e-5, attacks: ['loss'], noiseSeed: 5, threads: 1 });
  const many = await auditMembership(noisy, { members, nonMembers, delta: 1e-5, attacks: ['loss'], noiseSeed: 5, samples: 400, threads: 1 });
  const [c, o, m] = [clean, one, many].map((r) => r.attacks[0]!.auc);
  // Logit noise sd 60 against a member margin of about 6: near chance. 400 passes: sd 3.
  assert.ok(c! > 0.9, `clean ${c}`);
  assert.ok(Math.abs(o! - 0.5) < 0.15, `one noisy pass ${o}`);
  assert.ok(m! > 0.8 && m! > o! + 0.2, `400 passes ${m} vs one ${o}`);
  assert.equal(many.samples, 400);
});

test('LiRA-offline with reference models trained through the callback on disjoint data', async () => {
  const rng = new Random(13);
  const members = gaussianData(50, rng, 'members');
  const nonMembers = gaussianData(50, rng, 'non-members');
  const pool = gaussianData(200, rng, 'pool');
  const sizes: number[] = [];
  const r = await auditMembership(logisticModel(memorizingWeights(members, 6)), {
    members, nonMembers, delta: 1e-5, seed: 2, threads: 1,
    reference: {
      count: 4, pool, size: 50,
      train: async (ds) => {
        sizes.push(ds.count);
        return logisticModel(memorizingWeights(ds, 6));
      },
    },
  });
  assert.deepEqual(sizes, [50, 50, 50, 50]);
  assert.deepEqual(r.reference, { models: 4, variance: 'pooled' });
  const lira = r.attacks.find((a) => a.attack === 'lira-offline')!;
  assert.ok(lira.auc > 0.9, `lira AUC ${lira.auc}`);
  await assert.rejects(auditMembership(logisticModel(memorizingWeights(members, 6)), { members, nonMembers, delta: 1e-5, attacks: ['lira-offline'] }), /reference/);
});
