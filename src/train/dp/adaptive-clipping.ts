/**
 * Adaptive clipping (Andrew, Thakkar, McMahan, Ramaswamy 2021): the clipping bound tracks a
 * target quantile gamma of the per-example gradient norms, estimated privately. Each step
 *   b_t = (sum_i ([||g_i|| <= C_t] - 1/2) + N(0, sigma_b^2)) / B_expected + 1/2
 *   C_{t+1} = C_t * exp(-eta * (b_t - gamma))        (geometric update)
 * Each indicator is shifted by -1/2 as in TF Privacy, so the released sum has sensitivity 1/2
 * under add/remove (adding or removing one example moves it by +-1/2; the plain 0/1 count would
 * move by 1). The joint release of the gradient sum (sensitivity C, noise sigma_g C) and this
 * sum (sensitivity 1/2, noise sigma_b) is one Gaussian mechanism whose sensitivity-to-noise ratio
 * is sqrt(sigma_g^-2 + (2 sigma_b)^-2), i.e. noise multiplier
 *   sigma = (sigma_g^-2 + (2 sigma_b)^-2)^(-1/2)          (their Theorem 1).
 * So for a total budget sigma we use sigma_g = (sigma^-2 - (2 sigma_b)^-2)^(-1/2), and the
 * accountant is told sigma: the bound costs privacy, stated and accounted for. Under replace-one
 * (shuffle) both sensitivities double (2C and 1), and the ledger halves sigma for both.
 */
import { RpOnnxError } from '../../errors.js';
import type { Random } from '../../random.js';

export interface AdaptiveClipOptions {
  initial: number;
  targetQuantile: number;
  learningRate: number;
  /** Noise std of the clipped-count query (in counts). */
  countNoise: number;
}

/** Add/remove sensitivity of the released (shifted) count. */
export const COUNT_SENSITIVITY = 0.5;

/** The gradient's noise multiplier that leaves `total` for the composition with the count query. */
export function gradientNoiseMultiplier(total: number, countNoise: number): number {
  if (total === 0) return 0;
  const rest = total ** -2 - (COUNT_SENSITIVITY / countNoise) ** 2;
  if (!(rest > 0)) {
    throw new RpOnnxError(`clipCountNoise ${countNoise} is too small for the total noise multiplier ${total}: it must exceed ${(total / 2).toFixed(3)}`, { param: 'clipCountNoise' });
  }
  return rest ** -0.5;
}

export class AdaptiveClipper {
  bound: number;
  constructor(private readonly opts: AdaptiveClipOptions) {
    if (!(opts.targetQuantile > 0 && opts.targetQuantile < 1)) throw new RpOnnxError('clipQuantile must be in (0, 1)', { param: 'clipQuantile' });
    this.bound = opts.initial;
  }
  /** Updates the bound from this step's per-example norms (clipped at the current bound). */
  update(norms: ArrayLike<number>, expectedBatch: number, rng: Random): number {
    // Each example contributes +1/2 (unclipped) or -1/2: sensitivity 1/2, as accounted.
    let shifted = 0;
    for (let i = 0; i < norms.length; i++) shifted += norms[i]! <= this.bound ? 0.5 : -0.5;
    const noisy = (shifted + this.opts.countNoise * rng.normal()) / expectedBatch + 0.5;
    this.bound *= Math.exp(-this.opts.learningRate * (noisy - this.opts.targetQuantile));
    return this.bound;
  }
}
