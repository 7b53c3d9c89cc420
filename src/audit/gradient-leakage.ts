/**
 * Gradient leakage: reconstruct a training example from the gradient one training step shares
 * (federated learning, a leaked update), and measure how well DP-SGD's clipping and noise stop it.
 *
 * This file is the analytic attack (`--method analytic`; the optimization attacks DLG, iDLG and
 * Inverting Gradients, for any classifier, are ./gradient-inversion.ts), for models whose first
 * trainable layer is fully connected with a bias (Phong et al. 2017; the closed-form core of
 * DLG/iDLG-style attacks): for one example,
 * z = W x + b gives dL/dW[j, :] = dL/db[j] * x, so every row j with dL/db[j] != 0 holds a scaled
 * copy of x. The estimate is the least-squares fit over the rows used,
 *   x^ = sum_j db_j dW_j / sum_j db_j^2,
 * i.e. the ratios dW_j / db_j averaged with weights db_j^2: exact for a clean gradient, and the
 * rows with large |db_j| dominate when noise is added. The label follows iDLG (Zhao et al. 2020):
 * with softmax cross-entropy, the last layer's bias gradient p - onehot(y) is negative only at
 * the true class (without a bias, the row sums of its weight gradient, since ReLU features are
 * non-negative). The attacker knows the data range and clamps the estimate to [0, 1].
 *
 * The gradient is computed here, in float64, by a small forward/backward pass over an MLP read
 * from the ONNX graph (Flatten/Reshape, Gemm or MatMul + Add, Relu/Sigmoid/Tanh, softmax
 * cross-entropy), independent of the training engine. With DP, the example's whole gradient is
 * clipped to L2 norm C and N(0, sigma^2 C^2) noise is added to every coordinate (DP-SGD with a
 * batch of one) before the attacker sees it.
 */
import { noiseAt, validateSchedule, type NoiseSchedule } from '../train/dp/noise-schedule.js';
import { Graph, Model, makeTensorTypeProto, type Node } from '../graph/ir.js';
import { GraphBuilder } from '../graph/builder.js';
import { onnx } from '../graph/onnx.js';
import { tensorDims, tensorToArray, tensorToFloat32 } from '../graph/tensor.js';
import { exampleSize, type Dataset } from '../data/index.js';
import { Random } from '../random.js';
import { RpOnnxError } from '../errors.js';
import { clipFactor } from '../clipping.js';
import { mse, psnr, ssim } from './image-metrics.js';

export type Activation = 'relu' | 'sigmoid' | 'tanh';

export interface DenseLayer {
  kind: 'dense';
  /** Initializer names in the model. */
  weightName: string;
  biasName: string | null;
  inSize: number;
  outSize: number;
  /** Weights as [out][in], row-major, whatever the orientation in the file. */
  w: Float64Array;
  b: Float64Array | null;
}

export type MlpLayer = DenseLayer | { kind: Activation };

export interface Mlp {
  /** Shape of one example, without the batch axis. */
  exampleShape: number[];
  layers: MlpLayer[];
  classes: number;
}

export interface DenseGradient {
  /** [out][in], row-major. */
  dw: Float64Array;
  db: Float64Array | null;
}

const ACTIVATIONS: Readonly<Record<string, Activation>> = { Relu: 'relu', Sigmoid: 'sigmoid', Tanh: 'tanh' };
const PASS_THROUGH = new Set(['Identity', 'Dropout']);
const SUPPORTED = 'Flatten, Reshape, Gemm, MatMul + Add, Relu, Sigmoid, Tanh';

function unsupported(why: string): RpOnnxError {
  return new RpOnnxError(`the analytic gradient-leakage attack works on MLPs (${SUPPORTED}) whose output is the logits: ${why} (--method dlg, idlg or inverting-gradients attack any classifier)`);
}

function floatInit(g: Graph, name: string): { dims: number[]; data: Float32Array } | null {
  const t = g.initializers.get(name);
  return t ? { dims: tensorDims(t), data: tensorToFloat32(t) } : null;
}

/** The model's one data input and its static example shape. */
function mlpInput(g: Graph): { name: string; exampleShape: number[] } {
  const inputs = g.realInputs();
  if (inputs.length !== 1) throw unsupported(`the model has ${inputs.length} data inputs, not 1`);
  const shape = g.typeOf(inputs[0]!.name)?.shape;
  if (!shape || shape.length < 2 || shape.slice(1).some((d) => typeof d !== 'number')) {
    throw unsupported(`input '${inputs[0]!.name}' needs a static example shape, got [${(shape ?? []).join(', ')}]`);
  }
  return { name: inputs[0]!.name, exampleShape: shape.slice(1) as number[] };
}

/** A Gemm or MatMul on the flat data as a dense layer of `width` inputs, weights stored [out][in]. */
function denseLayer(g: Graph, node: Node, cur: string, width: number, where: string): DenseLayer {
  const op = node.opType;
  if (node.inputs[0] !== cur) throw unsupported(`${where} must take the data as its first input`);
  const w = floatInit(g, node.inputs[1] ?? '');
  if (!w || w.dims.length !== 2) throw unsupported(`${where} needs a 2-D weight initializer`);
  const transB = op === 'Gemm' && node.getInt('transB', 0) === 1;
  if (op === 'Gemm' && (node.getInt('transA', 0) !== 0 || node.getFloat('alpha', 1) !== 1 || node.getFloat('beta', 1) !== 1)) {
    throw unsupported(`${where} uses transA/alpha/beta`);
  }
  const [rows, cols] = w.dims as [number, number];
  const [inSize, outSize] = transB ? [cols, rows] : [rows, cols];
  if (inSize !== width) throw unsupported(`${where} expects ${inSize} inputs but receives ${width}`);
  const wt = new Float64Array(outSize * inSize);
  for (let o = 0; o < outSize; o++) for (let i = 0; i < inSize; i++) wt[o * inSize + i] = transB ? w.data[o * inSize + i]! : w.data[i * outSize + o]!;
  let biasName: string | null = null;
  let b: Float64Array | null = null;
  if (op === 'Gemm' && node.inputs[2]) {
    const c = floatInit(g, node.inputs[2]);
    if (!c || c.data.length !== outSize) throw unsupported(`${where} needs a bias initializer of ${outSize} values`);
    biasName = node.inputs[2];
    b = Float64Array.from(c.data);
  }
  return { kind: 'dense', weightName: node.inputs[1]!, biasName, inSize, outSize, w: wt, b };
}

/** Whether a Flatten/Reshape node turns the data into [batch, width] (throws if it reshapes otherwise). */
function flattens(g: Graph, node: Node, width: number, where: string): boolean {
  if (node.opType === 'Flatten') {
    if ((node.getInt('axis', 1) ?? 1) !== 1) throw unsupported(`${where} flattens from axis ${node.getInt('axis')}, not 1`);
    return true;
  }
  const target = g.initializers.get(node.inputs[1] ?? '');
  const dims = target ? Array.from(tensorToArray(target) as ArrayLike<number | bigint>, Number) : null;
  if (!dims || dims.length !== 2 || !(dims[1] === -1 || dims[1] === width)) throw unsupported(`${where} must reshape to [batch, ${width}]`);
  return true;
}

/** An Add after a bias-less dense layer becomes that layer's bias. */
function attachBias(g: Graph, node: Node, cur: string, last: MlpLayer | undefined, width: number, where: string): void {
  const other = node.inputs[0] === cur ? node.inputs[1] : node.inputs[0];
  const c = floatInit(g, other ?? '');
  if (!last || last.kind !== 'dense' || last.b || !c || c.data.length !== width) throw unsupported(`${where} is not a bias of the preceding fully connected layer`);
  last.biasName = other!;
  last.b = Float64Array.from(c.data);
}

/** Reads the MLP a model is made of; throws a one-line error naming the first unsupported node. */
export function mlpFromModel(model: Model): Mlp {
  const g = model.graph;
  const input = mlpInput(g);
  const exampleShape = input.exampleShape;
  let width = exampleShape.reduce((a, b) => a * b, 1);
  let flat = exampleShape.length === 1;
  const layers: MlpLayer[] = [];
  const output = g.outputs[0]?.name;
  let cur = input.name;
  const next = (): Node | undefined => {
    const c = g.consumers(cur);
    if (c.length > 1) throw unsupported(`value '${cur}' feeds ${c.length} nodes (the model is not a chain)`);
    return c[0];
  };
  for (let node = next(); node; node = next()) {
    const op = node.opType;
    const where = `${op} node '${node.name || node.outputs[0]}'`;
    if (op === 'Flatten' || op === 'Reshape') flat = flattens(g, node, width, where);
    else if (op === 'Gemm' || op === 'MatMul') {
      if (!flat) throw unsupported(`${where} gets a rank-${exampleShape.length + 1} input; flatten it first`);
      const layer = denseLayer(g, node, cur, width, where);
      layers.push(layer);
      width = layer.outSize;
    } else if (op === 'Add') attachBias(g, node, cur, layers[layers.length - 1], width, where);
    else if (ACTIVATIONS[op]) layers.push({ kind: ACTIVATIONS[op]! });
    else if (!PASS_THROUGH.has(op)) throw unsupported(`${where} is not supported`);
    cur = node.outputs[0]!;
    if (cur === output) break;
  }
  if (cur !== output) throw unsupported(`the chain from the input ends at '${cur}', not at the output '${output}'`);
  const dense = layers.filter((l): l is DenseLayer => l.kind === 'dense');
  if (dense.length === 0) throw unsupported('the model has no fully connected layer');
  return { exampleShape, layers, classes: dense[dense.length - 1]!.outSize };
}

/** Loss, logits and the gradient of every dense layer for one example (float64). */
export function mlpGradient(mlp: Mlp, x: ArrayLike<number>, label: number): { loss: number; logits: Float64Array; grads: DenseGradient[] } {
  const acts: Float64Array[] = [Float64Array.from(x)];
  for (const l of mlp.layers) {
    const h = acts[acts.length - 1]!;
    if (l.kind === 'dense') {
      const z = new Float64Array(l.outSize);
      for (let o = 0; o < l.outSize; o++) {
        let s = l.b ? l.b[o]! : 0;
        const row = o * l.inSize;
        for (let i = 0; i < l.inSize; i++) s += l.w[row + i]! * h[i]!;
        z[o] = s;
      }
      acts.push(z);
    } else if (l.kind === 'relu') acts.push(h.map((v) => (v > 0 ? v : 0)));
    else if (l.kind === 'sigmoid') acts.push(h.map((v) => 1 / (1 + Math.exp(-v))));
    else acts.push(h.map((v) => Math.tanh(v)));
  }
  const logits = acts[acts.length - 1]!;
  if (!(label >= 0 && label < logits.length)) throw new RpOnnxError(`label ${label} is outside the model's ${logits.length} classes`);
  const max = Math.max(...logits);
  const lse = max + Math.log(logits.reduce((s, v) => s + Math.exp(v - max), 0));
  let d = logits.map((v, k) => Math.exp(v - lse) - (k === label ? 1 : 0));
  const grads: DenseGradient[] = [];
  for (let li = mlp.layers.length - 1; li >= 0; li--) {
    const l = mlp.layers[li]!;
    const input = acts[li]!;
    const out = acts[li + 1]!;
    if (l.kind === 'dense') {
      const dw = new Float64Array(l.outSize * l.inSize);
      const dIn = new Float64Array(l.inSize);
      for (let o = 0; o < l.outSize; o++) {
        const g = d[o]!;
        if (g === 0) continue;
        const row = o * l.inSize;
        for (let i = 0; i < l.inSize; i++) {
          dw[row + i] = g * input[i]!;
          dIn[i]! += g * l.w[row + i]!;
        }
      }
      grads.unshift({ dw, db: l.b ? Float64Array.from(d) : null });
      d = dIn;
    } else if (l.kind === 'relu') d = d.map((v, i) => (input[i]! > 0 ? v : 0));
    else if (l.kind === 'sigmoid') d = d.map((v, i) => v * out[i]! * (1 - out[i]!));
    else d = d.map((v, i) => v * (1 - out[i]! * out[i]!));
  }
  return { loss: lse - logits[label]!, logits, grads };
}

export interface DpOptions {
  /** Clipping bound C of the example's whole gradient. */
  maxGradNorm: number;
  /** sigma: the noise standard deviation is sigma * C per coordinate. */
  noiseMultiplier: number;
}

/** L2 norm of the whole gradient. */
export function gradientNorm(grads: readonly DenseGradient[]): number {
  let s = 0;
  for (const g of grads) {
    for (const v of g.dw) s += v * v;
    if (g.db) for (const v of g.db) s += v * v;
  }
  return Math.sqrt(s);
}

/**
 * DP-SGD on a batch of one, as every gradient-leakage attack applies it to the gradient it
 * observes: the whole gradient (all `parts` together) clipped to L2 norm C, then N(0, sigma^2 C^2)
 * added to every coordinate, in the order of `parts`. Returns new arrays.
 */
export function clipAndNoise<T extends Float32Array | Float64Array>(parts: readonly T[], dp: DpOptions, rng: Random): T[] {
  if (!(dp.maxGradNorm > 0)) throw new RpOnnxError(`maxGradNorm must be positive, got ${dp.maxGradNorm}`, { param: 'maxGradNorm' });
  if (!(dp.noiseMultiplier >= 0)) throw new RpOnnxError(`noiseMultiplier must be >= 0, got ${dp.noiseMultiplier}`, { param: 'noiseMultiplier' });
  let sq = 0;
  for (const p of parts) for (let i = 0; i < p.length; i++) sq += p[i]! * p[i]!;
  const scale = clipFactor(Math.sqrt(sq), dp.maxGradNorm);
  const std = dp.noiseMultiplier * dp.maxGradNorm;
  return parts.map((p) => p.map((x) => x * scale + (std > 0 ? rng.normal() * std : 0)) as T);
}

/** clipAndNoise over the dense layers' weight and bias gradients. */
export function privatizeGradient(grads: readonly DenseGradient[], dp: DpOptions, rng: Random): DenseGradient[] {
  const noisy = clipAndNoise(grads.flatMap((g) => (g.db ? [g.dw, g.db] : [g.dw])), dp, rng);
  let k = 0;
  return grads.map((g) => ({ dw: noisy[k++]!, db: g.db ? noisy[k++]! : null }));
}

/**
 * The analytic reconstruction from the first dense layer's gradient: least squares over the
 * `topRows` rows with the largest |db_j| (default: every row).
 */
export function reconstructInput(first: DenseGradient, inSize: number, topRows?: number): { x: Float64Array; rowsUsed: number } {
  if (!first.db) throw new RpOnnxError('the analytic gradient-leakage attack needs a bias in the first fully connected layer');
  const out = first.db.length;
  const order = Array.from({ length: out }, (_, j) => j).filter((j) => first.db![j] !== 0).sort((a, b) => Math.abs(first.db![b]!) - Math.abs(first.db![a]!));
  const rows = order.slice(0, Math.min(order.length, topRows ?? order.length));
  const x = new Float64Array(inSize);
  let denom = 0;
  for (const j of rows) {
    const db = first.db[j]!;
    denom += db * db;
    for (let i = 0; i < inSize; i++) x[i]! += db * first.dw[j * inSize + i]!;
  }
  if (denom === 0) throw new RpOnnxError('the first layer\'s bias gradient is zero (no unit is active for this example): nothing to reconstruct from');
  for (let i = 0; i < inSize; i++) x[i]! /= denom;
  return { x, rowsUsed: rows.length };
}

/** iDLG's label rule from the last dense layer's gradient. */
export function inferLabel(last: DenseGradient, inSize: number): number {
  let score: Float64Array;
  if (last.db) score = last.db;
  else {
    score = new Float64Array(last.dw.length / inSize);
    for (let o = 0; o < score.length; o++) for (let i = 0; i < inSize; i++) score[o]! += last.dw[o * inSize + i]!;
  }
  let best = 0;
  for (let k = 1; k < score.length; k++) if (score[k]! < score[best]!) best = k;
  return best;
}

export interface LeakageOptions {
  dp?: DpOptions;
  /** Seed of the DP noise (default 0, for reproducible experiments). */
  seed?: number;
  topRows?: number;
}

/** How well one training example was reconstructed: what every gradient-leakage attack reports. */
export interface ReconstructedExample {
  index: number;
  label: number;
  inferredLabel: number;
  labelCorrect: boolean;
  mse: number;
  /** dB, data range 1; Infinity for an exact reconstruction. */
  psnr: number;
  /** null when the images are too small for a 7x7 window. */
  ssim: number | null;
  /** Norm of the example's gradient before clipping. */
  gradientNorm: number;
  original: Float32Array;
  reconstruction: Float32Array;
}

export interface LeakageExample extends ReconstructedExample {
  rowsUsed: number;
}

export interface LeakageReport {
  examples: LeakageExample[];
  meanMse: number;
  meanPsnr: number;
  meanSsim: number | null;
  labelAccuracy: number;
  dp: DpOptions | null;
}

/** Runs the attack on the examples at `indices` of `ds`, each from its own (privatized) gradient. */
export function gradientLeakage(mlp: Mlp, ds: Dataset, indices: readonly number[], opts: LeakageOptions = {}): LeakageReport {
  const per = exampleSize(ds);
  const first = mlp.layers.find((l): l is DenseLayer => l.kind === 'dense')!;
  const dense = mlp.layers.filter((l): l is DenseLayer => l.kind === 'dense');
  if (first.inSize !== per) throw new RpOnnxError(`the model takes ${first.inSize} input values but ${ds.name} has ${per} per example`);
  if (indices.length === 0) throw new RpOnnxError('no examples to attack');
  const rng = new Random(opts.seed ?? 0);
  const [, h, w] = ds.shape;
  const window = Math.min(h, w) >= 11 ? 11 : Math.min(h, w) >= 7 ? 7 : 0;
  const examples = indices.map((index): LeakageExample => {
    if (!(Number.isInteger(index) && index >= 0 && index < ds.count)) throw new RpOnnxError(`index ${index} is outside ${ds.name} (0..${ds.count - 1})`, { param: 'index' });
    const original = ds.images.slice(index * per, (index + 1) * per);
    const label = ds.labels[index]!;
    const clean = mlpGradient(mlp, original, label).grads;
    const seen = opts.dp ? privatizeGradient(clean, opts.dp, rng) : clean;
    const { x, rowsUsed } = reconstructInput(seen[0]!, first.inSize, opts.topRows);
    const reconstruction = Float32Array.from(x, (v) => Math.min(1, Math.max(0, v)));
    const last = dense[dense.length - 1]!;
    const inferredLabel = inferLabel(seen[seen.length - 1]!, last.inSize);
    return {
      index, label, inferredLabel, labelCorrect: inferredLabel === label,
      mse: mse(original, reconstruction), psnr: psnr(original, reconstruction, 1),
      ssim: window ? ssim(original, reconstruction, ds.shape, { window }) : null,
      gradientNorm: gradientNorm(clean), rowsUsed, original, reconstruction,
    };
  });
  const mean = (f: (e: LeakageExample) => number) => examples.reduce((s, e) => s + f(e), 0) / examples.length;
  return {
    examples,
    meanMse: mean((e) => e.mse),
    // Mean PSNR over examples; an exact reconstruction counts as Infinity.
    meanPsnr: mean((e) => e.psnr),
    meanSsim: window ? mean((e) => e.ssim!) : null,
    labelAccuracy: mean((e) => (e.labelCorrect ? 1 : 0)),
    dp: opts.dp ?? null,
  };
}

/**
 * A fresh MLP: [Flatten,] then Gemm (+ Relu) per hidden width, then a Gemm to `classes` logits.
 * Weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's nn.Linear default).
 */
export function buildMlp(inputSize: number | readonly number[], hidden: number | readonly number[], classes: number, seed: number): Model {
  const shape = typeof inputSize === 'number' ? [inputSize] : [...inputSize];
  const widths = typeof hidden === 'number' ? [hidden] : [...hidden];
  for (const v of [...shape, ...widths, classes]) if (!(Number.isInteger(v) && v >= 1)) throw new RpOnnxError(`MLP sizes must be positive integers, got input [${shape.join(', ')}], hidden [${widths.join(', ')}], classes ${classes}`);
  const rng = new Random(seed);
  const g = new Graph({ name: 'mlp' });
  g.inputs.push({ name: 'input', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', ...shape] }) });
  const b = new GraphBuilder(g);
  let x = shape.length > 1 ? b.op1('Flatten', ['input'], { axis: 1 }, { name: 'flatten' }) : 'input';
  let fanIn = shape.reduce((a, c) => a * c, 1);
  const sizes = [...widths, classes];
  sizes.forEach((out, k) => {
    const bound = 1 / Math.sqrt(fanIn);
    const uniform = (n: number) => Float32Array.from({ length: n }, () => (2 * rng.uniform() - 1) * bound);
    const last = k === sizes.length - 1;
    const name = last ? 'head' : `fc${k + 1}`;
    const W = b.initializer(`${name}.weight`, [out, fanIn], uniform(out * fanIn));
    const B = b.initializer(`${name}.bias`, [out], uniform(out));
    x = b.op1('Gemm', [x, W, B], { transB: 1 }, { name });
    if (!last) x = b.op1('Relu', [x], {}, { name: `${name}.relu` });
    fanIn = out;
  });
  const lastNode = g.nodes[g.nodes.length - 1]!;
  lastNode.outputs[0] = 'logits';
  g.outputs.push({ name: 'logits', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', classes] }) });
  const proto = onnx.ModelProto.create({
    irVersion: 8, producerName: 'rp-onnx', docString: `MLP ${[shape.reduce((a, c) => a * c, 1), ...sizes].join('-')} (ReLU)`,
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 17 })],
  });
  const model = new Model(proto, g);
  model.setMetadata('rp-onnx.builder', JSON.stringify({ model: 'mlp', input: shape, hidden: widths, classes, seed }));
  return model;
}

/** Leakage at one step of a dynamic noise schedule. */
export interface ScheduleLeakageRow {
  step: number;
  noiseMultiplier: number;
  meanPsnr: number;
  meanSsim: number | null;
  meanMse: number;
  labelAccuracy: number;
}

/**
 * Gradient leakage under dynamic privacy parameters (Wei, Liu et al.): the attacker sees the
 * gradient of the same examples at `steps` of a noise schedule, each privatized with that step's
 * sigma_t = noiseAt(schedule, t) and clipping bound C. Weights are held fixed, so the rows differ
 * only by the noise the schedule puts on the gradient.
 */
export function leakageOverSchedule(mlp: Mlp, ds: Dataset, indices: readonly number[], maxGradNorm: number, schedule: NoiseSchedule, steps: readonly number[], seed = 0, topRows?: number): ScheduleLeakageRow[] {
  validateSchedule(schedule);
  return steps.map((step, k) => {
    if (!(Number.isInteger(step) && step >= 0 && step < schedule.totalSteps)) throw new RpOnnxError(`step ${step} is outside the schedule's ${schedule.totalSteps} steps`);
    const noiseMultiplier = noiseAt(schedule, step);
    const r = gradientLeakage(mlp, ds, indices, { dp: { maxGradNorm, noiseMultiplier }, seed: seed + k, topRows });
    return { step, noiseMultiplier, meanPsnr: r.meanPsnr, meanSsim: r.meanSsim, meanMse: r.meanMse, labelAccuracy: r.labelAccuracy };
  });
}
