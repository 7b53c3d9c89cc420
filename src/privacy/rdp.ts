/**
 * Rényi-DP accountant for the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang
 * 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism"): RDP at integer orders
 * by the exact binomial expansion (their Section 3.3, integer alpha) and at fractional orders by
 * the two-series expansion with erfc terms where it converges quickly (small q), otherwise by
 * direct quadrature of A_alpha = E_{x ~ N(0, sigma^2)}[(1 - q + q e^{(2x - 1)/(2 sigma^2)})^alpha]
 * (near q = 1/2 the series' terms decay only polynomially in i); composition adds RDP over
 * steps; the conversion to
 * (epsilon, delta) is the improved bound of Balle et al. 2020 (Theorem 21):
 *   eps = min_a [ RDP(a) + log((a-1)/a) - (log(delta) + log(a)) / (a-1) ].
 */
import { logAdd, logSub, logErfc } from './special.js';
import { RpOnnxError } from '../errors.js';

/**
 * Orders used by default: 1.1..10.9 step 0.1, then 12..63 (as Opacus and TF Privacy), then a few
 * large orders, without which no sigma reaches epsilon below ~0.1 at delta 1e-5 (at order 63 the
 * conversion alone costs (log(1/delta) - log 63)/62 + log(62/63) = 0.10).
 */
export const DEFAULT_ORDERS: readonly number[] = [
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 52 }, (_, i) => 12 + i),
  80, 96, 128, 192, 256, 384, 512, 1024,
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

/** Terms of the fractional series before falling back to quadrature. */
const SERIES_TERMS = 200;

/**
 * log A_alpha for fractional alpha: two alternating series with erfc tails; undefined when the
 * terms have not fallen below e^-30 after SERIES_TERMS terms.
 */
function logAFractionalSeries(q: number, sigma: number, alpha: number): number | undefined {
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
    if (i >= SERIES_TERMS) return undefined;
  }
  return logAdd(logA0, logA1);
}

/**
 * log A_alpha by the trapezoid rule on the Gaussian integral (any alpha > 1). In log space the
 * integrand is alpha * log(1 - q + q e^u) - x^2 / (2 sigma^2), u = (2x - 1)/(2 sigma^2): below
 * x = 0 a Gaussian of width sigma, above it a Gaussian of width sigma centred near alpha; it is
 * analytic, so the trapezoid rule with a step of a fraction of min(sigma, sigma^2) converges to
 * machine precision. The range [-10 sigma, alpha + 10 sigma] leaves out less than e^-50 of it.
 */
function logAQuadrature(q: number, sigma: number, alpha: number): number {
  const s2 = sigma * sigma;
  const lo = -10 * sigma;
  const hi = alpha + 10 * sigma;
  const dx = Math.min(sigma, s2) / 16;
  const n = Math.ceil((hi - lo) / dx);
  const logQ = Math.log(q);
  const log1Q = Math.log1p(-q);
  const logf = (x: number) => alpha * logAdd(log1Q, logQ + (2 * x - 1) / (2 * s2)) - (x * x) / (2 * s2);
  let peak = -Infinity;
  for (let k = 0; k <= n; k++) peak = Math.max(peak, logf(lo + ((hi - lo) * k) / n));
  let sum = 0;
  for (let k = 0; k <= n; k++) sum += (k === 0 || k === n ? 0.5 : 1) * Math.exp(logf(lo + ((hi - lo) * k) / n) - peak);
  return peak + Math.log((sum * (hi - lo)) / n) - Math.log(sigma * Math.sqrt(2 * Math.PI));
}

function logAFractional(q: number, sigma: number, alpha: number): number {
  return logAFractionalSeries(q, sigma, alpha) ?? logAQuadrature(q, sigma, alpha);
}

/** log A_alpha by quadrature (exported for tests: a second method for the series). */
export const logAByQuadrature = logAQuadrature;

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

/**
 * (epsilon, best order) from RDP values at `orders`, by the improved conversion. When no order
 * gives a finite bound (sigma 0: no noise) epsilon is Infinity and the order null.
 */
export function rdpToDp(rdp: readonly number[], delta: number, orders: readonly number[] = DEFAULT_ORDERS): { epsilon: number; order: number | null } {
  if (!(delta > 0 && delta < 1)) throw new RpOnnxError(`delta must be in (0, 1), got ${delta}`, { param: 'delta' });
  let best: { epsilon: number; order: number | null } = { epsilon: Infinity, order: null };
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
  if (!(targetEpsilon > 0)) throw new RpOnnxError(`targetEpsilon must be > 0, got ${targetEpsilon}`, { param: 'targetEpsilon' });
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
