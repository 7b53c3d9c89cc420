/**
 * Rényi-DP accountant for the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang
 * 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism"): RDP at integer orders
 * by the exact binomial expansion (their Section 3.3, integer alpha) and at fractional orders by
 * the two-series expansion with erfc terms; composition adds RDP over steps; the conversion to
 * (epsilon, delta) is the improved bound of Balle et al. 2020 (Theorem 21):
 *   eps = min_a [ RDP(a) + log((a-1)/a) - (log(delta) + log(a)) / (a-1) ].
 */
import { logAdd, logSub, logErfc } from './special.js';
import { RpOnnxError } from '../errors.js';

/** Orders used by default: 1.1..10.9 step 0.1, then 12..63 (as Opacus and TF Privacy). */
export const DEFAULT_ORDERS: readonly number[] = [
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 52 }, (_, i) => 12 + i),
];

/** log A_alpha for integer alpha: log E[(mu1/mu0)^alpha] expanded binomially. */
function logAInteger(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  let logBinom = 0; // log C(alpha, i), updated iteratively
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    const s = logBinom + i * Math.log(q) + (alpha - i) * Math.log1p(-q) + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

/** log A_alpha for fractional alpha: two alternating series with erfc tails. */
function logAFractional(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  let logCoef = 0; // log |C(alpha, i)| for the generalized binomial coefficient
  let sign = 1;
  for (let i = 0; ; i++) {
    if (i > 0) {
      const ratio = (alpha - i + 1) / i;
      if (ratio === 0) break;
      logCoef += Math.log(Math.abs(ratio));
      if (ratio < 0) sign = -sign;
    }
    const j = alpha - i;
    const logT0 = logCoef + i * Math.log(q) + j * Math.log1p(-q);
    const logT1 = logCoef + j * Math.log(q) + i * Math.log1p(-q);
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (sign > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
    if (i > 10000) throw new Error('RDP fractional series did not converge');
  }
  return logAdd(logA0, logA1);
}

/** RDP of one step of the sampled Gaussian mechanism at order alpha. */
export function rdpStep(q: number, sigma: number, alpha: number): number {
  if (!(q >= 0 && q <= 1)) throw new RpOnnxError(`sample rate must be in [0, 1], got ${q}`);
  if (!(sigma >= 0)) throw new RpOnnxError(`noise multiplier must be >= 0, got ${sigma}`);
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  const logA = Number.isInteger(alpha) ? logAInteger(q, sigma, alpha) : logAFractional(q, sigma, alpha);
  return logA / (alpha - 1);
}

/** One constant-parameter segment of training: `steps` steps at sample rate q and noise sigma. */
export interface Segment {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
}

/** RDP at each order of a composition of segments (RDP adds up over steps). */
export function composeRdp(segments: readonly Segment[], orders: readonly number[] = DEFAULT_ORDERS): number[] {
  return orders.map((a) => segments.reduce((s, seg) => s + (seg.steps === 0 ? 0 : seg.steps * rdpStep(seg.sampleRate, seg.noiseMultiplier, a)), 0));
}

/** (epsilon, best order) from RDP values at `orders`, by the improved conversion. */
export function rdpToDp(rdp: readonly number[], delta: number, orders: readonly number[] = DEFAULT_ORDERS): { epsilon: number; order: number } {
  if (!(delta > 0 && delta < 1)) throw new RpOnnxError(`--delta must be in (0, 1), got ${delta}`);
  let best = { epsilon: Infinity, order: NaN };
  orders.forEach((a, k) => {
    const r = rdp[k]!;
    const eps = r + Math.log((a - 1) / a) - (Math.log(delta) + Math.log(a)) / (a - 1);
    if (Number.isFinite(eps) && eps < best.epsilon) best = { epsilon: Math.max(0, eps), order: a };
  });
  return best;
}

/** Epsilon spent after the given segments at delta. */
export function epsilon(segments: readonly Segment[], delta: number, orders: readonly number[] = DEFAULT_ORDERS): number {
  return rdpToDp(composeRdp(segments, orders), delta, orders).epsilon;
}

/**
 * The smallest noise multiplier (to within the epsilon tolerance, as Opacus's
 * get_noise_multiplier) whose epsilon after `steps` steps at rate q is at most `targetEpsilon`.
 */
export function calibrateNoise(targetEpsilon: number, sampleRate: number, steps: number, delta: number, opts: { epsilonTolerance?: number; orders?: readonly number[] } = {}): number {
  if (!(targetEpsilon > 0)) throw new RpOnnxError(`--target-epsilon must be > 0, got ${targetEpsilon}`);
  const tol = opts.epsilonTolerance ?? 0.01;
  const eps = (sigma: number) => epsilon([{ sampleRate, noiseMultiplier: sigma, steps }], delta, opts.orders);
  let low = 0;
  let high = 10;
  let epsHigh = eps(high);
  while (epsHigh > targetEpsilon) {
    high *= 2;
    if (high > 1e6) throw new RpOnnxError(`epsilon ${targetEpsilon} is unreachable at sample rate ${sampleRate} for ${steps} steps`);
    epsHigh = eps(high);
  }
  while (targetEpsilon - epsHigh > tol) {
    const mid = (low + high) / 2;
    const e = eps(mid);
    if (e < targetEpsilon) {
      high = mid;
      epsHigh = e;
    } else low = mid;
  }
  return high;
}
