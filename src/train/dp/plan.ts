/**
 * Planning a DP-SGD run's noise before it starts: the start sigma given, or calibrated so the
 * planned steps end at or below a target epsilon, keeping the schedule's shape.
 */
import { RpOnnxError } from '../../errors.js';
import { epsilon as epsilonOf, calibrateNoise } from '../../privacy/rdp.js';
import { noiseAt, scheduleSegments, validateSchedule, type NoiseSchedule } from './noise-schedule.js';
import type { DpOptions } from './dp-sgd.js';

/** Plans the noise schedule for a run: the start sigma given or calibrated to the target epsilon. */
export function planNoise(dp: DpOptions, sampleRate: number, totalSteps: number, epochs: number): NoiseSchedule {
  const shape = (start: number): NoiseSchedule => ({
    name: dp.noiseSchedule, start, end: dp.noiseSchedule === 'constant' ? start : start * dp.noiseEndRatio,
    period: dp.noisePeriodSteps ?? Math.max(1, Math.round(1 / sampleRate)), totalSteps,
  });
  if (dp.noiseMultiplier !== undefined) {
    const s = shape(dp.noiseMultiplier);
    validateSchedule(s);
    return s;
  }
  if (dp.targetEpsilon === undefined) throw new RpOnnxError('DP training needs --noise-multiplier or --target-epsilon');
  if (dp.noise !== 'gaussian') throw new RpOnnxError(`--target-epsilon needs Gaussian noise: no accountant of rp-onnx covers --noise ${dp.noise}`);
  const target = dp.targetEpsilon;
  const eps = (start: number) => scheduledEpsilon(shape(start), dp, sampleRate, totalSteps, epochs);
  if (dp.noiseSchedule === 'constant' && dp.sampling === 'poisson') {
    return shape(calibrateNoise(target, sampleRate, totalSteps, dp.delta));
  }
  // Bisection on the start value, keeping the schedule's shape (end = ratio * start).
  let low = 0;
  let high = 1;
  while (eps(high) > target) {
    high *= 2;
    if (high > 1e5) throw new RpOnnxError(`epsilon ${target} is unreachable with this schedule`);
  }
  while (high - low > 1e-3 * high) {
    const mid = (low + high) / 2;
    if (eps(mid) <= target) high = mid;
    else low = mid;
  }
  const s = shape(high);
  validateSchedule(s);
  return s;
}

/** Epsilon a planned schedule will have spent after all its steps. */
function scheduledEpsilon(s: NoiseSchedule, dp: DpOptions, q: number, steps: number, epochs: number): number {
  if (dp.sampling === 'poisson') return epsilonOf(scheduleSegments(s, q, steps), dp.delta);
  const perEpoch = Math.ceil(steps / epochs);
  const segments = [];
  for (let e = 0; e < epochs; e++) {
    let min = Infinity;
    for (let t = e * perEpoch; t < Math.min(steps, (e + 1) * perEpoch); t++) min = Math.min(min, noiseAt(s, t));
    segments.push({ sampleRate: 1, noiseMultiplier: min, steps: 1 });
  }
  return epsilonOf(segments, dp.delta);
}

