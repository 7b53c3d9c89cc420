/**
 * Prediction with noisy models: the logits of K stochastic passes of each model, averaged over
 * passes and over ensemble members (the paper's En5ResNet8 is five noisy ResNet-8s whose logits
 * are averaged). Every member gets its own session, hence its own noise seeds.
 */
import { type Model } from '../graph/ir.js';
import { RpOnnxError } from '../errors.js';
import { createSession, ort, type CreateSessionOptions, type RpSession, type TensorInfo } from './session.js';
import { memberNoiseSeeds, type NoiseSeed } from './noise-seeding.js';

/** Examples to predict: `count` examples of `shape` (without the batch axis), row-major. */
export interface PredictInput {
  data: Float32Array;
  count: number;
  shape: readonly number[];
  /** Class labels, for accuracy. */
  labels?: Int32Array;
}

export interface PredictOptions {
  /** Stochastic passes per model whose logits are averaged. Default 1. */
  samples?: number;
  /** Examples per run. Default 64. */
  batch?: number;
  /** Only the first N examples. */
  limit?: number;
  executionProvider?: CreateSessionOptions['executionProvider'];
  threads?: number;
  /** Noise seeds: 'secure' (default) or a number for a reproducible run. */
  noiseSeed?: NoiseSeed;
  /** Called after every run: examples done so far (over all members) and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface PredictResult {
  count: number;
  classes: number;
  /** count x classes averaged logits, row-major. */
  logits: Float32Array;
  predictions: Int32Array;
  /** Fraction correct when labels were given, else null. */
  accuracy: number | null;
  correct: number | null;
  members: number;
  samples: number;
  /** Wall time of the runs (not session creation). */
  seconds: number;
  examplesPerSecond: number;
}

/** Where a model's single input and its logits output are, and how it batches. */
export interface ModelIO {
  input: TensorInfo;
  output: TensorInfo;
  /** The declared batch extent when it is a fixed number (then every run has exactly that many). */
  fixedBatch: number | null;
}

/** Checks that the model takes one input of `exampleShape` (plus a batch axis) and returns its IO. */
export function modelIO(session: RpSession, exampleShape: readonly number[] | null, source = 'the model'): ModelIO {
  if (session.inputs.length !== 1) {
    throw new RpOnnxError(`${source} has ${session.inputs.length} inputs (${session.inputs.map((i) => i.name).join(', ')}); prediction needs a model with one input`);
  }
  if (session.outputs.length === 0) throw new RpOnnxError(`${source} has no outputs`);
  const input = session.inputs[0]!;
  if (input.dtype !== null && input.dtype !== 'float32') {
    throw new RpOnnxError(`${source}'s input '${input.name}' is ${input.dtype}; prediction feeds float32`);
  }
  const declared = input.shape;
  if (declared && exampleShape) {
    const rest = declared.slice(1);
    const fits = rest.length === exampleShape.length && rest.every((d, i) => typeof d !== 'number' || d === exampleShape[i]);
    if (!fits) {
      throw new RpOnnxError(`${source} expects input '${input.name}' of shape [${declared.map((d) => d ?? '?').join(', ')}] but the examples have shape [${exampleShape.join(', ')}]`);
    }
  }
  const b = declared?.[0];
  return { input, output: session.outputs[0]!, fixedBatch: typeof b === 'number' ? b : null };
}

/**
 * Runs one model on batches of examples and returns averaged logits. A model whose batch
 * extent is fixed gets exactly that many examples per run (the last run zero-padded).
 */
export class LogitsRunner {
  readonly io: ModelIO;
  readonly exampleSize: number;
  constructor(readonly session: RpSession, readonly exampleShape: readonly number[], source?: string) {
    this.io = modelIO(session, exampleShape, source);
    this.exampleSize = exampleShape.reduce((a, b) => a * b, 1);
  }

  /** Largest batch a run may take (`wanted`, or the fixed batch extent). */
  maxBatch(wanted: number): number {
    return this.io.fixedBatch ?? wanted;
  }

  /**
   * Logits of `count` examples (one run per chunk of `maxBatch`), summed over `samples` passes
   * into `into` (count x classes) when given; returns the per-example logits and class count.
   */
  async run(data: Float32Array, count: number, samples: number, maxBatch: number, into?: Float32Array, onRows?: (done: number) => void): Promise<{ logits: Float32Array; classes: number }> {
    const per = this.exampleSize;
    const step = this.maxBatch(maxBatch);
    let out = into ?? null;
    let classes = 0;
    for (let start = 0; start < count; start += step) {
      const n = Math.min(step, count - start);
      const rows = this.io.fixedBatch ?? n;
      let chunk = data.subarray(start * per, (start + n) * per);
      if (rows !== n) {
        const padded = new Float32Array(rows * per);
        padded.set(chunk);
        chunk = padded;
      }
      const feeds = { [this.io.input.name]: new ort.Tensor('float32', chunk, [rows, ...this.exampleShape]) };
      for (let k = 0; k < samples; k++) {
        const fetched = (await this.session.run(feeds, [this.io.output.name]))[this.io.output.name]!;
        const dims = fetched.dims;
        if (dims.length !== 2 || dims[0] !== rows || fetched.type !== 'float32') {
          throw new RpOnnxError(`output '${this.io.output.name}' has shape [${dims.join(', ')}] (${fetched.type}); prediction needs float32 logits [batch, classes]`);
        }
        if (classes === 0) classes = dims[1]!;
        if (!out) out = new Float32Array(count * classes);
        if (out.length !== count * classes) throw new RpOnnxError(`models disagree on the number of classes (${classes} vs ${out.length / count})`);
        const logits = fetched.data as Float32Array;
        const base = start * classes;
        for (let i = 0; i < n * classes; i++) out[base + i]! += logits[i]!;
      }
      onRows?.(start + n);
    }
    return { logits: out ?? new Float32Array(0), classes };
  }
}

export function argmaxRows(logits: Float32Array, count: number, classes: number): Int32Array {
  const out = new Int32Array(count);
  for (let r = 0; r < count; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[r * classes + c]! > logits[r * classes + best]!) best = c;
    out[r] = best;
  }
  return out;
}

/** Averages the logits of `samples` passes of every model over the examples. */
export async function predict(models: readonly Model[], input: PredictInput, opts: PredictOptions = {}): Promise<PredictResult> {
  const samples = opts.samples ?? 1;
  const batch = opts.batch ?? 64;
  if (models.length === 0) throw new RpOnnxError('predict needs at least one model');
  if (!(Number.isInteger(samples) && samples >= 1)) throw new RpOnnxError(`samples must be a positive integer, got ${samples}`, { param: 'samples' });
  if (!(Number.isInteger(batch) && batch >= 1)) throw new RpOnnxError(`batch must be a positive integer, got ${batch}`, { param: 'batch' });
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 1)) throw new RpOnnxError(`limit must be a positive integer, got ${opts.limit}`, { param: 'limit' });
  const count = Math.min(input.count, opts.limit ?? input.count);
  if (count === 0) throw new RpOnnxError('there are no examples to predict');
  const per = input.shape.reduce((a, b) => a * b, 1);
  if (input.data.length < input.count * per) throw new RpOnnxError(`${input.data.length} values do not hold ${input.count} examples of shape [${input.shape.join(', ')}]`);

  const seeds = memberNoiseSeeds(opts.noiseSeed ?? 'secure', models.length);
  const runners: LogitsRunner[] = [];
  try {
    for (let m = 0; m < models.length; m++) {
      const session = await createSession(models[m]!, { executionProvider: opts.executionProvider, threads: opts.threads, noiseSeed: seeds[m] });
      runners.push(new LogitsRunner(session, input.shape, models.length > 1 ? `ensemble member ${m + 1}` : 'the model'));
    }
    const data = input.data.subarray(0, count * per);
    const t0 = performance.now();
    let sum: Float32Array | undefined;
    let classes = 0;
    for (const [m, r] of runners.entries()) {
      const res = await r.run(data, count, samples, batch, sum, opts.onProgress && ((done) => opts.onProgress!(m * count + done, runners.length * count)));
      sum = res.logits;
      classes = res.classes;
    }
    const seconds = (performance.now() - t0) / 1000;
    const logits = sum!;
    const passes = models.length * samples;
    for (let i = 0; i < logits.length; i++) logits[i] = logits[i]! / passes;
    const predictions = argmaxRows(logits, count, classes);
    let correct: number | null = null;
    if (input.labels) {
      correct = 0;
      for (let i = 0; i < count; i++) if (predictions[i] === input.labels[i]) correct++;
    }
    return {
      count, classes, logits, predictions, correct, accuracy: correct === null ? null : correct / count,
      members: models.length, samples, seconds, examplesPerSecond: count / Math.max(seconds, 1e-9),
    };
  } finally {
    for (const r of runners) await r.session.release();
  }
}
