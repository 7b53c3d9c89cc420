/**
 * The library's training entry point: plain or DP-SGD training of any ONNX model, returning the
 * trained model with its `rp-onnx.training` record and, under DP, its `rp-onnx.privacy` record
 * set. The CLI's `train` only parses flags, calls this and writes the file; experiments call it
 * too and get the same metadata.
 *
 * Under DP a model with BatchNormalization needs a norm fix (batch statistics mix examples and
 * break per-example sensitivity): 'freeze' (running statistics), 'group' (GroupNorm in place of
 * every BatchNorm) or 'public-batch' (statistics of public data disjoint from the private set).
 */
import { Model } from '../graph/ir.js';
import { RpOnnxError } from '../errors.js';
import { fit, type FitOptions, type FitResult } from './fit.js';
import { loadDataDir, type Dataset } from '../data/index.js';
import { PrivateStep, type DpOptions } from './dp/dp-sgd.js';
import type { PrivacyStatement } from './dp/statement.js';
import { checkPublicData, type PublicDataRecord } from './dp/public-data.js';
import { batchNormToGroupNorm, batchNormStatistics, type NormFix } from '../passes/norm-fix.js';
import { trainingRecord, type TrainingRecipe, type TrainingRecord } from './training-record.js';

export interface TrainPrivately {
  options: DpOptions;
  /** Required when the model has BatchNormalization. */
  normFix?: NormFix;
  /** normFix 'public-batch': the public data, or a data folder whose train split is loaded. */
  publicData?: Dataset | string;
  /** Chunks of the logical batch run through the graph (memory only; the step is unchanged). */
  physicalBatchSize?: number;
}

export type TrainRequestOptions = Omit<FitOptions, 'strategy' | 'epochs' | 'steps' | 'batchSize' | 'lr' | 'optimizer' | 'momentum' | 'weightDecay' | 'schedule' | 'seed' | 'shuffle' | 'batchNorm' | 'dp'>;

export interface TrainRequest {
  model: Model;
  train: Dataset;
  test?: Dataset;
  /** Where the training data came from, for the record. */
  dataName: string;
  recipe: TrainingRecipe;
  /** DP-SGD instead of plain training. */
  dp?: TrainPrivately;
  options?: TrainRequestOptions;
}

export interface TrainOutcome {
  /** The trained model, its metadata set. */
  model: Model;
  result: FitResult;
  training: TrainingRecord;
  privacy?: PrivacyStatement;
  privacyRecord?: Record<string, unknown>;
  noiseMultiplier?: number;
}

function recipeBatchNorm(b: string): 'train' | 'frozen' {
  if (b !== 'train' && b !== 'frozen') throw new RpOnnxError(`batchNorm must be 'train' or 'frozen', got '${b}'`);
  return b;
}

export async function trainModel(req: TrainRequest): Promise<TrainOutcome> {
  const r = req.recipe;
  const fitOptions: FitOptions = {
    ...req.options,
    epochs: r.steps === undefined ? (r.epochs ?? 1) : undefined, steps: r.steps,
    batchSize: r.batchSize, lr: r.lr, optimizer: r.optimizer, momentum: r.momentum, weightDecay: r.weightDecay,
    schedule: r.schedule, seed: r.seed, shuffle: r.shuffle, batchNorm: recipeBatchNorm(r.batchNorm),
    ...(r.emaDecay !== undefined ? { ema: { decay: r.emaDecay } } : {}),
  };
  if (!req.dp) {
    const result = await fit(req.model, req.train, req.test, fitOptions);
    const training = trainingRecord(req.dataName, r, result);
    result.model.setMetadata('rp-onnx.training', JSON.stringify(training));
    return { model: result.model, result, training };
  }

  const dp = req.dp;
  let model = req.model;
  let batchNorm: 'train' | 'frozen' | 'fed' = fitOptions.batchNorm ?? 'train';
  let publicData: Dataset | undefined;
  let publicRecord: PublicDataRecord | undefined;
  const hasBatchNorm = batchNormStatistics(model).length > 0;
  if (hasBatchNorm) {
    if (dp.normFix === undefined) {
      throw new RpOnnxError('the model has BatchNormalization, whose batch statistics mix examples and break per-example privacy: choose normFix freeze (running statistics), group (GroupNorm) or public-batch (with publicData)');
    }
    if (dp.normFix === 'group') {
      model = batchNormToGroupNorm(model).model;
      batchNorm = 'train';
    } else if (dp.normFix === 'public-batch') {
      if (dp.publicData === undefined) throw new RpOnnxError('normFix public-batch needs publicData (public examples, disjoint from the private data)');
      publicData = typeof dp.publicData === 'string' ? loadDataDir(dp.publicData, { split: 'train' }) : dp.publicData;
      publicRecord = checkPublicData(publicData, req.train);
      batchNorm = 'fed';
    } else batchNorm = 'frozen';
  }
  const strategy = new PrivateStep({ dp: dp.options, batchSize: r.batchSize, examples: req.train.count, shuffle: r.shuffle, publicData, physicalBatchSize: dp.physicalBatchSize });
  const result = await fit(model, req.train, req.test, { ...fitOptions, batchNorm, strategy });
  const training = trainingRecord(req.dataName, { ...r, batchNorm: hasBatchNorm ? `${dp.normFix}` : r.batchNorm }, result);
  const privacy = strategy.statement();
  const privacyRecord = {
    ...strategy.record(),
    normFix: hasBatchNorm ? dp.normFix : null,
    publicData: publicRecord ?? null,
  };
  result.model.setMetadata('rp-onnx.training', JSON.stringify(training));
  result.model.setMetadata('rp-onnx.privacy', JSON.stringify(privacyRecord));
  return { model: result.model, result, training, privacy, privacyRecord, noiseMultiplier: strategy.schedule.start };
}
