/**
 * The one training loop, around a Trainer and a step strategy (step-strategy.ts: the plain step,
 * or DP-SGD's private step): epochs or a step budget, the sampler's batches, the learning-rate
 * schedule, evaluation on the test split, the non-finite-loss check, per-epoch atomic
 * checkpoints and resume (the strategy's state included: DP-SGD's ledger and clipping bound),
 * progress reporting and clean interruption (Ctrl-C stops after the current step; nothing
 * partial is written).
 */
import { Model } from '../graph/ir.js';
import { RpOnnxError } from '../errors.js';
import { Trainer, countCorrect, type TrainerOptions } from './trainer.js';
import { learningRate } from './schedules.js';
import { batches, gatherBatch, type Dataset } from '../data/index.js';
import { plainStep, type StepNotes, type StepStrategy } from './step-strategy.js';
import { ExamplesUsed } from './examples-used.js';
import { loadLatestCheckpoint, prepareCheckpointDir, saveCheckpoint } from './checkpoint.js';
import { ParameterAverage, type EmaOptions } from './ema.js';
import { predict } from '../runtime/predict.js';

export interface FitOptions extends TrainerOptions {
  epochs?: number;
  steps?: number;
  batchSize: number;
  lr: number;
  schedule?: string;
  seed?: number;
  shuffle?: boolean;
  /** Evaluate every N steps (in addition to each epoch end); 0 = only at epoch ends. */
  evalEvery?: number;
  checkpointDir?: string;
  resume?: boolean;
  /** Replace the checkpoints of another run found in checkpointDir (otherwise an error). */
  overwriteCheckpoints?: boolean;
  /** Stop early (Ctrl-C): the loop ends after the current step. */
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  onEpoch?: (e: EpochReport) => void;
  /** The step: plain (default) or DP-SGD's private step (dp/dp-sgd.ts). */
  strategy?: StepStrategy;
  /**
   * Parameter averaging (ema.ts, De et al. 2022): evaluation and the exported model use the
   * average of the iterates. Post-processing of the released iterates: no privacy cost.
   */
  ema?: EmaOptions;
}

export interface Progress extends StepNotes {
  epoch: number;
  epochs: number;
  step: number;
  stepsInEpoch: number;
  totalSteps: number;
  /** Mean loss and accuracy of the epoch's batches so far (the training data: not private). */
  loss: number;
  accuracy: number;
  /** Examples in this step's batch (Poisson batches vary and may be empty). */
  batchSize: number;
  examplesPerSecond: number;
  lr: number;
  /** Set on the progress of an --eval-every evaluation: loss and accuracy are the test split's. */
  evaluation?: boolean;
}

export interface EpochReport {
  epoch: number;
  /** On the training data, without noise: under DP-SGD not covered by the privacy statement. */
  trainLoss: number;
  trainAccuracy: number;
  testAccuracy: number | null;
  testLoss: number | null;
  seconds: number;
  examplesPerSecond: number;
  /** DP-SGD: epsilon spent after this epoch (null: not accounted). */
  epsilon?: number | null;
  /** With parameter averaging: test accuracy of the average (testAccuracy is the last iterate's). */
  emaTestAccuracy?: number | null;
}

export interface FitResult {
  model: Model;
  epochs: EpochReport[];
  steps: number;
  /** Steps per epoch of the sampler (Poisson: 1/q). */
  stepsPerEpoch: number;
  seconds: number;
  interrupted: boolean;
  /** The strategy refused the next step (DP-SGD: it would exceed the target epsilon). */
  stoppedByBudget: boolean;
  finalTestAccuracy: number | null;
  examplesUsed: ExamplesUsed;
  /** Steps whose batch was empty (Poisson sampling). */
  emptySteps: number;
}

/** Accuracy and mean cross-entropy of the trainer's current parameters on a dataset. */
export async function evaluate(trainer: Trainer, ds: Dataset, batchSize = 500): Promise<{ accuracy: number; loss: number }> {
  let correct = 0;
  let lossSum = 0;
  for (const b of batches(ds, batchSize, { shuffle: false })) {
    const logits = await trainer.predict(b.images, b.size);
    correct += countCorrect(logits, b.labels, b.size);
    lossSum += crossEntropySum(logits, b.labels, b.size);
  }
  return { accuracy: correct / ds.count, loss: lossSum / ds.count };
}

/** Accuracy of an exported model (the parameter average) on a dataset, through the runtime. */
async function evaluateModel(model: Model, ds: Dataset, threads?: number): Promise<{ accuracy: number }> {
  const r = await predict([model], { data: ds.images, count: ds.count, shape: ds.shape, labels: ds.labels }, { threads, batch: 500 });
  return { accuracy: r.accuracy ?? 0 };
}

export function crossEntropySum(logits: Float32Array, labels: Int32Array, n: number): number {
  const k = logits.length / n;
  let s = 0;
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, logits[i * k + j]!);
    let z = 0;
    for (let j = 0; j < k; j++) z += Math.exp(logits[i * k + j]! - max);
    s += Math.log(z) + max - logits[i * k + labels[i]!]!;
  }
  return s;
}

/** Steps per epoch, epochs and total steps of a run (the loop and its planners agree on them). */
export function runLength(stepsPerEpoch: number, o: { epochs?: number; steps?: number }): { epochs: number; totalSteps: number } {
  if (o.steps !== undefined && !(Number.isInteger(o.steps) && o.steps >= 1)) throw new RpOnnxError(`steps must be a positive integer, got ${o.steps}`);
  if (o.epochs !== undefined && !(Number.isInteger(o.epochs) && o.epochs >= 1)) throw new RpOnnxError(`epochs must be a positive integer, got ${o.epochs}`);
  const epochs = o.steps !== undefined ? Math.ceil(o.steps / stepsPerEpoch) : (o.epochs ?? 1);
  return { epochs, totalSteps: o.steps ?? epochs * stepsPerEpoch };
}

export async function fit(model: Model, train: Dataset, test: Dataset | undefined, opts: FitOptions): Promise<FitResult> {
  if (!(Number.isInteger(opts.batchSize) && opts.batchSize > 0)) throw new RpOnnxError(`batchSize must be a positive integer, got ${opts.batchSize}`);
  if (opts.resume && !opts.checkpointDir) throw new RpOnnxError('resume needs a checkpoint directory');
  // Checkpoints do not hold the running average: a resumed average would silently restart.
  if (opts.resume && opts.ema) throw new RpOnnxError('resume with ema: checkpoints do not hold the parameter average; train without one of them');
  const strategy = opts.strategy ?? plainStep(opts);
  const sampler = strategy.sampler(train);
  const stepsPerEpoch = sampler.stepsPerEpoch;
  const { epochs, totalSteps } = runLength(stepsPerEpoch, opts);
  if (opts.checkpointDir) prepareCheckpointDir(opts.checkpointDir, { resume: opts.resume === true, force: opts.overwriteCheckpoints === true });
  const trainer = await Trainer.create(model, { ...opts, ...strategy.trainerOptions() });
  const started = Date.now();
  const reports: EpochReport[] = [];
  let used = new ExamplesUsed(train.count);
  let startEpoch = 0;
  let interrupted = false;
  let stoppedByBudget = false;
  let emptySteps = 0;
  try {
    if (opts.resume && opts.checkpointDir) {
      const ck = loadLatestCheckpoint(opts.checkpointDir, trainer, { strategy: strategy.name, examples: train.count });
      startEpoch = ck.epoch;
      reports.push(...ck.epochs);
      used = ExamplesUsed.fromBase64(train.count, ck.examplesUsed);
      strategy.load(ck.strategy.state);
    }
    await strategy.start({ trainer, totalSteps, stepsPerEpoch });
    const ema = opts.ema ? new ParameterAverage(trainer.params, opts.ema) : undefined;
    outer: for (let epoch = startEpoch; epoch < epochs && trainer.stepCount < totalSteps; epoch++) {
      const epochStart = Date.now();
      const batchOf = sampler.epoch(epoch);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      const inEpoch = Math.min(stepsPerEpoch, totalSteps - epoch * stepsPerEpoch);
      for (let s = 0; s < stepsPerEpoch && trainer.stepCount < totalSteps; s++) {
        if (opts.signal?.aborted) {
          interrupted = true;
          break outer;
        }
        const t = trainer.stepCount;
        if (!strategy.allows(t)) {
          stoppedByBudget = true;
          break outer;
        }
        const indices = batchOf(s, t);
        const b = gatherBatch(train, indices);
        used.mark(indices);
        const lr = learningRate(opts.schedule ?? 'constant', opts.lr, t, totalSteps);
        const r = await strategy.step(trainer, b, lr, t);
        ema?.update(trainer.params);
        if (r.size > 0) {
          if (!Number.isFinite(r.loss)) {
            throw new RpOnnxError(`training diverged at step ${trainer.stepCount} (loss ${r.loss}): lower the learning rate`, { exitCode: 1 });
          }
          lossSum += r.loss * r.size;
          correct += r.correct;
          seen += r.size;
        } else emptySteps++;
        opts.onProgress?.({
          epoch: epoch + 1, epochs, step: s + 1, stepsInEpoch: inEpoch, totalSteps,
          loss: lossSum / Math.max(1, seen), accuracy: correct / Math.max(1, seen), batchSize: r.size,
          examplesPerSecond: seen / Math.max(1e-3, (Date.now() - epochStart) / 1000), lr, ...strategy.notes(),
        });
        if (opts.evalEvery && test && trainer.stepCount % opts.evalEvery === 0) {
          const e = await evaluate(trainer, test);
          opts.onProgress?.({
            epoch: epoch + 1, epochs, step: s + 1, stepsInEpoch: inEpoch, totalSteps, loss: e.loss, accuracy: e.accuracy,
            batchSize: 0, examplesPerSecond: 0, lr, evaluation: true, ...strategy.notes(),
          });
        }
      }
      strategy.endEpoch();
      const seconds = (Date.now() - epochStart) / 1000;
      const e = test ? await evaluate(trainer, test) : null;
      const averaged = ema && test ? await evaluateModel(ema.applyTo(trainer.exportModel()), test, opts.threads) : null;
      const notes = strategy.notes();
      const report: EpochReport = {
        epoch: epoch + 1, trainLoss: lossSum / Math.max(1, seen), trainAccuracy: correct / Math.max(1, seen),
        testAccuracy: e?.accuracy ?? null, testLoss: e?.loss ?? null, seconds, examplesPerSecond: seen / Math.max(1e-3, seconds),
        ...(notes.epsilon !== undefined ? { epsilon: notes.epsilon } : {}),
        ...(ema ? { emaTestAccuracy: averaged?.accuracy ?? null } : {}),
      };
      reports.push(report);
      opts.onEpoch?.(report);
      if (opts.checkpointDir) {
        saveCheckpoint(opts.checkpointDir, trainer, {
          epoch: epoch + 1, epochs: reports, strategy: { name: strategy.name, state: strategy.state() },
          examplesUsed: used.toBase64(), examples: train.count,
        });
      }
    }
    await strategy.finish();
    return {
      model: ema ? ema.applyTo(trainer.exportModel()) : trainer.exportModel(),
      epochs: reports,
      steps: trainer.stepCount,
      stepsPerEpoch,
      seconds: (Date.now() - started) / 1000,
      interrupted,
      stoppedByBudget,
      // The model returned is the average when there is one: report its accuracy.
      finalTestAccuracy: (ema ? reports.at(-1)?.emaTestAccuracy : reports.at(-1)?.testAccuracy) ?? null,
      examplesUsed: used,
      emptySteps,
    };
  } finally {
    await trainer.release();
  }
}
