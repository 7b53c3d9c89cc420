/**
 * Planning a DP-SGD run's noise before it starts: the start sigma given, or calibrated so the
 * planned run ends at or below a target epsilon, keeping the schedule's shape.
 *
 * The plan is accounted exactly as the loop will run: the steps are replayed through a
 * PrivacyLedger with the run's accountant, sampling, rate and delta, `stepsPerEpoch` steps per
 * epoch with endEpoch() at the same boundaries (the last epoch may be short), at the sigmas the
 * loop will record (noiseAt of the schedule; adaptive clipping's count query is inside that
 * total sigma, see adaptive-clipping.ts). The loop's own ledger therefore reaches exactly the
 * planned epsilon, and calibration returns a start sigma whose planned epsilon is at most the
 * target (as Opacus's get_noise_multiplier: never above, within a tolerance of 0.01 below).
 */
import { RpOnnxError } from '../../errors.js';
import { noiseAt, validateSchedule, type NoiseSchedule } from './noise-schedule.js';
import { PrivacyLedger } from './accountant.js';
import type { DpOptions } from './dp-sgd.js';

export interface RunPlan {
  sampleRate: number;
  stepsPerEpoch: number;
  totalSteps: number;
}

/** Epsilon tolerance of the calibration (below the target, never above). */
const EPSILON_TOLERANCE = 0.01;

/** Plans the noise schedule for a run: the start sigma given or calibrated to the target epsilon. */
export function planNoise(dp: DpOptions, plan: RunPlan): NoiseSchedule {
  validatePlan(plan);
  const shape = (start: number): NoiseSchedule => ({
    name: dp.noiseSchedule, start, end: dp.noiseSchedule === 'constant' ? start : start * dp.noiseEndRatio,
    period: dp.noisePeriodSteps ?? Math.max(1, Math.round(1 / plan.sampleRate)), totalSteps: plan.totalSteps,
  });
  if (dp.noiseMultiplier !== undefined) {
    const s = shape(dp.noiseMultiplier);
    validateSchedule(s);
    return s;
  }
  if (dp.targetEpsilon === undefined) throw new RpOnnxError('DP training needs --noise-multiplier or --target-epsilon');
  if (dp.noise !== 'gaussian') throw new RpOnnxError(`targetEpsilon needs Gaussian noise: no accountant of rp-onnx covers the ${dp.noise} family`, { param: 'targetEpsilon' });
  const target = dp.targetEpsilon;
  if (!(target > 0)) throw new RpOnnxError(`targetEpsilon must be > 0, got ${target}`, { param: 'targetEpsilon' });
  validateSchedule(shape(1));
  const eps = (start: number) => plannedEpsilon(shape(start), dp, plan);
  // PRV is tighter than RDP: the (cheaper) RDP calibration brackets it from above.
  const guess = (dp.accountant ?? 'prv') === 'rdp' ? 1 : calibrate((s) => plannedEpsilon(shape(s), { ...dp, accountant: 'rdp' }, plan), target, 1, 0.05);
  const s = shape(calibrate(eps, target, guess, EPSILON_TOLERANCE));
  validateSchedule(s);
  return s;
}

/**
 * The smallest start (to within `tolerance` in epsilon) with eps(start) <= target, eps
 * non-increasing in start: bracket by doubling/halving from `guess`, then false position on
 * log(start) (Illinois), always keeping a start that meets the target.
 */
function calibrate(eps: (start: number) => number, target: number, guess: number, tolerance: number): number {
  let hi = guess;
  let eHi = eps(hi);
  while (eHi > target) {
    hi *= 2;
    if (hi > 1e6) throw new RpOnnxError(`epsilon ${target} is unreachable with this schedule and sampling`);
    eHi = eps(hi);
  }
  let lo = hi / 2;
  let eLo = eps(lo);
  while (eLo <= target) {
    hi = lo;
    eHi = eLo;
    lo /= 2;
    if (lo < 1e-6) return hi;
    eLo = eps(lo);
  }
  // Invariant: eps(lo) > target >= eps(hi).
  let side = 0;
  for (let i = 0; i < 60 && target - eHi > tolerance && hi - lo > 1e-6 * hi; i++) {
    const fLo = Number.isFinite(eLo) ? eLo - target : 1e3;
    const fHi = eHi - target;
    const x = Math.log(lo) + ((Math.log(hi) - Math.log(lo)) * fLo) / (fLo - fHi);
    const mid = Math.min(hi * (1 - 1e-9), Math.max(lo * (1 + 1e-9), Math.exp(x)));
    const e = eps(mid);
    if (e <= target) {
      hi = mid;
      eHi = e;
      if (side === 1) eLo = target + (eLo - target) / 2;
      side = 1;
    } else {
      lo = mid;
      eLo = e;
      if (side === -1) eHi = target + (eHi - target) / 2;
      side = -1;
    }
  }
  return hi;
}

function validatePlan(p: RunPlan): void {
  if (!(p.sampleRate > 0 && p.sampleRate <= 1)) throw new RpOnnxError(`sample rate must be in (0, 1], got ${p.sampleRate}`);
  if (!(Number.isInteger(p.stepsPerEpoch) && p.stepsPerEpoch >= 1)) throw new RpOnnxError(`steps per epoch must be a positive integer, got ${p.stepsPerEpoch}`);
  if (!(Number.isInteger(p.totalSteps) && p.totalSteps >= 1)) throw new RpOnnxError(`total steps must be a positive integer, got ${p.totalSteps}`);
}

/** Epsilon the planned run will have spent after all its steps, accounted as the loop does. */
export function plannedEpsilon(s: NoiseSchedule, dp: DpOptions, plan: RunPlan): number {
  const ledger = new PrivacyLedger({ accountant: dp.accountant ?? 'prv', sampling: dp.sampling, sampleRate: plan.sampleRate, delta: dp.delta });
  for (let t = 0; t < plan.totalSteps; t++) {
    ledger.record(noiseAt(s, t));
    if ((t + 1) % plan.stepsPerEpoch === 0 || t + 1 === plan.totalSteps) ledger.endEpoch();
  }
  return ledger.epsilon();
}
