/**
 * Adaptive clipping (Andrew, Thakkar, McMahan, Ramaswamy 2021): the clipping bound tracks a
 * target quantile gamma of the per-example gradient norms, estimated privately. Each step
 *   b_t = (#{i : ||g_i|| <= C_t} + N(0, sigma_b^2)) / B_expected
 *   C_{t+1} = C_t * exp(-eta * (b_t - gamma))        (geometric update)
 * The count query has sensitivity 1 (each example changes it by at most one), so releasing it
 * with noise sigma_b and the gradient sum with noise sigma_g is, by their Theorem 1, as private
 * as one Gaussian mechanism with noise multiplier
 *   sigma = (sigma_g^-2 + (2 sigma_b)^-2)^(-1/2).
 * So for a total budget sigma we use sigma_g = (sigma^-2 - (2 sigma_b)^-2)^(-1/2), and the
 * accountant is told sigma: the bound costs privacy, stated and accounted for.
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

/** The gradient's noise multiplier that leaves `total` for the composition with the count query. */
export function gradientNoiseMultiplier(total: number, countNoise: number): number {
  if (total === 0) return 0;
  const rest = total ** -2 - (2 * countNoise) ** -2;
  if (!(rest > 0)) {
    throw new RpOnnxError(`--clip-count-noise ${countNoise} is too small for noise multiplier ${total}: it must exceed ${(total / 2).toFixed(3)}`);
  }
  return rest ** -0.5;
}

export class AdaptiveClipper {
  bound: number;
  constructor(private readonly opts: AdaptiveClipOptions) {
    if (!(opts.targetQuantile > 0 && opts.targetQuantile < 1)) throw new RpOnnxError('--clip-quantile must be in (0, 1)');
    this.bound = opts.initial;
  }
  /** Updates the bound from this step's per-example norms (clipped at the current bound). */
  update(norms: ArrayLike<number>, expectedBatch: number, rng: Random): number {
    let below = 0;
    for (let i = 0; i < norms.length; i++) if (norms[i]! <= this.bound) below++;
    const noisy = (below + this.opts.countNoise * rng.normal()) / expectedBatch;
    this.bound *= Math.exp(-this.opts.learningRate * (noisy - this.opts.targetQuantile));
    return this.bound;
  }
}
