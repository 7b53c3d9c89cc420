import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oneRunPValue, oneRunEpsilonLowerBound, oneRunGuesses, oneRunAudit, makeCanaries, withCanaries } from '../src/audit/one-run-audit.js';
import { betaQuantile } from '../src/audit/beta.js';
import { fit } from '../src/train/fit.js';
import { fitPrivate } from '../src/train/dp/dp-sgd.js';
import { Random } from '../src/random.js';
import { gaussianData, logisticModel, RECIPE } from './helpers/synthetic-mia.js';

const close = (a: number, b: number, tol: number, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b} (tol ${tol})`);
const logit = (q: number) => Math.log(q / (1 - q));

test('pure DP: the bound solves P[Binomial(r, q) >= v] = 0.05 (closed form through the beta quantile)', () => {
  // All r guesses right: q^r = 0.05.
  close(oneRunEpsilonLowerBound(1000, 100, 100, 0), logit(0.05 ** (1 / 100)), 1e-5, 'all right');
  // P[Bin(r, q) >= v] = I_q(v, r - v + 1): the q where it is 0.05 is the beta quantile.
  for (const [r, v] of [[100, 90], [200, 130], [50, 36]] as const) {
    close(oneRunEpsilonLowerBound(1000, r, v, 0), logit(betaQuantile(0.05, v, r - v + 1)), 1e-5, `r ${r} v ${v}`);
  }
  // Half right is what eps = 0 gives: no evidence.
  assert.equal(oneRunEpsilonLowerBound(1000, 100, 50, 0), 0);
  // The p-value at eps = 0 of v = r = 10 is 2^-10.
  close(oneRunPValue(10, 10, 10, 0, 0), 2 ** -10, 1e-15);
});

test('approximate DP: the delta term only lowers the bound, and the bound sits at p-value 0.05', () => {
  const pure = oneRunEpsilonLowerBound(1000, 200, 180, 0);
  const approx = oneRunEpsilonLowerBound(1000, 200, 180, 1e-5);
  assert.ok(approx < pure && approx > 0, `${approx} vs ${pure}`);
  close(oneRunPValue(1000, 200, 180, approx, 1e-5), 0.05, 1e-3, 'p at the bound');
  // A huge delta leaves no evidence.
  assert.equal(oneRunEpsilonLowerBound(1000, 200, 180, 1e-2), 0);
  // By hand for r = v = 1, m = 1: p = q + 2 delta P[Bin(1, q) = 0] = q + 2 delta (1 - q).
  const q = 1 / (1 + Math.exp(-0.7));
  close(oneRunPValue(1, 1, 1, 0.7, 0.01), q + 0.02 * (1 - q), 1e-12);
});

test('coverage: guesses from eps-DP randomized response never push the bound above eps in more than 5% of runs', () => {
  const eps = 2;
  const q = 1 / (1 + Math.exp(-eps));
  let above = 0;
  let sum = 0;
  for (let seed = 0; seed < 300; seed++) {
    const rng = new Random(seed);
    let v = 0;
    for (let k = 0; k < 200; k++) if (rng.uniform() < q) v++;
    const b = oneRunEpsilonLowerBound(1000, 200, v, 0);
    if (b > eps) above++;
    sum += b;
  }
  // 5% of 300 is 15, binomial sd 3.8: allow three sd of sampling error; the exact check follows.
  assert.ok(above <= 26, `${above} of 300 runs above eps`);
  assert.ok(sum / 300 > 1.2, `mean bound ${sum / 300}: a bound with power`);
  // Exact: the probability, over v ~ Binomial(200, q), that the bound exceeds eps is at most 5%.
  let pmf = (1 - q) ** 200;
  let exceed = 0;
  for (let v = 0; v <= 200; v++) {
    if (v > 0) pmf *= ((200 - v + 1) / v) * (q / (1 - q));
    if (oneRunEpsilonLowerBound(1000, 200, v, 0) > eps) exceed += pmf;
  }
  assert.ok(exceed <= 0.05 && exceed > 0.02, `P[bound > eps] = ${exceed}`);
});

test('guessing: k+ highest IN, k- lowest OUT, abstain in between', () => {
  const scores = [5, 4, 3, 2, 1, 0];
  const included = [true, false, true, false, false, false];
  const r = oneRunGuesses(scores, included, 0, { guessIn: 2, guessOut: 2 });
  // IN guesses: canaries 0 (right), 1 (wrong); OUT guesses: 5, 4 (both right).
  assert.equal(r.guesses, 4);
  assert.equal(r.correct, 3);
  assert.equal(r.canaries, 6);
  assert.equal(r.confidence, 0.95);
});

test('canaries: mislabelled (never the true label) or noise, each included with probability 1/2', () => {
  const rng = new Random(2);
  const src = gaussianData(400, rng);
  const c = makeCanaries(src, 400, 'mislabel', new Random(3));
  for (let j = 0; j < 400; j++) assert.notEqual(c.data.labels[j], src.labels[j]);
  const k = c.included.filter(Boolean).length;
  assert.ok(Math.abs(k - 200) < 45, `${k} of 400 included`);
  const train = gaussianData(10, rng);
  assert.equal(withCanaries(train, c).count, 10 + k);
  const ood = makeCanaries(src, 20, 'ood', new Random(3));
  assert.ok(ood.data.images.every((v) => v >= 0 && v < 1));
});

test('without DP on a small training set the bound is clearly positive; under DP-SGD it never exceeds the accountant\'s epsilon', { timeout: 300_000 }, async (t) => {
  const rng = new Random(17);
  const trainSet = gaussianData(16, rng, 'train');
  const source = gaussianData(64, rng, 'canary-source');
  const plain = await oneRunAudit(trainSet, async (ds) => (await fit(logisticModel(), ds, undefined, { ...RECIPE, seed: 1, threads: 1 })).model,
    { canaries: 64, source, delta: 1e-5, seed: 5, guessIn: 10, guessOut: 10, threads: 1 });
  t.diagnostic(`no DP: ${plain.correct}/${plain.guesses} right, eps >= ${plain.epsilonLowerBound.toFixed(3)}`);
  assert.ok(plain.epsilonLowerBound > 0.8, `without DP: ${plain.epsilonLowerBound}`);
  for (const sigma of [0.6, 1.5]) {
    let accountant = NaN;
    const dp = await oneRunAudit(trainSet, async (ds) => {
      // Fresh noise: seeded noise claims no epsilon, and the bound is compared with the claim.
      const r = await fitPrivate(logisticModel(), ds, undefined, {
        epochs: 20, batchSize: 8, lr: 0.5, optimizer: 'sgd', momentum: 0, weightDecay: 0, schedule: 'constant', seed: 2, threads: 1,
        dp: { maxGradNorm: 1, delta: 1e-5, noiseMultiplier: sigma, noiseSchedule: 'constant', noiseEndRatio: 1, sampling: 'poisson', clip: 'constant',
          clipQuantile: 0.5, clipLearningRate: 0.2, noise: 'gaussian', secureRng: true },
      });
      accountant = r.privacy.epsilon!;
      return r.model;
    }, { canaries: 64, source, delta: 1e-5, seed: 5, guessIn: 10, guessOut: 10, threads: 1 });
    t.diagnostic(`DP-SGD sigma ${sigma}: accountant eps ${accountant.toFixed(3)}, ${dp.correct}/${dp.guesses} right, one-run eps >= ${dp.epsilonLowerBound.toFixed(3)}`);
    assert.ok(Number.isFinite(accountant));
    assert.ok(dp.epsilonLowerBound <= accountant, `one-run ${dp.epsilonLowerBound} > accountant ${accountant}`);
  }
});
