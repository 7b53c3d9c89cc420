import { test } from 'node:test';
import assert from 'node:assert/strict';
import { liraOnlineScores, liraOfflineShadowScores } from '../src/audit/attacks/lira.js';
import { rmiaScores } from '../src/audit/attacks/rmia.js';
import { flipHorizontal } from '../src/audit/attacks/augment.js';
import { inclusionMatrix } from '../src/audit/shadows.js';
import { auditMembership } from '../src/audit/membership-inference.js';
import { fit } from '../src/train/fit.js';
import { makeDataset, subset, type Dataset } from '../src/data/index.js';
import { Random } from '../src/random.js';
import { gaussianData, logisticModel, RECIPE } from './helpers/synthetic-mia.js';

const close = (a: number, b: number, tol: number, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b} (tol ${tol})`);
const logN = (x: number, mu: number, v: number) => -0.5 * Math.log(2 * Math.PI * v) - (x - mu) ** 2 / (2 * v);

test('LiRA-online by hand: per-example and global variance', () => {
  // 4 shadows, 2 examples. Example 0: IN for shadows 0, 1 (phis 4, 6), OUT for 2, 3 (phis 0, 2).
  // Example 1: IN for 2, 3 (phis 1, 3), OUT for 0, 1 (phis -1, 1).
  const shadows = [[[4, -1]], [[6, 1]], [[0, 1]], [[2, 3]]];
  const include = [[1, 0], [1, 0], [0, 1], [0, 1]];
  const target = [[5, 0]];
  // Every side has sample variance 2 (two values 2 apart).
  const per = liraOnlineScores(target, shadows, include, 'per-example');
  close(per.scores[0]!, logN(5, 5, 2) - logN(5, 1, 2), 1e-12, 'ex 0');
  close(per.scores[1]!, logN(0, 2, 2) - logN(0, 0, 2), 1e-12, 'ex 1');
  // Global: pooled within-example variances (all 2 here), so the same numbers.
  const glob = liraOnlineScores(target, shadows, include, 'global');
  assert.equal(glob.variance, 'global');
  close(glob.scores[0]!, per.scores[0]!, 1e-12);
  // Offline: only the OUT shadows: (5 - 1) / sqrt(2) and (0 - 0) / sqrt(2).
  const off = liraOfflineShadowScores(target, shadows, include, 'per-example');
  close(off.scores[0]!, 4 / Math.SQRT2, 1e-12);
  close(off.scores[1]!, 0, 1e-12);
  // 'auto' pools the variance below 64 shadows.
  assert.equal(liraOnlineScores(target, shadows, include).variance, 'global');
  // Two queries (an augmentation): the mean of the per-query log ratios.
  const two = liraOnlineScores([[5, 0], [5, 0]], shadows.map((s) => [s[0]!, s[0]!]), include, 'per-example');
  close(two.scores[0]!, per.scores[0]!, 1e-12);
});

test('the target enters only as the tested value: changing its output for one example changes only that score', () => {
  const rng = new Random(4);
  const n = 30;
  const k = 8;
  const include = inclusionMatrix(k, n, 1);
  const shadows = Array.from({ length: k }, (_, s) => [Array.from({ length: n }, (_, i) => rng.normal() + (include[s]![i] ? 2 : 0))]);
  const target = [Array.from({ length: n }, () => rng.normal())];
  const moved = [target[0]!.map((v, i) => (i === 7 ? v + 3 : v))];
  const pop = [Array.from({ length: 50 }, () => rng.normal())];
  const popShadows = Array.from({ length: k }, () => [Array.from({ length: 50 }, () => rng.normal())]);
  for (const f of [liraOnlineScores, liraOfflineShadowScores]) {
    for (const mode of ['global', 'per-example'] as const) {
      const a = f(target, shadows, include, mode).scores;
      const b = f(moved, shadows, include, mode).scores;
      for (let i = 0; i < n; i++) if (i !== 7) assert.equal(a[i], b[i], `${f.name} ${mode} example ${i}`);
      assert.notEqual(a[7], b[7]);
    }
  }
  const ra = rmiaScores({ target, shadows, populationTarget: pop, populationShadows: popShadows });
  const rb = rmiaScores({ target: moved, shadows, populationTarget: pop, populationShadows: popShadows });
  for (let i = 0; i < n; i++) if (i !== 7) assert.equal(ra[i], rb[i]);
});

test('RMIA by hand: fraction of population examples with LR(x) / LR(z) > gamma', () => {
  // phi = 0 is p = 1/2; phi = log 3 is p = 3/4; phi = -log 3 is p = 1/4.
  const L3 = Math.log(3);
  // Example 0: target 3/4, shadows 1/2 and 1/2: LR 1.5. Example 1: target 1/4, shadows 1/4, 3/4: LR 0.5.
  const target = [[L3, -L3]];
  const shadows = [[[0, -L3]], [[0, L3]]];
  // Population: z0 target 1/2 / mean(1/2, 1/2) = 1; z1 target 3/4 / mean(1/4, 1/4) = 3; z2 1/4 / (1/2) = 0.5.
  const populationTarget = [[0, L3, -L3]];
  const populationShadows = [[[0, -L3, 0]], [[0, -L3, 0]]];
  const s = rmiaScores({ target, shadows, populationTarget, populationShadows });
  // LR(x0) = 1.5 beats z0 (1) and z2 (0.5): 2/3. LR(x1) = 0.5 beats nothing (0.5 is not > 0.5): 0.
  close(s[0]!, 2 / 3, 1e-12);
  close(s[1]!, 0, 1e-12);
  const s2 = rmiaScores({ target, shadows, populationTarget, populationShadows, gamma: 2 });
  close(s2[0]!, 1 / 3, 1e-12); // 1.5 / 0.5 = 3 > 2 only
});

test('balanced inclusion: every example is IN for exactly K/2 shadows, each shadow gets about half', () => {
  const m = inclusionMatrix(16, 1000, 3);
  for (let i = 0; i < 1000; i++) assert.equal(m.reduce((s, row) => s + row[i]!, 0), 8);
  for (const row of m) {
    const c = row.reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(c - 500) < 60, `shadow holds ${c} of 1000`);
  }
  const odd = inclusionMatrix(5, 400, 3);
  for (let i = 0; i < 400; i++) assert.ok([2, 3].includes(odd.reduce((s, row) => s + row[i]!, 0)));
});

test('horizontal flip mirrors every row', () => {
  const ds = makeDataset({ images: Float32Array.from([1, 2, 3, 4, 5, 6]), labels: Int32Array.from([0]), count: 1, shape: [1, 2, 3], classes: 1, name: 't', source: 't' });
  assert.deepEqual([...flipHorizontal(ds).images], [3, 2, 1, 6, 5, 4]);
});

/** Trains shadows and targets of the synthetic memorisation setting through fit. */
async function train(ds: Dataset, seed: number) {
  return (await fit(logisticModel(), ds, undefined, { ...RECIPE, seed, threads: 1 })).model;
}

test('known answer: LiRA-online and RMIA find memorised members; a target trained on none of the audited examples gives chance', { timeout: 300_000 }, async () => {
  const rng = new Random(21);
  const n = 48;
  const members = gaussianData(n, rng, 'members');
  const nonMembers = gaussianData(n, rng, 'non-members');
  const population = gaussianData(64, rng, 'population');
  const pool = makeDataset({
    images: Float32Array.from([...members.images, ...nonMembers.images]), labels: Int32Array.from([...members.labels, ...nonMembers.labels]),
    count: 2 * n, shape: members.shape, classes: members.classes, name: 'pool', source: 'synthetic',
  });
  const k = 8;
  const include = inclusionMatrix(k, 2 * n, 5);
  const shadows = [];
  for (let s = 0; s < k; s++) shadows.push(await train(subset(pool, [...include[s]!.keys()].filter((i) => include[s]![i])), 100 + s));
  const opts = { members, nonMembers, delta: 1e-5, threads: 1, shadows: { models: shadows, include }, population, attacks: ['loss', 'lira-online', 'lira-offline', 'rmia'] as const };
  const target = await train(members, 7);
  const r = await auditMembership(target, { ...opts, attacks: [...opts.attacks] });
  const by = Object.fromEntries(r.attacks.map((a) => [a.attack, a]));
  assert.ok(r.trainAccuracy > 0.95, `the target memorises: train accuracy ${r.trainAccuracy}`);
  for (const a of ['lira-online', 'rmia', 'lira-offline']) assert.ok(by[a]!.auc > 0.9, `${a} AUC ${by[a]!.auc}`);
  assert.equal(r.shadows?.models, k);
  // A target that saw none of the audited examples: whatever the shadows know, AUC is chance.
  // (Had the target's outputs entered the IN statistics of members, members would score higher.)
  const stranger = await train(gaussianData(n, rng, 'strangers'), 8);
  const c = await auditMembership(stranger, { ...opts, attacks: [...opts.attacks] });
  for (const a of c.attacks) assert.ok(Math.abs(a.auc - 0.5) < 0.17, `${a.attack} AUC ${a.auc} on a target without members`);
});
