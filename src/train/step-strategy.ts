/**
 * How one optimisation step turns a batch into an update, the part of the loop that differs
 * between plain training and DP-SGD (as Opacus's DPOptimizer wraps a plain optimizer: the loop
 * stays the same, the step clips, noises, scales and reports to the accountant). `fit` owns
 * everything else: epochs, the learning-rate schedule, evaluation, divergence checks,
 * checkpoints and resume, progress.
 */
import type { Trainer, TrainerOptions, StepResult } from './trainer.js';
import type { Batch } from '../data/index.js';
import type { Dataset } from '../data/index.js';
import { shuffleSampler, type BatchSampler } from './batch-sampler.js';
import { Random } from '../random.js';

export interface StepContext {
  trainer: Trainer;
  totalSteps: number;
  stepsPerEpoch: number;
}

/** What a strategy adds to progress lines and epoch reports (DP: epsilon, sigma, clipping bound). */
export interface StepNotes {
  epsilon?: number | null;
  sigma?: number;
  clipNorm?: number;
}

export interface StepStrategy {
  readonly name: 'plain' | 'dp-sgd';
  /** Options the trainer must be created with (DP-SGD: per-example gradients in the graph). */
  trainerOptions(): Partial<TrainerOptions>;
  /** The batches of the run over `train`. */
  sampler(train: Dataset): BatchSampler;
  /** Called once the trainer exists, before the first step (and after a resume's load()). */
  start(ctx: StepContext): Promise<void>;
  /** False when step `t` must not run (a privacy budget it would exceed): the loop stops. */
  allows(t: number): boolean;
  step(trainer: Trainer, batch: Batch, lr: number, t: number): Promise<StepResult>;
  endEpoch(): void;
  notes(): StepNotes;
  /** Plain JSON state for checkpoints, and its restore. */
  state(): unknown;
  load(state: unknown): void;
  /** After the last step, before the model is exported (public-batch statistics). */
  finish(): Promise<void>;
}

/** The plain step: the batch-mean gradient, the optimizer's update. */
export function plainStep(o: { batchSize: number; seed?: number; shuffle?: boolean }): StepStrategy {
  return {
    name: 'plain',
    trainerOptions: () => ({}),
    // Each epoch's order depends only on (seed, epoch), so a resumed run sees the same batches.
    sampler: (train) => shuffleSampler({
      count: train.count, batchSize: o.batchSize, shuffle: o.shuffle ?? true,
      rngForEpoch: (epoch) => new Random((o.seed ?? 0) * 1_000_003 + epoch),
    }),
    start: async () => {},
    allows: () => true,
    step: (trainer, b, lr) => trainer.step(b.images, b.labels, b.size, lr),
    endEpoch: () => {},
    notes: () => ({}),
    state: () => null,
    load: () => {},
    finish: async () => {},
  };
}
