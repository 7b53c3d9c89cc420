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
 * - empirical epsilon: an (eps, delta)-DP training algorithm forces every test to satisfy
 *   TPR <= e^eps FPR + delta and 1 - FPR <= e^eps (1 - TPR) + delta, so a ROC point implies
 *   eps >= max(log((TPR - delta) / FPR), log((1 - delta - FPR) / (1 - TPR))).
 *   TPR and FPR are estimates from finitely many examples, so each is replaced by its two-sided
 *   95% Clopper-Pearson interval: the lower end of the interval on eps uses (TPR low, FPR high),
 *   the upper end (TPR high, FPR low) (Jagielski et al. 2020; Nasr et al. 2021). The reported
 *   point is the threshold with the largest lower confidence bound (a point with FPR = 1/n has a
 *   huge point estimate and a meaningless interval); its point estimate is given with it. The
 *   threshold is chosen on the same examples, as in those papers, so the bound is optimistic by
 *   that selection.
 */
import { clopperPearson } from './beta.js';

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
  /** Two-sided 95% confidence interval from Clopper-Pearson bounds on TPR and FPR. */
  lower95: number;
  upper95: number;
  /** The chosen ROC point. */
  threshold: number;
  tpr: number;
  fpr: number;
}

export interface AttackMetrics {
  auc: number;
  advantage: number;
  balancedAccuracy: number;
  tprAtFpr1: number;
  tprAtFpr01: number;
  epsilon: EpsilonEstimate;
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

/** The empirical epsilon of a ROC curve with its 95% interval (see the file comment). */
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

export function attackMetrics(members: readonly number[], nonMembers: readonly number[], delta: number): AttackMetrics {
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
    tprAtFpr1: tprAtFpr(roc, 0.01), tprAtFpr01: tprAtFpr(roc, 0.001),
    epsilon: empiricalEpsilon(roc, members.length, nonMembers.length, delta), delta,
    members: members.length, nonMembers: nonMembers.length,
  };
}
