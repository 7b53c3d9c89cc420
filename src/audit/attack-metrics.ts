/**
 * Metrics of a membership-inference attack from its scores on members and non-members (higher
 * score = "more likely a member"). Pure math, no I/O.
 *
 * - ROC: one point per distinct score t (the attack says "member" when score >= t), from
 *   (0, 0) at t = +inf to (1, 1). Tied scores move together: a threshold cannot split them.
 * - AUC: the Mann-Whitney statistic U / (n1 n0) = P(member score > non-member score) +
 *   1/2 P(equal), which is also the trapezoid area under that ROC.
 * - advantage: max over thresholds of |TPR - FPR| (Yeom et al. 2018); balanced accuracy: the best
 *   (TPR + 1 - FPR) / 2 over thresholds (a balanced evaluation set, the threshold chosen on it).
 * - TPR at FPR <= f: the largest TPR among ROC points with FPR <= f, without interpolation. A
 *   randomized threshold could reach the straight line between two ROC points, but a deployed
 *   attack with one threshold cannot, so the step reading is the attack's real operating point
 *   (and never above the interpolated value). With fewer than 1/f non-members only points with
 *   FPR = 0 qualify, so the metric is "TPR at zero false positives".
 *   A rate below 1/(non-members) cannot be read at all (the smallest non-zero FPR is 1/n): that
 *   TPR is reported as unavailable (null, with the reason), never as a number.
 * - empirical epsilon: an (eps, delta)-DP training algorithm forces every test to satisfy
 *   TPR <= e^eps FPR + delta and 1 - FPR <= e^eps (1 - TPR) + delta, so a ROC point implies
 *   eps >= max(log((TPR - delta) / FPR), log((1 - delta - FPR) / (1 - TPR))) (Jagielski et al.
 *   2020; Nasr et al. 2021). A valid one-sided 95% lower bound needs the threshold fixed before
 *   the data that bound it are seen, and a correction for every attack tried:
 *   1. members and non-members are split at random (seeded) into a selection half and an
 *      evaluation half;
 *   2. on the selection half the threshold with the largest Clopper-Pearson lower bound is chosen;
 *   3. on the evaluation half, at that threshold, TPR gets a one-sided Clopper-Pearson lower bound
 *      and FPR a one-sided upper bound, each at level alpha / (2 m) for m attacks in the report
 *      (Bonferroni: the max over attacks and the union over both rates hold with probability
 *      >= 1 - alpha), and eps >= the bound at (TPR low, FPR high) is the lower95.
 *   The point estimate and the upper end (two-sided interval) are read on the evaluation half at
 *   the same threshold. `empiricalEpsilon` (step 2's criterion on one set of examples) is kept for
 *   the selection, but its lower end is optimistic by the selection and is not reported as a bound.
 */
import { clopperPearson } from './beta.js';
import { erfc } from '../privacy/special.js';
import { Random } from '../random.js';

export interface RocPoint {
  /** The attack predicts "member" for score >= threshold (+Infinity for the (0, 0) point). */
  threshold: number;
  tpr: number;
  fpr: number;
  /** Members and non-members at or above the threshold. */
  tp: number;
  fp: number;
}

export interface EpsilonEstimate {
  /** Point estimate at the chosen threshold (Infinity when FPR is 0 or TPR is 1 there). */
  estimate: number;
  /** Lower confidence bound (attackMetrics: the valid one-sided 95% bound of the file comment). */
  lower95: number;
  /** Upper end of the two-sided 95% Clopper-Pearson interval at the same threshold. */
  upper95: number;
  /** The chosen ROC point. */
  threshold: number;
  tpr: number;
  fpr: number;
}

/** The reported empirical epsilon: held-out threshold, Bonferroni over `comparisons` attacks. */
export interface HeldOutEpsilon extends EpsilonEstimate {
  method: 'held-out threshold, one-sided Clopper-Pearson, Bonferroni';
  /** Attacks the bound is corrected for. */
  comparisons: number;
  /** Members and non-members of the evaluation half (TPR and FPR are read there). */
  evaluationMembers: number;
  evaluationNonMembers: number;
}

export const TPR_FPRS = { tprAtFpr1: 0.01, tprAtFpr01: 0.001, tprAtFpr001: 0.0001 } as const;
export type TprField = keyof typeof TPR_FPRS;

export interface AttackMetrics {
  auc: number;
  advantage: number;
  balancedAccuracy: number;
  /** TPR at FPR <= 1%, 0.1%, 0.01%; null when the FPR is below 1/(non-members) (see `unavailable`). */
  tprAtFpr1: number | null;
  tprAtFpr01: number | null;
  tprAtFpr001: number | null;
  /** Why a TPR above is null. */
  unavailable?: Partial<Record<TprField, string>>;
  epsilon: HeldOutEpsilon;
  delta: number;
  members: number;
  nonMembers: number;
}

interface Scored {
  s: number;
  member: boolean;
}

function checkScores(members: readonly number[], nonMembers: readonly number[]): Scored[] {
  if (members.length === 0 || nonMembers.length === 0) throw new RangeError('attack metrics need at least one member and one non-member score');
  const all: Scored[] = [];
  for (const s of members) all.push({ s, member: true });
  for (const s of nonMembers) all.push({ s, member: false });
  for (const e of all) if (Number.isNaN(e.s)) throw new RangeError('attack scores must not be NaN');
  return all;
}

export function rocCurve(members: readonly number[], nonMembers: readonly number[]): RocPoint[] {
  const all = checkScores(members, nonMembers).sort((a, b) => b.s - a.s);
  const points: RocPoint[] = [{ threshold: Infinity, tpr: 0, fpr: 0, tp: 0, fp: 0 }];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < all.length; i++) {
    if (all[i]!.member) tp++;
    else fp++;
    if (i + 1 < all.length && all[i + 1]!.s === all[i]!.s) continue;
    points.push({ threshold: all[i]!.s, tpr: tp / members.length, fpr: fp / nonMembers.length, tp, fp });
  }
  return points;
}

/** Mann-Whitney AUC, ties counted one half, from average ranks. */
export function auc(members: readonly number[], nonMembers: readonly number[]): number {
  const all = checkScores(members, nonMembers).sort((a, b) => a.s - b.s);
  let rankSum = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j + 1 < all.length && all[j + 1]!.s === all[i]!.s) j++;
    const averageRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (all[k]!.member) rankSum += averageRank;
    i = j + 1;
  }
  const n1 = members.length;
  const n0 = nonMembers.length;
  return (rankSum - (n1 * (n1 + 1)) / 2) / (n1 * n0);
}

/** The largest TPR among ROC points with FPR <= maxFpr (no interpolation, see above). */
export function tprAtFpr(roc: readonly RocPoint[], maxFpr: number): number {
  let best = 0;
  for (const p of roc) if (p.fpr <= maxFpr + 1e-12 && p.tpr > best) best = p.tpr;
  return best;
}

/**
 * The (eps, delta)-DP lower bound implied by one test's TPR and FPR: the max of
 * log((TPR - delta) / FPR) and log((1 - delta - FPR) / (1 - TPR)), at least 0. A term whose
 * numerator is not positive says nothing; a positive numerator over a zero denominator is +Infinity.
 */
export function epsilonBound(tpr: number, fpr: number, delta: number): number {
  const term = (num: number, den: number) => (num <= 0 ? 0 : den <= 0 ? Infinity : Math.log(num / den));
  return Math.max(0, term(tpr - delta, fpr), term(1 - delta - fpr, 1 - tpr));
}

/**
 * The threshold of a ROC curve with the largest Clopper-Pearson lower bound on epsilon, with its
 * two-sided interval on the same examples: the selection step (its lower end is not a valid bound).
 */
export function empiricalEpsilon(roc: readonly RocPoint[], members: number, nonMembers: number, delta: number, alpha = 0.05): EpsilonEstimate {
  let best: EpsilonEstimate | null = null;
  for (const p of roc) {
    const estimate = epsilonBound(p.tpr, p.fpr, delta);
    // The lower confidence bound never exceeds the point estimate: skip points that cannot win.
    if (best !== null && estimate < best.lower95) continue;
    const [tprLow, tprHigh] = clopperPearson(p.tp, members, alpha);
    const [fprLow, fprHigh] = clopperPearson(p.fp, nonMembers, alpha);
    const lower95 = epsilonBound(tprLow, fprHigh, delta);
    if (best === null || lower95 > best.lower95 || (lower95 === best.lower95 && estimate < best.estimate)) {
      best = { estimate, lower95, upper95: epsilonBound(tprHigh, fprLow, delta), threshold: p.threshold, tpr: p.tpr, fpr: p.fpr };
    }
  }
  return best!;
}

export interface EpsilonOptions {
  /** Attacks reported together (the Bonferroni factor; default 1). */
  comparisons?: number;
  /** Seed of the selection / evaluation split (default 0). */
  seed?: number;
  /** 1 - confidence (default 0.05). */
  alpha?: number;
}

/** z with P(N(0, 1) > z) = p, by bisection on erfc. */
function normalUpperQuantile(p: number): number {
  let lo = -40;
  let hi = 40;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (0.5 * erfc(mid / Math.SQRT2) > p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Wilson score interval of k successes in n at normal quantile z (fast; selection only). */
function wilson(k: number, n: number, z: number): [number, number] {
  const p = k / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z / d) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return [Math.max(0, c - h), Math.min(1, c + h)];
}

/**
 * Step 2: the threshold of the selection half with the largest lower bound on epsilon. Any rule
 * that sees only the selection half keeps the final bound valid; Wilson intervals are used because
 * they are fast on thousands of ROC points and close to Clopper-Pearson.
 */
function selectThreshold(roc: readonly RocPoint[], members: number, nonMembers: number, delta: number, alpha: number): RocPoint {
  const z = normalUpperQuantile(alpha / 2);
  let best = roc[0]!;
  let bestLower = -1;
  for (const p of roc) {
    const lower = epsilonBound(wilson(p.tp, members, z)[0], wilson(p.fp, nonMembers, z)[1], delta);
    if (lower > bestLower) { best = p; bestLower = lower; }
  }
  return best;
}

/** Splits 0..n-1 at random into two halves (the first gets floor(n / 2)). */
function halves(n: number, rng: Random): [number[], number[]] {
  const p = [...rng.permutation(n)];
  return [p.slice(0, Math.floor(n / 2)), p.slice(Math.floor(n / 2))];
}

/** The empirical epsilon with a valid one-sided lower bound (see the file comment). */
export function heldOutEpsilon(members: readonly number[], nonMembers: readonly number[], delta: number, o: EpsilonOptions = {}): HeldOutEpsilon {
  const m = o.comparisons ?? 1;
  const alpha = o.alpha ?? 0.05;
  if (!(Number.isInteger(m) && m >= 1)) throw new RangeError(`comparisons must be a positive integer, got ${m}`);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must lie in (0, 1), got ${alpha}`);
  const rng = new Random(o.seed ?? 0);
  const [selM, evalM] = halves(members.length, rng);
  const [selO, evalO] = halves(nonMembers.length, rng);
  const method = 'held-out threshold, one-sided Clopper-Pearson, Bonferroni' as const;
  const base = { method, comparisons: m, evaluationMembers: evalM.length, evaluationNonMembers: evalO.length };
  if (selM.length === 0 || selO.length === 0) {
    // Too few examples to hold any out: no bound.
    return { ...base, estimate: 0, lower95: 0, upper95: Infinity, threshold: Infinity, tpr: 0, fpr: 0 };
  }
  const pickScores = (s: readonly number[], idx: number[]) => idx.map((i) => s[i]!);
  const sm = pickScores(members, selM);
  const so = pickScores(nonMembers, selO);
  const chosen = selectThreshold(rocCurve(sm, so), sm.length, so.length, delta, alpha / m);
  const em = pickScores(members, evalM);
  const eo = pickScores(nonMembers, evalO);
  const t = chosen.threshold;
  const tp = em.filter((v) => v >= t).length;
  const fp = eo.filter((v) => v >= t).length;
  const tpr = tp / em.length;
  const fpr = fp / eo.length;
  // One-sided bounds at alpha / (2m) each = two-sided intervals at level alpha / m.
  const [tprLow] = clopperPearson(tp, em.length, alpha / m);
  const [, fprHigh] = clopperPearson(fp, eo.length, alpha / m);
  const [, tprHigh] = clopperPearson(tp, em.length, alpha);
  const [fprLow] = clopperPearson(fp, eo.length, alpha);
  return {
    ...base, estimate: epsilonBound(tpr, fpr, delta), lower95: epsilonBound(tprLow, fprHigh, delta),
    upper95: epsilonBound(tprHigh, fprLow, delta), threshold: t, tpr, fpr,
  };
}

/** The TPRs at the fixed FPRs, null (with the reason) where the FPR is finer than 1/(non-members). */
export function lowFprTprs(roc: readonly RocPoint[], nonMembers: number): Pick<AttackMetrics, TprField | 'unavailable'> {
  const out = {} as Record<TprField, number | null>;
  const unavailable: Partial<Record<TprField, string>> = {};
  for (const [field, f] of Object.entries(TPR_FPRS) as [TprField, number][]) {
    if (f * nonMembers < 1 - 1e-9) {
      out[field] = null;
      unavailable[field] = `FPR ${100 * f}% needs at least ${Math.ceil(1 / f)} non-members, the audit has ${nonMembers}`;
    } else {
      out[field] = tprAtFpr(roc, f);
    }
  }
  return { ...out, ...(Object.keys(unavailable).length > 0 ? { unavailable } : {}) };
}

export function attackMetrics(members: readonly number[], nonMembers: readonly number[], delta: number, o: EpsilonOptions = {}): AttackMetrics {
  if (!(delta >= 0 && delta < 1)) throw new RangeError(`delta must lie in [0, 1), got ${delta}`);
  const roc = rocCurve(members, nonMembers);
  let advantage = 0;
  let balanced = 0;
  for (const p of roc) {
    advantage = Math.max(advantage, Math.abs(p.tpr - p.fpr));
    balanced = Math.max(balanced, (p.tpr + 1 - p.fpr) / 2);
  }
  return {
    auc: auc(members, nonMembers), advantage, balancedAccuracy: balanced,
    ...lowFprTprs(roc, nonMembers.length),
    epsilon: heldOutEpsilon(members, nonMembers, delta, o), delta,
    members: members.length, nonMembers: nonMembers.length,
  };
}
