/**
 * What a DP-SGD run may claim, in words (the statement printed and stored) and as data (the
 * `rp-onnx.privacy` record, enough to recompute epsilon from the model file). Conservative by
 * construction: seeded noise is never called private, non-Gaussian noise claims no epsilon, and
 * the guarantee covers the released parameters only (the per-epoch training loss and accuracy,
 * computed on the private data without noise, are not covered).
 */
import type { DpOptions } from './dp-sgd.js';
import type { NoiseSchedule } from './noise-schedule.js';
import type { RunLedger } from './ledger-factory.js';

export interface PrivacyStatement {
  mechanism: string;
  /** Null: no epsilon is claimed (seeded noise, or noise no accountant covers). */
  epsilon: number | null;
  delta: number;
  /** The accountant that computed epsilon ('none' when none applies). */
  accountant: string;
  /** Whether the run is private at all (false for seeded, replayable noise). */
  private: boolean;
  statement: string;
}

export const NOT_COVERED = 'the guarantee covers the released parameters only: the training loss and accuracy printed per epoch are computed on the private data without noise and are not private';

export function privacyStatement(dp: DpOptions, ledger: RunLedger, schedule: NoiseSchedule): PrivacyStatement {
  const mechanism = dp.encodeTopK !== undefined ? 'dp-sgd with top-k gradient encoding' : 'dp-sgd';
  if (!dp.secureRng) {
    return {
      mechanism, epsilon: null, delta: dp.delta, accountant: 'none', private: false,
      statement: `NOT private: the noise and the batch sampling come from a seeded generator (dp seed ${dp.seed ?? 0}); anyone who knows the seed can replay and subtract the noise, so no epsilon is claimed (for tests only)`,
    };
  }
  if (dp.noise !== 'gaussian') {
    return {
      mechanism, epsilon: null, delta: dp.delta, accountant: 'none', private: false,
      statement: `${dp.noise} noise: no accountant of rp-onnx covers it, so no epsilon is claimed (the accountants are for Gaussian noise only)`,
    };
  }
  const eps = ledger.epsilon();
  const clip = dp.clip === 'adaptive' ? ', adaptive clipping with its count query included in the accounting (Andrew et al. 2021)' : `, clipping bound ${dp.maxGradNorm}`;
  const sched = schedule.name === 'constant' ? `noise multiplier ${schedule.start.toFixed(4)}` : `${schedule.name} noise schedule ${schedule.start.toFixed(4)} -> ${schedule.end.toFixed(4)}`;
  return {
    mechanism, epsilon: eps, delta: dp.delta, accountant: ledger.accountant, private: true,
    statement: `(${eps.toFixed(4)}, ${dp.delta})-DP for the released parameters with respect to ${ledger.adjacency === 'add-remove' ? 'adding or removing' : 'replacing'} one training example, after ${ledger.steps} steps: ${sched}${clip}; ${ledger.describe()}; ${NOT_COVERED}`,
  };
}
