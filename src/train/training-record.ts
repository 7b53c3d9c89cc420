/**
 * `rp-onnx.training`: what a trained model was trained on and how, in the contract's form
 * (docs: the membership-inference audit reads `examplesUsedBitmap` to know the members).
 */
import type { FitResult } from './fit.js';

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

export function trainingRecord(data: string, recipe: TrainingRecipe, r: FitResult): TrainingRecord {
  const used = r.examplesUsed.used;
  return {
    data, examples: r.examplesUsed.count, steps: r.steps, epochs: r.epochs.length, recipe,
    examplesUsed: used,
    ...(used < r.examplesUsed.count ? { examplesUsedBitmap: r.examplesUsed.toBase64() } : {}),
    finalTestAccuracy: r.finalTestAccuracy,
  };
}
