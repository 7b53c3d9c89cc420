/**
 * LiRA with shadow models (Carlini et al. 2022, "Membership Inference Attacks From First
 * Principles"). Inputs are logit-scaled confidences phi = log(p_y / (1 - p_y)): `target[a][i]`
 * for query a (the example itself, then its augmentations) of audited example i under the target,
 * `shadows[k][a][i]` under shadow k, and `include[k][i]` = 1 when shadow k trained on example i.
 *
 * - online: per example and query, Gaussians N(mu_in, s_in^2) and N(mu_out, s_out^2) fitted to the
 *   phis of the shadows that did / did not train on it; the score is the log likelihood ratio
 *   log N(phi_t; mu_in, s_in^2) - log N(phi_t; mu_out, s_out^2), averaged over queries.
 * - offline: only the OUT shadows; the score is (phi_t - mu_out) / s_out, the monotone form of
 *   the one-sided test (a larger phi than the OUT models give means member), averaged over queries.
 * Variance: 'per-example' fits s per example; 'global' pools the within-example variances over
 * all examples (one s_in and one s_out per query), the paper's choice for few shadows: a variance
 * from 8 values is too noisy to divide by. 'auto' = global below 64 shadows (32 per side), as in
 * the paper. Means are plain per-example means.
 */
import { RpOnnxError } from '../../errors.js';

export type VarianceMode = 'auto' | 'global' | 'per-example';
export const GLOBAL_VARIANCE_BELOW = 64;

type Matrix = readonly (ArrayLike<number>)[];

function check(target: Matrix, shadows: readonly Matrix[], include: readonly ArrayLike<number>[]): { n: number; q: number } {
  const q = target.length;
  const n = target[0]?.length ?? 0;
  if (q === 0 || n === 0) throw new RpOnnxError('LiRA needs at least one query of at least one example');
  if (shadows.length !== include.length) throw new RpOnnxError(`LiRA: ${shadows.length} shadow models but ${include.length} inclusion rows`);
  if (shadows.length < 2) throw new RpOnnxError(`LiRA needs at least 2 shadow models, got ${shadows.length}`);
  for (const s of shadows) {
    if (s.length !== q || s.some((row) => row.length !== n)) throw new RpOnnxError('LiRA: every shadow needs the same queries and examples as the target');
  }
  for (const row of include) if (row.length !== n) throw new RpOnnxError('LiRA: inclusion rows must cover every audited example');
  return { n, q };
}

interface Fit {
  mu: Float64Array;
  v: Float64Array;
  count: Uint32Array;
}

/** Per-example mean and (unbiased) variance of the shadows with include == side, one query. */
function fitSide(shadows: readonly Matrix[], include: readonly ArrayLike<number>[], a: number, n: number, side: 0 | 1): Fit {
  const mu = new Float64Array(n);
  const v = new Float64Array(n);
  const count = new Uint32Array(n);
  for (let k = 0; k < shadows.length; k++) {
    for (let i = 0; i < n; i++) if ((include[k]![i] ? 1 : 0) === side) { mu[i]! += shadows[k]![a]![i]!; count[i]!++; }
  }
  for (let i = 0; i < n; i++) mu[i] = count[i]! > 0 ? mu[i]! / count[i]! : NaN;
  for (let k = 0; k < shadows.length; k++) {
    for (let i = 0; i < n; i++) if ((include[k]![i] ? 1 : 0) === side) v[i]! += (shadows[k]![a]![i]! - mu[i]!) ** 2;
  }
  for (let i = 0; i < n; i++) v[i] = count[i]! > 1 ? v[i]! / (count[i]! - 1) : NaN;
  return { mu, v, count };
}

/** The within-example variance pooled over examples (degrees of freedom weighted). */
function pooled(f: Fit): number {
  let ss = 0;
  let df = 0;
  for (let i = 0; i < f.v.length; i++) if (f.count[i]! > 1) { ss += f.v[i]! * (f.count[i]! - 1); df += f.count[i]! - 1; }
  if (df === 0) throw new RpOnnxError('LiRA: no example has two shadows on one side: train more shadow models');
  return ss / df;
}

const FLOOR = 1e-12;

function resolveVariance(mode: VarianceMode, shadows: number): 'global' | 'per-example' {
  return mode === 'auto' ? (shadows < GLOBAL_VARIANCE_BELOW ? 'global' : 'per-example') : mode;
}

function varianceAt(f: Fit, i: number, global: number | null): number {
  const v = global ?? f.v[i]!;
  return Math.max(Number.isFinite(v) ? v : (global ?? FLOOR), FLOOR);
}

const logNormal = (x: number, mu: number, v: number) => -0.5 * Math.log(2 * Math.PI * v) - ((x - mu) ** 2) / (2 * v);

export interface LiraScores {
  scores: number[];
  variance: 'global' | 'per-example';
}

export function liraOnlineScores(target: Matrix, shadows: readonly Matrix[], include: readonly ArrayLike<number>[], mode: VarianceMode = 'auto'): LiraScores {
  const { n, q } = check(target, shadows, include);
  const variance = resolveVariance(mode, shadows.length);
  const scores = new Array<number>(n).fill(0);
  for (let a = 0; a < q; a++) {
    const fin = fitSide(shadows, include, a, n, 1);
    const fout = fitSide(shadows, include, a, n, 0);
    const gin = variance === 'global' ? pooled(fin) : null;
    const gout = variance === 'global' ? pooled(fout) : null;
    for (let i = 0; i < n; i++) {
      if (fin.count[i] === 0 || fout.count[i] === 0) throw new RpOnnxError(`LiRA-online: audited example ${i} is ${fin.count[i] === 0 ? 'IN' : 'OUT'} for no shadow model`);
      const t = target[a]![i]!;
      scores[i]! += (logNormal(t, fin.mu[i]!, varianceAt(fin, i, gin)) - logNormal(t, fout.mu[i]!, varianceAt(fout, i, gout))) / q;
    }
  }
  return { scores, variance };
}

export function liraOfflineShadowScores(target: Matrix, shadows: readonly Matrix[], include: readonly ArrayLike<number>[], mode: VarianceMode = 'auto'): LiraScores {
  const { n, q } = check(target, shadows, include);
  // The paper's threshold counts models per side; offline uses only the OUT half.
  const variance = resolveVariance(mode, shadows.length);
  const scores = new Array<number>(n).fill(0);
  for (let a = 0; a < q; a++) {
    const fout = fitSide(shadows, include, a, n, 0);
    const gout = variance === 'global' ? pooled(fout) : null;
    for (let i = 0; i < n; i++) {
      if (fout.count[i] === 0) throw new RpOnnxError(`LiRA-offline: audited example ${i} is OUT for no shadow model`);
      scores[i]! += (target[a]![i]! - fout.mu[i]!) / Math.sqrt(varianceAt(fout, i, gout)) / q;
    }
  }
  return { scores, variance };
}
