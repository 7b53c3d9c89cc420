/**
 * The training loop around a Trainer: epochs or a step budget, shuffling, the learning-rate
 * schedule, evaluation on the test split, per-epoch atomic checkpoints and resume, progress
 * reporting and clean interruption (Ctrl-C stops after the current step; nothing partial is
 * written).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Model } from '../graph/ir.js';
import { loadModel, saveModel } from '../graph/io.js';
import { tensorToFloat32 } from '../graph/tensor.js';
import { writeFileAtomic } from '../fs-atomic.js';
import { Random } from '../random.js';
import { RpOnnxError } from '../errors.js';
import { Trainer, countCorrect, type TrainerOptions, type GradientTransform } from './trainer.js';
import { learningRate } from './schedules.js';
import { batches, type Dataset } from './data/index.js';

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
  /** Stop early (Ctrl-C): the loop ends after the current step. */
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  onEpoch?: (e: EpochReport) => void;
  /** A hook that turns the batch gradient into the update's gradient (DP-SGD). */
  gradientTransform?: GradientTransform;
}

export interface Progress {
  epoch: number;
  epochs: number;
  step: number;
  stepsInEpoch: number;
  totalSteps: number;
  loss: number;
  accuracy: number;
  examplesPerSecond: number;
  lr: number;
}

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  testAccuracy: number | null;
  testLoss: number | null;
  seconds: number;
  examplesPerSecond: number;
}

export interface FitResult {
  model: Model;
  epochs: EpochReport[];
  steps: number;
  seconds: number;
  interrupted: boolean;
  finalTestAccuracy: number | null;
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

interface Checkpoint {
  epoch: number;
  step: number;
  optimizer: { step: number; buffers: Record<string, number[][]> };
  epochs: EpochReport[];
}

export async function fit(model: Model, train: Dataset, test: Dataset | undefined, opts: FitOptions): Promise<FitResult> {
  if (!(opts.batchSize > 0)) throw new RpOnnxError('--batch must be a positive integer');
  const stepsPerEpoch = Math.ceil(train.count / opts.batchSize);
  const epochs = opts.steps !== undefined ? Math.ceil(opts.steps / stepsPerEpoch) : (opts.epochs ?? 1);
  const totalSteps = opts.steps ?? epochs * stepsPerEpoch;
  const trainer = await Trainer.create(model, opts);
  const started = Date.now();
  const reports: EpochReport[] = [];
  let startEpoch = 0;
  if (opts.resume && opts.checkpointDir) {
    const ck = loadLatestCheckpoint(opts.checkpointDir, trainer);
    if (ck) {
      startEpoch = ck.epoch;
      reports.push(...ck.epochs);
    }
  }
  let interrupted = false;
  try {
    for (let epoch = startEpoch; epoch < epochs && trainer.stepCount < totalSteps; epoch++) {
      const epochStart = Date.now();
      // Each epoch's order depends only on (seed, epoch), so a resumed run sees the same batches.
      const rng = new Random((opts.seed ?? 0) * 1_000_003 + epoch);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let stepInEpoch = 0;
      for (const b of batches(train, opts.batchSize, { shuffle: opts.shuffle ?? true, rng })) {
        if (trainer.stepCount >= totalSteps) break;
        if (opts.signal?.aborted) {
          interrupted = true;
          break;
        }
        const lr = learningRate(opts.schedule ?? 'constant', opts.lr, trainer.stepCount, totalSteps);
        const r = await trainer.step(b.images, b.labels, b.size, lr, opts.gradientTransform);
        if (!Number.isFinite(r.loss)) {
          throw new RpOnnxError(`training diverged at step ${trainer.stepCount} (loss ${r.loss}): lower --lr`, { exitCode: 1 });
        }
        lossSum += r.loss * r.size;
        correct += r.correct;
        seen += r.size;
        stepInEpoch++;
        opts.onProgress?.({
          epoch: epoch + 1, epochs, step: stepInEpoch, stepsInEpoch: Math.min(stepsPerEpoch, totalSteps - epoch * stepsPerEpoch),
          totalSteps, loss: lossSum / seen, accuracy: correct / seen,
          examplesPerSecond: seen / Math.max(1e-3, (Date.now() - epochStart) / 1000), lr,
        });
        if (opts.evalEvery && test && trainer.stepCount % opts.evalEvery === 0) {
          const e = await evaluate(trainer, test);
          opts.onProgress?.({ epoch: epoch + 1, epochs, step: stepInEpoch, stepsInEpoch: stepsPerEpoch, totalSteps, loss: e.loss, accuracy: e.accuracy, examplesPerSecond: 0, lr });
        }
      }
      if (interrupted) break;
      const seconds = (Date.now() - epochStart) / 1000;
      const e = test ? await evaluate(trainer, test) : null;
      const report: EpochReport = {
        epoch: epoch + 1, trainLoss: lossSum / Math.max(1, seen), trainAccuracy: correct / Math.max(1, seen),
        testAccuracy: e?.accuracy ?? null, testLoss: e?.loss ?? null, seconds, examplesPerSecond: seen / Math.max(1e-3, seconds),
      };
      reports.push(report);
      opts.onEpoch?.(report);
      if (opts.checkpointDir) saveCheckpoint(opts.checkpointDir, trainer, epoch + 1, reports);
    }
    return {
      model: trainer.exportModel(),
      epochs: reports,
      steps: trainer.stepCount,
      seconds: (Date.now() - started) / 1000,
      interrupted,
      finalTestAccuracy: reports.at(-1)?.testAccuracy ?? null,
    };
  } finally {
    await trainer.release();
  }
}

function saveCheckpoint(dir: string, trainer: Trainer, epoch: number, epochs: EpochReport[]): void {
  mkdirSync(dir, { recursive: true });
  const st = trainer.optimizer.state();
  const ck: Checkpoint = {
    epoch, step: trainer.stepCount, epochs,
    optimizer: { step: st.step, buffers: Object.fromEntries(Object.entries(st.buffers).map(([k, v]) => [k, v.map((a) => Array.from(a))])) },
  };
  // The model first, then the state that names it: a crash between the two leaves the previous
  // checkpoint's state, which still points at its own complete model file.
  saveModel(trainer.exportModel(), join(dir, `epoch-${epoch}.onnx`));
  writeFileAtomic(join(dir, `epoch-${epoch}.json`), JSON.stringify(ck));
}

function loadLatestCheckpoint(dir: string, trainer: Trainer): Checkpoint | undefined {
  if (!existsSync(dir)) return undefined;
  const epochs = readdirSync(dir).map((f) => /^epoch-(\d+)\.json$/.exec(f)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1])).sort((a, b) => b - a);
  if (epochs.length === 0) return undefined;
  const e = epochs[0]!;
  const ck = JSON.parse(readFileSync(join(dir, `epoch-${e}.json`), 'utf8')) as Checkpoint;
  const m = loadModel(join(dir, `epoch-${e}.onnx`));
  for (const name of [...trainer.params.keys(), ...trainer.state.keys()]) {
    const t = m.graph.initializers.get(name);
    if (!t) throw new RpOnnxError(`checkpoint ${dir}/epoch-${e}.onnx lacks parameter '${name}': it belongs to another model`);
    const target = trainer.params.get(name) ?? trainer.state.get(name)!;
    target.set(tensorToFloat32(t));
  }
  trainer.optimizer.loadState({ step: ck.optimizer.step, buffers: Object.fromEntries(Object.entries(ck.optimizer.buffers).map(([k, v]) => [k, v.map((a) => Float32Array.from(a))])) });
  trainer.stepCount = ck.step;
  return ck;
}
