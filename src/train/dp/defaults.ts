/**
 * The DP-SGD defaults, in one place: the CLI's flags, the experiments and the leakage attack read
 * them from here, so a default changes once and everywhere.
 */
import type { NoiseScheduleName } from './noise-schedule.js';
import type { Sampling } from './accountant.js';
import type { NoiseFamily } from './noise.js';

import { ACCOUNTANT_NAMES, DEFAULT_ACCOUNTANT, type AccountantName } from '../../privacy/accountants/registry.js';

export type { AccountantName };
/** The registered accountants, for the CLI's choices. */
export const ACCOUNTANTS: readonly AccountantName[] = ACCOUNTANT_NAMES;

export const DP_DEFAULTS = Object.freeze({
  /** Clipping bound C on each example's whole gradient (L2). */
  maxGradNorm: 1,
  noiseSchedule: 'constant' as NoiseScheduleName,
  /** End sigma = ratio * start sigma for decaying schedules. */
  noiseEndRatio: 0.5,
  /** PRV (Gopi et al. 2021), as Opacus: tighter than RDP and still an upper bound. */
  accountant: DEFAULT_ACCOUNTANT,
  /** Poisson sampling: the sampling the subsampled-Gaussian accountants assume. */
  sampling: 'poisson' as Sampling,
  clip: 'constant' as 'constant' | 'adaptive',
  /** Adaptive clipping (Andrew et al. 2021): target quantile and geometric learning rate. */
  clipQuantile: 0.5,
  clipLearningRate: 0.2,
  noise: 'gaussian' as NoiseFamily,
  /** Denoising threshold, in noise standard deviations, when --denoise is given without a value. */
  denoiseThreshold: 2,
  secureRng: true,
});

/**
 * Default delta for N training examples: the largest power of ten not above 0.1/N, so delta is
 * at least 10x below 1/N (a mechanism that publishes one random example outright is
 * (0, 1/N)-DP; delta must be well below that to mean anything). N = 60,000 -> 1e-6.
 */
export function defaultDelta(n: number): number {
  if (!(n >= 1)) return 1e-6;
  // 10^-k written as a decimal literal parse, so 1e-6 is exactly the double of "1e-6".
  let k = Math.ceil(-Math.log10(0.1 / n));
  // log10 can land a hair off an integer: make sure 10^-k <= 0.1/N and 10^-(k-1) > 0.1/N.
  while (Number(`1e-${k}`) > 0.1 / n) k++;
  while (k > 1 && Number(`1e-${k - 1}`) <= 0.1 / n) k--;
  return Number(`1e-${k}`);
}
