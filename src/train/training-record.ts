/**
 * `rp-onnx.training`: what a trained model was trained on and how, in the contract's form
 * (docs: the membership-inference audit reads `examplesUsedBitmap` to know the members).
 */
import type { FitResult } from './fit.js';
import { ExamplesUsed } from './examples-used.js';

export interface TrainingRecipe {
  epochs?: number;
  steps?: number;
  batchSize: number;
  lr: number;
  optimizer: string;
  momentum: number;
  weightDecay: number;
  schedule: string;
  batchNorm: string;
  seed: number;
  shuffle: boolean;
  limit?: number;
  /** Parameter averaging (De et al. 2022): the exported weights are the EMA at this decay. */
  emaDecay?: number;
}

export interface TrainingRecord {
  data: string;
  examples: number;
  steps: number;
  epochs: number;
  recipe: TrainingRecipe;
  examplesUsed: number;
  /** Base64 bitmap (bit i = example i in at least one batch); absent when every example was used. */
  examplesUsedBitmap?: string;
  finalTestAccuracy: number | null;
}

/**
 * The record of a run; with `ordinary` < the training set's size only its first `ordinary`
 * examples are the caller's (the rest were added by a training audit and are described by the
 * audit's own block), so `examples` and the bitmap cover those only.
 */
export function trainingRecord(data: string, recipe: TrainingRecipe, r: FitResult, ordinary = r.examplesUsed.count): TrainingRecord {
  const all = r.examplesUsed;
  const mine = ordinary === all.count ? all : new ExamplesUsed(ordinary);
  if (mine !== all) for (let i = 0; i < ordinary; i++) if (all.has(i)) mine.mark([i]);
  const used = mine.used;
  return {
    data, examples: ordinary, steps: r.steps, epochs: r.epochs.length, recipe,
    examplesUsed: used,
    ...(used < ordinary ? { examplesUsedBitmap: mine.toBase64() } : {}),
    finalTestAccuracy: r.finalTestAccuracy,
  };
}
