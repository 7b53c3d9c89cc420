/**
 * Dynamic privacy parameters (Wei, Liu et al.): the noise multiplier follows a decaying
 * schedule over the T steps of training, from `start` to `end` (t = 0..T-1, u = t/(T-1)):
 * - constant:    sigma_t = start
 * - linear:      sigma_t = start + (end - start) * u
 * - staircase:   sigma_t = start * (end/start)^(floor(t / P) / floor((T-1) / P)), P = period steps
 *                (geometric steps held for P steps each; reaches `end` on the last stair)
 * - exponential: sigma_t = start * (end/start)^u
 * - cyclic:      sigma_t = end + (start - end) * (1 + cos(2 pi t / P)) / 2   (period P steps)
 * The ledger (accountant.ts) composes every step's (q, sigma_t): RDP exactly; PRV exactly for up
 * to 64 distinct sigmas, beyond that each rounded down onto a fine geometric grid (conservative).
 */
import { RpOnnxError } from '../../errors.js';
import type { Segment } from '../../privacy/rdp.js';

export type NoiseScheduleName = 'constant' | 'linear' | 'staircase' | 'exponential' | 'cyclic';
export const NOISE_SCHEDULES: readonly NoiseScheduleName[] = ['constant', 'linear', 'staircase', 'exponential', 'cyclic'];

export interface NoiseSchedule {
  name: NoiseScheduleName;
  start: number;
  end: number;
  /** Period in steps for staircase and cyclic. */
  period: number;
  totalSteps: number;
}

export function noiseAt(s: NoiseSchedule, t: number): number {
  const T = Math.max(1, s.totalSteps - 1);
  const u = Math.min(1, Math.max(0, t / T));
  switch (s.name) {
    case 'constant': return s.start;
    case 'linear': return s.start + (s.end - s.start) * u;
    case 'exponential': return s.start * (s.end / s.start) ** u;
    case 'staircase': {
      const stairs = Math.max(1, Math.floor(T / s.period));
      return s.start * (s.end / s.start) ** (Math.min(stairs, Math.floor(t / s.period)) / stairs);
    }
    case 'cyclic': return s.end + ((s.start - s.end) * (1 + Math.cos((2 * Math.PI * t) / s.period))) / 2;
    default: throw new RpOnnxError(`unknown noise schedule '${String(s.name)}'`);
  }
}

export function validateSchedule(s: NoiseSchedule): void {
  if (!NOISE_SCHEDULES.includes(s.name)) throw new RpOnnxError(`noiseSchedule must be one of ${NOISE_SCHEDULES.join(', ')}, got '${s.name}'`, { param: 'noiseSchedule' });
  if (!(s.start >= 0) || !(s.end >= 0)) throw new RpOnnxError('noise multipliers must be >= 0');
  if ((s.name === 'exponential' || s.name === 'staircase') && (s.start === 0 || s.end === 0)) {
    throw new RpOnnxError(`noiseSchedule ${s.name} needs start and end noise multipliers > 0`, { param: 'noiseSchedule' });
  }
  if ((s.name === 'staircase' || s.name === 'cyclic') && !(s.period >= 1)) throw new RpOnnxError('noisePeriodSteps must be >= 1 step', { param: 'noisePeriodSteps' });
}

/** The schedule as accountant segments of equal (q, sigma), merging equal consecutive steps. */
export function scheduleSegments(s: NoiseSchedule, sampleRate: number, steps = s.totalSteps): Segment[] {
  const out: Segment[] = [];
  for (let t = 0; t < steps; t++) {
    const sigma = noiseAt(s, t);
    const last = out.at(-1);
    if (last && last.noiseMultiplier === sigma) last.steps++;
    else out.push({ sampleRate, noiseMultiplier: sigma, steps: 1 });
  }
  return out;
}
