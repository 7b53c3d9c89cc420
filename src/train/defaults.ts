/**
 * The plain training defaults, in one place: `rp-onnx train`'s flags and the audit's shadow
 * training (for fields a model's training record lacks) read them from here. The DP-SGD defaults
 * are in dp/defaults.ts.
 */
export const TRAINING_DEFAULTS = Object.freeze({
  batchSize: 128,
  lr: 0.05,
  optimizer: 'sgd',
  /** PyTorch semantics (v = m v + g). */
  momentum: 0.9,
  weightDecay: 5e-4,
  /** Per step: cosine to 0. */
  schedule: 'cosine',
  batchNorm: 'train' as 'train' | 'frozen',
  seed: 0,
  shuffle: true,
  epochs: 1,
});
