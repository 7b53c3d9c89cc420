/**
 * The exact epsilon of one Gaussian mechanism (Balle & Wang 2018), the closed-form reference the
 * accountant tests compare with: sensitivity 1 and noise std s have
 * delta(eps) = Phi(-eps s + 1/(2s)) - e^eps Phi(-eps s - 1/(2s)), solved for eps by bisection.
 * T-fold composition at q = 1 is one Gaussian mechanism of noise s / sqrt(T).
 */
import { erfc } from '../../src/privacy/special.js';

const Phi = (x: number) => 0.5 * erfc(-x / Math.SQRT2);

export function gaussianEpsilon(s: number, delta: number): number {
  const d = (e: number) => Phi(-e * s + 1 / (2 * s)) - Math.exp(e) * Phi(-e * s - 1 / (2 * s));
  let lo = 0;
  let hi = 1;
  while (d(hi) > delta) hi *= 2;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (d(mid) > delta) lo = mid;
    else hi = mid;
  }
  return hi;
}
