/**
 * Learning-rate schedules as functions of the step index t in [0, total):
 * - constant: lr
 * - cosine:   lr * (1 + cos(pi * t / total)) / 2   (PyTorch CosineAnnealingLR stepped per batch, eta_min 0)
 * - step:     lr * gamma^floor(t / stepSize)       (default: x0.1 at 50% and 75% of training)
 */
import { RpOnnxError } from '../errors.js';

export type ScheduleName = 'constant' | 'cosine' | 'step';

export function learningRate(schedule: string, baseLr: number, t: number, total: number, opts: { stepGamma?: number; milestones?: number[] } = {}): number {
  switch (schedule) {
    case 'constant': return baseLr;
    case 'cosine': return total <= 0 ? baseLr : (baseLr * (1 + Math.cos((Math.PI * Math.min(t, total)) / total))) / 2;
    case 'step': {
      const milestones = opts.milestones ?? [Math.floor(total * 0.5), Math.floor(total * 0.75)];
      const passed = milestones.filter((m) => t >= m).length;
      return baseLr * (opts.stepGamma ?? 0.1) ** passed;
    }
    default: throw new RpOnnxError(`schedule must be constant, cosine or step, got '${schedule}'`, { param: 'schedule' });
  }
}
