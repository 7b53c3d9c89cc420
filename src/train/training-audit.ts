/**
 * A hook by which an audit of one training run (src/audit/one-run-audit.ts: the one-run audit's
 * canaries) takes part in `trainModel` without the training layer knowing about audits: it adds
 * examples to the training set before training and scores the trained model after it.
 *
 * The examples it adds are not ordinary training examples: the training record counts and marks
 * only the caller's training set (its `examples` and `examplesUsedBitmap` index the caller's
 * examples), so a membership audit that draws members from the record never draws an added one,
 * and the hook's own block in the record says what was added.
 */
import type { Model } from '../graph/ir.js';
import type { Dataset } from '../data/index.js';

export interface TrainingAudit {
  /** The block's name in the training record and in the outcome (e.g. 'oneRunAudit'). */
  readonly key: string;
  /** The set to train on: `train`'s examples first, unchanged and in order, then the added ones. */
  prepare(train: Dataset): Dataset;
  /**
   * After training: the audit's result, plain JSON, recorded in `rp-onnx.training` under `key`.
   * `delta` is the DP run's delta (undefined without DP).
   */
  finish(model: Model, run: { delta?: number }): Promise<Record<string, unknown>>;
}
