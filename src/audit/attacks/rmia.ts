/**
 * RMIA (Zarifzadeh, Liu, Shokri 2024, "Low-Cost High-Power Membership Inference Attacks"), online,
 * with the same shadow models as LiRA. For an audited example x and a population example z (data
 * that neither the target nor any shadow trained on):
 *   LR(x) = Pr(x | target) / Pr(x),  Pr(x) = mean over shadows of Pr(x | shadow),
 * where Pr(x | model) is the softmax probability of x's label (averaged over the queries), and x
 * is IN for about half the shadows, so the mean is the paper's Pr(x) over models trained on random
 * population data. A z is OUT for every shadow: Pr(z) is its mean over all of them.
 * The score of x is the fraction of population examples z with LR(x) / LR(z) > gamma (gamma = 1,
 * ML Privacy Meter's default). The score is a monotone function of LR(x) (the population's
 * empirical distribution of LR(z) evaluated at LR(x) / gamma): more population examples make it
 * finer, which matters at low false-positive rates where many members tie at the top.
 */
import { RpOnnxError } from '../../errors.js';

type Matrix = readonly (ArrayLike<number>)[];

/** Mean over queries of the true-class probability p = sigmoid(phi) (phi from exampleStats). */
export function probabilities(phi: Matrix): Float64Array {
  const n = phi[0]?.length ?? 0;
  const p = new Float64Array(n);
  for (const row of phi) for (let i = 0; i < n; i++) p[i]! += 1 / (1 + Math.exp(-row[i]!)) / phi.length;
  return p;
}

function ratios(target: Float64Array, shadows: readonly Float64Array[]): Float64Array {
  const n = target.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (const sh of shadows) s += sh[i]!;
    out[i] = target[i]! / Math.max(s / shadows.length, 1e-300);
  }
  return out;
}

export interface RmiaInput {
  /** phi[a][i] of the audited examples under the target. */
  target: Matrix;
  /** phi[k][a][i] under shadow k. */
  shadows: readonly Matrix[];
  /** phi[a][j] of the population examples under the target, and [k][a][j] under shadow k. */
  populationTarget: Matrix;
  populationShadows: readonly Matrix[];
  gamma?: number;
}

export function rmiaScores(x: RmiaInput): number[] {
  if (x.shadows.length < 1 || x.shadows.length !== x.populationShadows.length) throw new RpOnnxError('RMIA needs at least one shadow model queried on both the audited and the population examples');
  const gamma = x.gamma ?? 1;
  if (!(gamma > 0)) throw new RpOnnxError(`RMIA gamma must be positive, got ${gamma}`);
  const lrx = ratios(probabilities(x.target), x.shadows.map(probabilities));
  const lrz = ratios(probabilities(x.populationTarget), x.populationShadows.map(probabilities));
  if (lrz.length === 0) throw new RpOnnxError('RMIA needs population examples');
  const sorted = Float64Array.from(lrz).sort();
  // Fraction of z with LR(x) / LR(z) > gamma, i.e. LR(z) < LR(x) / gamma: a binary search.
  return Array.from(lrx, (v) => {
    const bound = v / gamma;
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! < bound) lo = mid + 1;
      else hi = mid;
    }
    return lo / sorted.length;
  });
}
