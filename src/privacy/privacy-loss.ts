/**
 * The privacy loss of one release of the Poisson-subsampled Gaussian mechanism, discretised on a
 * grid for the PRV accountant (Gopi, Lee, Wutschitz 2021, "Numerical composition of differential
 * privacy"). With mu = 1/sigma, x the released value in units of sigma, and
 *   g(x) = log(1 - q + q e^{mu x - mu^2/2})   (log of the density ratio sampled / not sampled),
 * add/remove adjacency has two directions, each with its privacy random variable (PRV):
 *   remove: Y = g(x),  x ~ (1 - q) N(0, 1) + q N(mu, 1)
 *   add:    Y = -g(x), x ~ N(0, 1)
 * (at q = 1 both are N(mu^2/2, mu^2), the Gaussian mechanism). For a composition, delta(eps) =
 * E[(1 - e^{eps - sum Y})_+] in each direction and the mechanism's delta is the larger.
 *
 * Discretisation (cell-centred, mean-preserving): the grid is t_k = k h; cell k is
 * [(k - 1/2) h, (k + 1/2) h). Y in cell k becomes t_k + s, one shift s for the whole
 * distribution chosen so the discrete mean equals the continuous one. Then Z = (t_k + s) - Y has
 * mean 0 and lies in an interval of width h, independently over releases, so Hoeffding bounds
 * the composed rounding error: P(sum Y > sum Ytilde + e) <= exp(-2 e^2 / (T h^2)).
 * Mass above the grid's top goes to +infinity (a release that breaks privacy outright: counted
 * in delta); mass below its bottom is dropped and the rest renormalised (conditioning on
 * Y >= bottom makes Y stochastically larger). Both make the bound more conservative, never less.
 */
import { erfc } from './special.js';

export type LossDirection = 'remove' | 'add';

/** Standard normal CDF Phi(x) and survival 1 - Phi(x), each accurate in its own tail. */
const normCdf = (x: number) => (x === -Infinity ? 0 : x === Infinity ? 1 : 0.5 * erfc(-x / Math.SQRT2));
const normSf = (x: number) => (x === Infinity ? 0 : x === -Infinity ? 1 : 0.5 * erfc(x / Math.SQRT2));
const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** Beyond |x| = 38 (in sigma units around each component) the Gaussian mass underflows. */
const X_RANGE = 38;
/** Above mu + 13.5 (remove) or 13.5 (add) the tail mass is below 1e-41: it goes to the infinite or dropped part. */
const X_TAIL = 13.5;
/** Largest cell width in x for the 3-point Simpson rule (relative error < 1e-7 within the range). */
const SIMPSON_WIDTH = 0.02;

export interface DiscreteLoss {
  /** Grid index of pmf[0]. */
  k0: number;
  /** Probabilities of the finite values t_k + shift, conditioned on being finite (sum 1). */
  pmf: Float64Array;
  shift: number;
  /** Probability of an infinite loss (above the grid). */
  pInf: number;
}

/** The loss g(x) and its inverse, stable for all x. */
function lossFunctions(q: number, sigma: number) {
  const mu = 1 / sigma;
  const logQ = Math.log(q);
  const g = (x: number): number => {
    const u = mu * x - (mu * mu) / 2;
    if (q === 1) return u;
    return u > 0 ? u + Math.log(q + (1 - q) * Math.exp(-u)) : Math.log1p(q * Math.expm1(u));
  };
  /** x with g(x) = t; -Infinity at or below the bottom of g's range, log(1 - q). */
  const inverse = (t: number): number => {
    if (q === 1) return (t + (mu * mu) / 2) / mu;
    const a = Math.expm1(t) + q;
    if (!(a > 0)) return -Infinity;
    return (Math.log(a) - logQ + (mu * mu) / 2) / mu;
  };
  return { mu, g, inverse };
}

/**
 * The discretised PRV of one release in one direction on the grid of mesh h restricted to
 * cells [kLo, kHi].
 */
export function discretiseLoss(direction: LossDirection, q: number, sigma: number, h: number, kLo: number, kHi: number): DiscreteLoss {
  const { mu, g, inverse } = lossFunctions(q, sigma);
  const sign = direction === 'remove' ? 1 : -1;
  // x-density and its mass on [a, b], each mixture component in its accurate tail.
  const density = direction === 'remove'
    ? (x: number) => (1 - q) * Math.exp(-0.5 * x * x - LOG_SQRT_2PI) + q * Math.exp(-0.5 * (x - mu) ** 2 - LOG_SQRT_2PI)
    : (x: number) => Math.exp(-0.5 * x * x - LOG_SQRT_2PI);
  const gaussMass = (a: number, b: number) => (b <= 0 ? normCdf(b) - normCdf(a) : a >= 0 ? normSf(a) - normSf(b) : 1 - normCdf(a) - normSf(b));
  const mass = direction === 'remove'
    ? (a: number, b: number) => (1 - q) * gaussMass(a, b) + q * gaussMass(a - mu, b - mu)
    : gaussMass;
  // x at loss value t (the loss is increasing in x for remove, decreasing for add).
  const xAt = (t: number) => (sign > 0 ? inverse(t) : inverse(-t));
  const xLo = -X_RANGE;
  const xHi = X_TAIL + (direction === 'remove' ? mu : 0);
  // Cells that can hold mass: the losses at the ends of the x range, clipped to [kLo, kHi].
  const tEnds = [sign * g(xLo), sign * g(xHi)];
  const first = Math.max(kLo, Math.floor(Math.min(...tEnds) / h + 0.5) - 1);
  const last = Math.min(kHi, Math.ceil(Math.max(...tEnds) / h + 0.5) + 1);
  const m = Math.max(0, last - first + 1);
  const pmf = new Float64Array(m);
  // Mass beyond the top edge is an infinite loss; below the bottom edge it is dropped.
  const topX = xAt((last + 0.5) * h);
  const bottomX = xAt((first - 0.5) * h);
  // (remove: what lies above the x range is infinite too; add: below x = -38 lies < 1e-315.)
  const pInf = sign > 0 ? mass(Math.min(topX, xHi), Infinity) : mass(-Infinity, topX);
  let total = 0;
  let meanSum = 0;
  let gridMean = 0;
  let xPrev = bottomX;
  let fPrev = Number.isFinite(bottomX) ? density(bottomX) : 0;
  for (let i = 0; i < m; i++) {
    const k = first + i;
    const tA = (k - 0.5) * h;
    const tB = (k + 0.5) * h;
    const xNext = xAt(tB);
    const fNext = Number.isFinite(xNext) ? density(xNext) : 0;
    // Ends of the cell in x, with the loss (exactly the edge's t) and density there.
    const lowFirst = sign > 0;
    let a = lowFirst ? xPrev : xNext;
    let b = lowFirst ? xNext : xPrev;
    const fa = lowFirst ? fPrev : fNext;
    const fb = lowFirst ? fNext : fPrev;
    const ya = lowFirst ? tA : tB;
    const yb = lowFirst ? tB : tA;
    xPrev = xNext;
    fPrev = fNext;
    if (!(b > a)) continue;
    const clipped = a < xLo || b > xHi;
    a = Math.max(a, xLo);
    b = Math.min(b, xHi);
    if (!(b > a)) continue;
    let p: number;
    let ey: number;
    const w = b - a;
    if (w <= SIMPSON_WIDTH && !clipped) {
      const mid = (a + b) / 2;
      const fm = density(mid);
      p = (w / 6) * (fa + 4 * fm + fb);
      ey = (w / 6) * (ya * fa + 4 * sign * g(mid) * fm + yb * fb);
    } else {
      // A wide or clipped cell (the flat ends of g): exact mass, mean by composite Simpson.
      p = mass(a, b);
      const parts = 2 * Math.min(2048, Math.ceil(w / SIMPSON_WIDTH / 2));
      const dx = w / parts;
      let s = 0;
      let z = 0;
      for (let j = 0; j <= parts; j++) {
        const x = a + j * dx;
        const c = j === 0 || j === parts ? 1 : j % 2 === 1 ? 4 : 2;
        const f = density(x);
        s += c * sign * g(x) * f;
        z += c * f;
      }
      // The conditional mean lies inside the cell whatever the quadrature says.
      const meanInCell = z > 0 ? s / z : tB;
      ey = p * Math.min(tB, Math.max(tA, meanInCell));
    }
    if (!(p > 0)) continue;
    pmf[i] = p;
    total += p;
    meanSum += ey;
    gridMean += p * k * h;
  }
  if (!(total > 0)) {
    // All the mass is above the grid (sigma tiny): an infinite loss with probability ~ 1.
    return { k0: first, pmf, shift: 0, pInf: Math.max(pInf, 1 - 1e-300) };
  }
  for (let i = 0; i < m; i++) pmf[i]! /= total;
  // The shift that preserves the mean; a guard of 1e-12 h upward keeps rounding on the safe side.
  const shift = (meanSum - gridMean) / total + 1e-12 * h;
  return { k0: first, pmf, shift, pInf: Math.min(1, pInf) };
}
