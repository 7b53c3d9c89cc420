import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auc, rocCurve, attackMetrics, epsilonBound, tprAtFpr, empiricalEpsilon, heldOutEpsilon } from '../src/audit/attack-metrics.js';
import { betaQuantile, clopperPearson, regularizedBeta } from '../src/audit/beta.js';
import { Random } from '../src/random.js';

const close = (a: number, b: number, tol: number, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b} (tol ${tol})`);

test('AUC by hand, ties counted one half', () => {
  // Pairs (member > non-member): 0.9 beats all 3, 0.8 beats all 3, 0.4 beats 0.1 and ties 0.4:
  // 3 + 3 + 1 + 0.5 = 7.5 of 9.
  assert.equal(auc([0.9, 0.8, 0.4], [0.7, 0.4, 0.1]), 7.5 / 9);
  assert.equal(auc([1, 2], [3, 4]), 0);
  assert.equal(auc([5, 5], [5, 5]), 0.5);
});

test('AUC equals the pairwise Mann-Whitney count and the trapezoid area under the ROC', () => {
  const rng = new Random(3);
  // Rounded scores, so there are many ties.
  const m = Array.from({ length: 57 }, () => Math.round(rng.normal() * 3 + 1));
  const o = Array.from({ length: 43 }, () => Math.round(rng.normal() * 3));
  let u = 0;
  for (const a of m) for (const b of o) u += a > b ? 1 : a === b ? 0.5 : 0;
  close(auc(m, o), u / (m.length * o.length), 1e-12, 'U');
  const roc = rocCurve(m, o);
  let area = 0;
  for (let i = 1; i < roc.length; i++) area += ((roc[i]!.fpr - roc[i - 1]!.fpr) * (roc[i]!.tpr + roc[i - 1]!.tpr)) / 2;
  close(auc(m, o), area, 1e-12, 'trapezoid');
});

test('ROC, advantage, balanced accuracy and TPR at low FPR by hand', () => {
  const members = [0.9, 0.8, 0.4, 0.35];
  const nonMembers = [0.7, 0.4, 0.1, 0.05];
  // Thresholds (score >= t is "member"): +inf (0, 0); 0.9 (1/4, 0); 0.8 (2/4, 0); 0.7 (2/4, 1/4);
  // 0.4 takes the tied member and non-member together (3/4, 2/4); 0.35 (1, 2/4); 0.1 (1, 3/4); 0.05 (1, 1).
  const roc = rocCurve(members, nonMembers);
  assert.deepEqual(roc.map((p) => [p.tpr, p.fpr]), [[0, 0], [0.25, 0], [0.5, 0], [0.5, 0.25], [0.75, 0.5], [1, 0.5], [1, 0.75], [1, 1]]);
  const m = attackMetrics(members, nonMembers, 0);
  // AUC: 0.9 and 0.8 beat all four (8), 0.4 beats two and ties one (2.5), 0.35 beats two (2): 12.5 / 16.
  assert.equal(m.auc, 12.5 / 16);
  assert.equal(m.advantage, 0.5); // at 0.8 (0.5 - 0) and at 0.35 (1 - 0.5)
  assert.equal(m.balancedAccuracy, 0.75);
  // 4 non-members cannot resolve an FPR of 1%: unavailable, with the reason, never a number.
  assert.equal(m.tprAtFpr1, null);
  assert.equal(m.tprAtFpr01, null);
  assert.equal(m.tprAtFpr001, null);
  assert.match(m.unavailable!.tprAtFpr1!, /needs at least 100 non-members, the audit has 4/);
  // The step reading itself: only FPR-0 points are below 1%, the best is TPR 0.5 (threshold 0.8).
  assert.equal(tprAtFpr(roc, 0.01), 0.5);
});

test('TPR at 0.01% FPR is available from 10,000 non-members on', () => {
  const nonMembers = Array.from({ length: 10_000 }, (_, i) => -i);
  const members = [1, 2, 3, 4, ...Array(96).fill(-20_000)];
  const m = attackMetrics(members, nonMembers, 1e-5);
  // FPR <= 0.01% allows one false positive (score 0); the four members above it are found.
  assert.equal(m.tprAtFpr001, 4 / 100);
  assert.equal(m.unavailable, undefined);
  const fewer = attackMetrics(members, nonMembers.slice(0, 9_999), 1e-5);
  assert.equal(fewer.tprAtFpr001, null);
  assert.equal(fewer.tprAtFpr01, 4 / 100);
});

test('TPR at FPR 1% and 0.1% use the ROC steps, not interpolation', () => {
  // 200 members and 200 non-members; FPR 1% = 2 false positives, 0.1% = 0 false positives.
  const members = [10, 9, 8, 7.5, ...Array(196).fill(0)];
  const nonMembers = [8.5, 7.5, 7.5, ...Array(197).fill(-1)];
  // Points: 10 (tp 1, fp 0), 9 (2, 0), 8.5 (2, 1), 8 (3, 1), 7.5 (4, 3), ...
  // TPR at FPR <= 1%: the best point with fp <= 2 is (3, 1): 3/200 = 0.015. Linear interpolation
  // between (fp 1, tp 3) and (fp 3, tp 4) would claim 3.5/200 at fp 2; no single threshold gets it.
  const m = attackMetrics(members, nonMembers, 1e-5);
  assert.equal(m.tprAtFpr1, 3 / 200);
  // 0.1% of 200 non-members is below one example: unavailable; the zero-FP reading is 2/200.
  assert.equal(m.tprAtFpr01, null);
  assert.equal(tprAtFpr(rocCurve(members, nonMembers), 0.001), 2 / 200);
  // At FPR 1.5% (fp 3) the 196 members scored 0 are above the non-members' -1: TPR 1.
  assert.equal(tprAtFpr(rocCurve(members, nonMembers), 0.015), 1);
});

test('epsilon lower bound: closed form', () => {
  close(epsilonBound(0.6, 0.1, 0), Math.log(6), 1e-12);
  close(epsilonBound(0.3, 0.05, 1e-5), Math.max(Math.log((0.3 - 1e-5) / 0.05), Math.log((1 - 1e-5 - 0.05) / 0.7)), 1e-12);
  // The second term wins when the attack is sure about non-members: FPR 0.5, TPR 0.9.
  close(epsilonBound(0.9, 0.5, 0), Math.log(0.5 / 0.1), 1e-12);
  assert.equal(epsilonBound(0.5, 0.5, 0), 0);
  assert.equal(epsilonBound(0.5, 0, 0), Infinity);
  assert.equal(epsilonBound(0, 0, 0), 0);
});

test('threshold selection: Clopper-Pearson interval on one set of examples (scipy values)', () => {
  // 1000 members, 1000 non-members; the one informative threshold gives TPR 0.5, FPR 0.1.
  const members = [...Array(500).fill(1), ...Array(500).fill(0)];
  const nonMembers = [...Array(100).fill(1), ...Array(900).fill(0)];
  const delta = 1e-5;
  const m = { epsilon: empiricalEpsilon(rocCurve(members, nonMembers), 1000, 1000, delta) };
  assert.equal(m.epsilon.threshold, 1);
  close(m.epsilon.estimate, Math.max(Math.log((0.5 - delta) / 0.1), Math.log((1 - delta - 0.1) / 0.5)), 1e-12, 'estimate');
  // scipy.stats.beta.ppf: TPR in [0.46854917297179194, 0.531450827028208], FPR in [0.08210533435558001, 0.12028793651869263].
  const lower = Math.max(Math.log((0.46854917297179194 - delta) / 0.12028793651869263), Math.log((1 - delta - 0.12028793651869263) / (1 - 0.46854917297179194)));
  const upper = Math.max(Math.log((0.531450827028208 - delta) / 0.08210533435558001), Math.log((1 - delta - 0.08210533435558001) / (1 - 0.531450827028208)));
  close(m.epsilon.lower95, lower, 1e-9, 'lower');
  close(m.epsilon.upper95, upper, 1e-9, 'upper');
  assert.ok(m.epsilon.lower95 < m.epsilon.estimate && m.epsilon.estimate < m.epsilon.upper95);
});

test('empirical epsilon of a perfect attack: infinite estimate, finite lower bound in closed form', () => {
  const members = Array.from({ length: 100 }, (_, i) => 1 + i);
  const nonMembers = Array.from({ length: 100 }, (_, i) => -i);
  const m = attackMetrics(members, nonMembers, 1e-5);
  assert.equal(m.auc, 1);
  assert.equal(m.advantage, 1);
  assert.equal(m.epsilon.estimate, Infinity);
  // The threshold comes from one half, TPR and FPR from the other 50 + 50. At (TPR 1, FPR 0) the
  // one-sided bounds at alpha/2 each are TPR low = 0.025^(1/50) and FPR high = 1 - 0.025^(1/50),
  // so both terms equal log((q - delta) / (1 - q)) with q = 0.025^(1/50).
  assert.equal(m.epsilon.evaluationMembers, 50);
  assert.equal(m.epsilon.comparisons, 1);
  const q = 0.025 ** (1 / 50);
  close(m.epsilon.lower95, Math.log((q - 1e-5) / (1 - q)), 1e-9);
  assert.equal(m.epsilon.upper95, Infinity);
  // Three attacks in one report: each rate at alpha / 6, q = (0.05 / 6)^(1/50).
  const q3 = (0.05 / 6) ** (1 / 50);
  close(heldOutEpsilon(members, nonMembers, 1e-5, { comparisons: 3 }).lower95, Math.log((q3 - 1e-5) / (1 - q3)), 1e-9);
});

test('an uninformative attack gives AUC 0.5, no advantage and epsilon 0', () => {
  const m = attackMetrics(Array(50).fill(0.3), Array(50).fill(0.3), 1e-5);
  assert.equal(m.auc, 0.5);
  assert.equal(m.advantage, 0);
  assert.equal(m.balancedAccuracy, 0.5);
  assert.equal(m.epsilon.lower95, 0);
  assert.equal(m.epsilon.estimate, 0);
});

/**
 * Randomized response with known epsilon: each example's bit is its membership, reported truthfully
 * with probability p = e^eps / (1 + e^eps). Every test then has TPR <= e^eps FPR (equality for the
 * best one), so a valid 95% lower bound exceeds eps in at most 5% of the runs.
 */
function randomizedResponse(eps: number, n: number, rng: Random): { members: number[]; nonMembers: number[] } {
  const p = Math.exp(eps) / (1 + Math.exp(eps));
  return {
    members: Array.from({ length: n }, () => (rng.uniform() < p ? 1 : 0)),
    nonMembers: Array.from({ length: n }, () => (rng.uniform() < p ? 0 : 1)),
  };
}

test('the empirical epsilon lower bound covers a known epsilon (randomized response, 200 seeds)', () => {
  const eps = 1.5;
  let above = 0;
  let positive = 0;
  for (let seed = 0; seed < 200; seed++) {
    const rng = new Random(1000 + seed);
    const { members, nonMembers } = randomizedResponse(eps, 400, rng);
    const m = attackMetrics(members, nonMembers, 0, { seed });
    if (m.epsilon.lower95 > eps) above++;
    if (m.epsilon.lower95 > 0) positive++;
  }
  assert.ok(above <= 10, `bound above the true epsilon in ${above} of 200 runs`);
  // It is a bound with power, not just 0: at eps 1.5 and 200 + 200 held-out examples it is positive.
  assert.ok(positive >= 190, `bound positive in only ${positive} of 200 runs`);
});

test('max over several attacks of a null mechanism: the corrected bound stays 0 in >= 95% of runs, the uncorrected selection does not', () => {
  // Scores independent of membership (eps = 0), three attacks per "report", continuous scores.
  let corrected = 0;
  let sameData = 0;
  for (let seed = 0; seed < 100; seed++) {
    const rng = new Random(7000 + seed);
    let best = 0;
    let bestSame = 0;
    for (let a = 0; a < 3; a++) {
      const members = Array.from({ length: 60 }, () => rng.normal());
      const nonMembers = Array.from({ length: 60 }, () => rng.normal());
      best = Math.max(best, attackMetrics(members, nonMembers, 0, { comparisons: 3, seed }).epsilon.lower95);
      // The old reading: threshold chosen and bounded on the same examples, no correction.
      bestSame = Math.max(bestSame, empiricalEpsilon(rocCurve(members, nonMembers), 60, 60, 0).lower95);
    }
    if (best > 0) corrected++;
    if (bestSame > 0) sameData++;
  }
  assert.ok(corrected <= 5, `corrected bound positive in ${corrected} of 100 null runs`);
  assert.ok(sameData > corrected, `selection on the same data: ${sameData} vs corrected ${corrected}`);
});

test('Clopper-Pearson and the incomplete beta against known values', () => {
  const [l0, u0] = clopperPearson(0, 10);
  assert.equal(l0, 0);
  close(u0, 0.3085, 1e-4); // 1 - 0.025^(1/10)
  close(u0, 1 - 0.025 ** 0.1, 1e-12);
  const [l5, u5] = clopperPearson(5, 10);
  close(l5, 0.1871, 1e-4);
  close(u5, 0.8129, 1e-4);
  // scipy.stats.beta.ppf values.
  const known: [number, number, number, number][] = [
    [3, 1000, 0.0006190999316495713, 0.008742023238478303],
    [500, 1000, 0.46854917297179194, 0.531450827028208],
    [999, 1000, 0.9944410757201734, 0.9999746825125088],
    [1, 2000, 1.2658823868557889e-05, 0.0027826398346589465],
  ];
  for (const [x, n, lo, hi] of known) {
    const [l, u] = clopperPearson(x, n);
    close(l, lo, 1e-10 + 1e-8 * lo, `lower(${x}, ${n})`);
    close(u, hi, 1e-10, `upper(${x}, ${n})`);
  }
  // I_x(1, b) = 1 - (1 - x)^b and I_x(a, 1) = x^a; scipy.special.betainc for the rest.
  close(regularizedBeta(0.3, 1, 4), 1 - 0.7 ** 4, 1e-12);
  close(regularizedBeta(0.6, 3, 1), 0.216, 1e-12);
  close(regularizedBeta(0.3, 2.5, 7.5), 0.6789434858661821, 1e-12);
  close(regularizedBeta(0.31, 300, 700), 0.7564186827315443, 1e-10);
  close(regularizedBeta(0.1, 0.5, 0.5), 0.20483276469913345, 1e-12);
  close(betaQuantile(0.6789434858661821, 2.5, 7.5), 0.3, 1e-12);
});

test('attack metrics on 2 x 2000 scores take well under a second', () => {
  const rng = new Random(5);
  const m = Array.from({ length: 2000 }, () => rng.normal() + 0.3);
  const o = Array.from({ length: 2000 }, () => rng.normal());
  const t0 = performance.now();
  const r = attackMetrics(m, o, 1e-5);
  const ms = performance.now() - t0;
  assert.ok(ms < 1500, `${ms} ms`);
  // Two unit normals 0.3 apart: AUC = Phi(0.3 / sqrt(2)) = 0.584 (sampling sd ~ 0.009).
  close(r.auc, 0.584, 0.03, 'auc');
});
