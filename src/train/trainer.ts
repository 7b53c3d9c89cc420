/**
 * The training engine: runs the training graph built by the autodiff pass on onnxruntime-node
 * and applies the optimizer in TypeScript on Float32Arrays.
 *
 * One step = feed (images, labels, current parameters, running statistics) -> run -> read loss,
 * logits and gradients -> optimizer update -> keep the new running statistics. The parameters
 * are graph inputs of the training graph, so the session is created once and never rebuilt.
 * Evaluation uses the forward graph with the same parameters as inputs.
 */
import * as ort from 'onnxruntime-node';
import { Model } from '../graph/ir.js';
import { tensorToFloat32, makeTensor } from '../graph/tensor.js';
import { buildTrainingGraph, type TrainingGraph } from '../passes/autodiff/training-graph.js';
import { makeBatchDynamic } from '../passes/dynamic-batch.js';
import { createSession, type ExecutionProvider, type RpSession, type Fetches } from '../runtime/session.js';
import { createOptimizer, type Optimizer, type OptimizerOptions } from './optimizers.js';
import { RpOnnxError } from '../errors.js';
import type { Random } from '../random.js';

export interface TrainerOptions extends OptimizerOptions {
  optimizer: string;
  loss?: 'cross-entropy' | 'mse';
  /** Initializer-name patterns to keep fixed (`*` wildcards). */
  freeze?: string[];
  /** BatchNormalization: batch statistics while training ('train') or running statistics ('frozen'). */
  batchNorm?: 'train' | 'frozen' | 'fed';
  threads?: number;
  executionProvider?: ExecutionProvider;
  /** Seeds the noise of perturbation nodes; 'secure' (default) draws from the OS CSPRNG. */
  noiseSeed?: 'secure' | number;
  /** DP-SGD: per-example gradients in the graph, clipped there ('clip') or returned ('per-example'). */
  dp?: { mode: 'clip' | 'per-example' };
}

export interface DpGradients extends StepResult {
  /** Per-example gradient norms (before clipping). */
  norms: Float32Array;
  /** Clipped sums ('clip') or per-example gradients flattened [N * size] ('per-example'). */
  grads: Map<string, Float32Array>;
}

export interface StepResult {
  loss: number;
  correct: number;
  size: number;
}

/** Per-parameter gradient hook (DP-SGD replaces the summed gradient). */
export type GradientTransform = (grads: Map<string, Float32Array>, outputs: Fetches) => Map<string, Float32Array>;

export class Trainer {
  readonly training: TrainingGraph;
  readonly params = new Map<string, Float32Array>();
  readonly state = new Map<string, Float32Array>();
  readonly optimizer: Optimizer;
  private session!: RpSession;
  /**
   * DP-SGD: the training graph built for a static batch of the physical batch size (its full
   * chunks), where the rules can use ops whose attributes depend on N (the grouped-Conv
   * per-example weight gradient of a 1-channel stem conv, rules/conv.ts: dp-cnn's conv1 4x
   * faster). Made on first use; other sizes run on the symbolic-batch graph.
   */
  private fixed: { n: number; training: TrainingGraph; session: RpSession } | undefined;
  private evalSession: RpSession | undefined;
  private evalStep = -1;
  private readonly dataInput: string;
  private readonly dataShape: number[];
  stepCount = 0;

  private constructor(readonly model: Model, readonly opts: TrainerOptions) {
    this.training = buildTrainingGraph(model, this.graphOptions());
    for (const p of this.training.params) {
      const t = model.graph.initializers.get(p.name);
      if (!t) throw new RpOnnxError(`trainable parameter '${p.name}' is not an initializer of the model`);
      this.params.set(p.name, Float32Array.from(tensorToFloat32(t)));
    }
    // Running statistics fed each step: updated by the graph ('train') or by the caller ('fed').
    for (const name of [...(this.training.outputs.bnStats ?? []).map((s) => s.running), ...(this.training.inputs.statistics ?? [])]) {
      const t = model.graph.initializers.get(name);
      if (t) this.state.set(name, Float32Array.from(tensorToFloat32(t)));
    }
    const [data] = this.training.inputs.data;
    if (!data || this.training.inputs.data.length !== 1) {
      throw new RpOnnxError('training needs a model with exactly one data input');
    }
    this.dataInput = data;
    const type = model.graph.typeOf(data);
    this.dataShape = (type?.shape ?? []).map((d) => (typeof d === 'number' ? d : -1));
    this.optimizer = createOptimizer(opts.optimizer, opts);
  }

  private graphOptions(batchSize?: number) {
    const o = this.opts;
    return { loss: o.loss ?? 'cross-entropy', freeze: o.freeze, batchNorm: o.batchNorm ?? 'train', dp: o.dp, batchSize } as const;
  }

  /** The static-batch DP graph for chunks of `n` examples (one size kept: the physical batch). */
  private async fixedBatch(n: number): Promise<{ training: TrainingGraph; session: RpSession }> {
    if (this.fixed?.n === n) return this.fixed;
    await this.fixed?.session.release();
    this.fixed = undefined;
    const training = buildTrainingGraph(this.model, this.graphOptions(n));
    this.fixed = { n, training, session: await createSession(training.model, sessionOptions(this.opts)) };
    return this.fixed;
  }

  static async create(model: Model, opts: TrainerOptions): Promise<Trainer> {
    const t = new Trainer(model, opts);
    t.session = await createSession(t.training.model, sessionOptions(opts));
    return t;
  }

  /** Example shape [C, H, W] the model expects, -1 where symbolic. */
  get exampleShape(): number[] {
    return this.dataShape.slice(1);
  }

  private feeds(images: Float32Array, labels: Int32Array, n: number, training = this.training): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    const per = images.length / n;
    const dims = [n, ...this.exampleShape];
    if (dims.some((d) => d < 0) || dims.reduce((a, b) => a * b, 1) !== images.length) {
      throw new RpOnnxError(`data of ${per} values per example does not fit the model input '${this.dataInput}' [${this.dataShape.join(', ')}]`);
    }
    feeds[this.dataInput] = new ort.Tensor('float32', images, dims);
    feeds[training.inputs.labels] = new ort.Tensor('int64', BigInt64Array.from(labels, (l) => BigInt(l)), [n]);
    for (const [name, value] of this.params) feeds[name] = new ort.Tensor('float32', value, this.shapeOf(name));
    for (const [name, value] of this.state) feeds[name] = new ort.Tensor('float32', value, this.shapeOf(name));
    return feeds;
  }

  private shapeOf(name: string): number[] {
    const t = this.model.graph.initializers.get(name)!;
    return t.dims.map(Number);
  }

  /** Runs the training graph on one batch and returns outputs (no update). */
  async forwardBackward(images: Float32Array, labels: Int32Array, n: number): Promise<Fetches> {
    return this.session.run(this.feeds(images, labels, n));
  }

  /** One optimisation step on a batch; `lr` is this step's learning rate. */
  async step(images: Float32Array, labels: Int32Array, n: number, lr: number, transform?: GradientTransform): Promise<StepResult> {
    if (this.training.dp) throw new RpOnnxError('this trainer was created for DP-SGD (per-example gradients): use dpGradients() and applyUpdate()');
    const out = await this.forwardBackward(images, labels, n);
    let grads = new Map<string, Float32Array>();
    for (const p of this.training.params) grads.set(p.name, out[p.gradient]!.data as Float32Array);
    if (transform) grads = transform(grads, out);
    for (const s of this.training.outputs.bnStats ?? []) {
      const updated = out[s.updated];
      if (updated) this.state.set(s.running, Float32Array.from(updated.data as Float32Array));
    }
    this.applyUpdate(grads, lr);
    const loss = Number((out[this.training.outputs.loss]!.data as Float32Array)[0]);
    return { loss, correct: countCorrect(out[this.training.outputs.logits]!.data as Float32Array, labels, n), size: n };
  }

  /**
   * DP-SGD: the training graph on a batch (N >= 1), no update. 'clip' mode: for each parameter
   * the sum over the batch of each example's gradient scaled by clipFactor(||g_i||, clipNorm) (src/clipping.ts);
   * 'per-example' mode: the gradients themselves, [N * size] (clipNorm unused). g_i is the
   * gradient of example i's own loss (not divided by N), and `norms` are the unclipped ||g_i||
   * over all parameters. `loss` is the batch mean.
   *
   * `physicalBatchSize` splits the (logical, e.g. Poisson-sampled) batch into runs of at most
   * that many examples, as Opacus's BatchMemoryManager does: every example is still clipped on
   * its own, so the clipped sums of the chunks add up to the clipped sum of the whole batch and
   * the DP step (one noise draw per logical batch, done by the caller) is unchanged; only the
   * memory of one run is bounded.
   */
  async dpGradients(images: Float32Array, labels: Int32Array, n: number, clipNorm: number, physicalBatchSize?: number): Promise<DpGradients> {
    const dp = this.training.dp;
    if (!dp) throw new RpOnnxError('this trainer was not created for DP-SGD');
    const chunk = physicalBatchSize ?? n;
    if (!Number.isInteger(chunk) || chunk < 1) throw new RpOnnxError(`physicalBatchSize must be a positive integer, got ${physicalBatchSize}`);
    if (chunk >= n) return this.dpGradientsOnce(images, labels, n, clipNorm, physicalBatchSize === n);
    const per = images.length / n;
    const perExample = this.opts.dp?.mode === 'per-example';
    let total: DpGradients | undefined;
    for (let start = 0; start < n; start += chunk) {
      const m = Math.min(chunk, n - start);
      const r = await this.dpGradientsOnce(images.subarray(start * per, (start + m) * per), labels.subarray(start, start + m), m, clipNorm, m === chunk);
      if (!total) {
        // Copies: onnxruntime may reuse its output buffers on the next run.
        total = { ...r, loss: r.loss * m, norms: new Float32Array(n), grads: new Map([...r.grads].map(([k, g]) => [k, Float32Array.from(g)])) };
        if (perExample) total.grads = new Map([...r.grads].map(([k, g]) => [k, concatInto(new Float32Array((g.length / m) * n), g, 0)]));
      } else {
        total.loss += r.loss * m;
        total.correct += r.correct;
        for (const [k, g] of r.grads) {
          const acc = total.grads.get(k)!;
          if (perExample) concatInto(acc, g, (g.length / m) * start);
          else for (let i = 0; i < g.length; i++) acc[i]! += g[i]!;
        }
      }
      total.norms.set(r.norms, start);
    }
    total!.loss /= n;
    total!.size = n;
    return total!;
  }

  /** One run of a DP training graph; `fixed`: on the static-batch graph of this size. */
  private async dpGradientsOnce(images: Float32Array, labels: Int32Array, n: number, clipNorm: number, fixed = false): Promise<DpGradients> {
    const { training, session } = fixed ? await this.fixedBatch(n) : { training: this.training, session: this.session };
    const dp = training.dp!;
    const feeds = this.feeds(images, labels, n, training);
    if (dp.clipInput) feeds[dp.clipInput] = new ort.Tensor('float32', Float32Array.of(clipNorm), []);
    const out = await session.run(feeds);
    const grads = new Map<string, Float32Array>();
    for (const p of dp.perParam) grads.set(p.name, out[p.output]!.data as Float32Array);
    const loss = Number((out[training.outputs.loss]!.data as Float32Array)[0]);
    return {
      loss, size: n, grads, norms: out[dp.norms]!.data as Float32Array,
      correct: countCorrect(out[training.outputs.logits]!.data as Float32Array, labels, n),
    };
  }

  /** Applies an update from given gradients (DP-SGD's noisy ones) and counts the step. */
  applyUpdate(grads: Map<string, Float32Array>, lr: number): void {
    for (const [name, g] of grads) this.optimizer.step(name, this.params.get(name)!, g, lr);
    this.optimizer.endStep();
    this.stepCount++;
  }

  /** Logits of the current parameters for a batch (inference semantics: running statistics). */
  async predict(images: Float32Array, n: number): Promise<Float32Array> {
    // The current weights are baked into a session made once per optimisation step seen: with
    // weights as inputs onnxruntime cannot fold BatchNorm into Conv and, on some exported models
    // (MobileNetV2), its memory planner then fails, so evaluation never feeds weights.
    if (!this.evalSession || this.evalStep !== this.stepCount) {
      await this.evalSession?.release();
      const evalModel = this.exportModel();
      makeBatchDynamic(evalModel.graph);
      this.evalSession = await createSession(evalModel, sessionOptions(this.opts));
      this.evalStep = this.stepCount;
    }
    const feeds: Record<string, ort.Tensor> = { [this.dataInput]: new ort.Tensor('float32', images, [n, ...this.exampleShape]) };
    const out = await this.evalSession.run(feeds);
    return out[this.evalSession.outputs[0]!.name]!.data as Float32Array;
  }

  /** The input model with the trained parameters and statistics written back. */
  exportModel(): Model {
    const m = this.model.clone();
    for (const [name, value] of [...this.params, ...this.state]) {
      const old = m.graph.initializers.get(name)!;
      m.graph.initializers.set(name, makeTensor(name, old.dims.map(Number), Float32Array.from(value)));
    }
    return m;
  }

  async release(): Promise<void> {
    await this.session.release();
    await this.fixed?.session.release();
    await this.evalSession?.release();
  }
}

function sessionOptions(opts: TrainerOptions) {
  return { threads: opts.threads, executionProvider: opts.executionProvider ?? 'cpu', noiseSeed: opts.noiseSeed ?? 'secure' } as const;
}

function concatInto(out: Float32Array, part: Float32Array, offset: number): Float32Array {
  out.set(part, offset);
  return out;
}

/** Number of rows whose arg-max equals the label. */
export function countCorrect(logits: Float32Array, labels: Int32Array, n: number): number {
  const k = logits.length / n;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (logits[i * k + j]! > logits[i * k + best]!) best = j;
    if (best === labels[i]) correct++;
  }
  return correct;
}

export type { Random };
