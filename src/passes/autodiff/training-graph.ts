/**
 * Assembles the training graph of a model: forward + loss + backward in one ONNX graph that
 * onnxruntime runs as an ordinary inference session.
 *
 *   inputs:  the model's data input(s) (batch dimension made symbolic), `labels` (int64 [N], or
 *            float `targets` for MSE), every trainable parameter, and in BatchNorm 'train' mode
 *            the running mean/variance of each BatchNormalization
 *   outputs: loss (scalar), logits, the gradient of every parameter, and the updated running
 *            statistics
 *
 * Parameters are inputs rather than initializers so the optimizer (TypeScript, Float32Arrays)
 * feeds new values every step without rebuilding the session.
 *
 * BatchNormalization in 'train' mode normalizes with the statistics of the current batch
 * (biased variance, as PyTorch and ONNX do) and updates the running statistics the ONNX way,
 * running = running * momentum + batch * (1 - momentum) with the node's momentum (ONNX's 0.9 is
 * PyTorch's 0.1), using the *unbiased* batch variance for running_var as PyTorch does, so a
 * model trained here and evaluated with running statistics matches its PyTorch twin. 'frozen'
 * uses the running statistics (inference BN, a per-channel affine map).
 *
 * DP-SGD (`dp`): the gradients are per example, computed in the same single backward pass
 * (./per-example.ts), of each example's own loss: its cross-entropy -log softmax(logits_n)[y_n]
 * (or its MSE, the mean over its own outputs), NOT divided by the batch size, because DP-SGD
 * clips each example's gradient and then sums them (the caller adds noise and divides by the
 * expected batch size). The `loss` output stays the batch mean, for display. Mode 'clip' clips
 * and sums in the graph; 'per-example' returns the [N, ...shape] tensors. Both output the
 * unclipped per-example norms over all parameters. BatchNormalization with batch statistics is
 * refused (it mixes examples); N = 0 cannot run (onnxruntime), N = 1 can.
 */
import { Model, Node, makeTensorTypeProto, type Dim, type TensorType } from '../../graph/ir.js';
import { GraphBuilder } from '../../graph/builder.js';
import { dtypeName, isFloatDType, tensorDims, tensorToArray } from '../../graph/tensor.js';
import { inferShapes } from '../../graph/shape-inference.js';
import { RpOnnxError } from '../../errors.js';
import { CLIP_EPSILON } from '../../clipping.js';
import { makeBatchDynamic } from '../dynamic-batch.js';
import { initializersAsInputs } from '../params-as-inputs.js';
import { differentiate } from './engine.js';
import { crossEntropyLoss, mseLoss } from './loss.js';
import { outerProductFactors, outerProductSquaredNorms, outerProductWeightedSum } from './per-example.js';

export interface TrainingGraphOptions {
  loss: 'cross-entropy' | 'mse';
  /** The value the loss reads; default: the model's first output. */
  logits?: string;
  /** Parameters to train (initializer names); default: every float initializer (rank >= 1) that
   * reaches the loss through differentiable paths, except BatchNormalization running stats. */
  trainable?: string[];
  /** Initializer-name patterns to keep fixed (`*` any run of characters, `?` one character). */
  freeze?: string[];
  /** BatchNormalization semantics while training (default 'train'). */
  batchNorm?: 'train' | 'frozen' | 'fed';
  /**
   * DP-SGD: per-example gradients of each example's own (not batch-averaged) loss. 'clip' adds
   * a float scalar input C ('dp_clip_norm') and outputs, per parameter, the sum over the batch of
   * each example's gradient scaled by clipFactor(||g_i||, C) = min(1, C / (||g_i|| + 1e-6)) (src/clipping.ts), ||g_i|| the L2 norm of
   * example i's whole gradient (all parameters); 'per-example' outputs the [N, ...shape]
   * gradients themselves. Both output the norms [N] ('dp_norms').
   */
  dp?: { mode: 'clip' | 'per-example' };
  /**
   * A static batch size for the data inputs (default symbolic 'N'). Rules see it as
   * GradContext.batchSize and may emit ops whose attributes depend on N (the grouped-Conv
   * per-example weight gradient, rules/conv.ts); the session then runs that batch size only.
   */
  batchSize?: number;
}

export interface TrainingParam {
  /** Initializer name in the source model = input name in the training graph. */
  name: string;
  /** Output holding d(loss)/d(param). */
  gradient: string;
  shape: number[];
}

export interface BatchNormStat {
  /** Running statistic (initializer of the source model, input of the training graph). */
  running: string;
  /** Output holding its updated value after this step. */
  updated: string;
}

export interface TrainingGraph {
  model: Model;
  /** `statistics`: with batchNorm 'fed', the BatchNorm mean/variance inputs the caller feeds each step. */
  inputs: { data: string[]; labels: string; statistics?: string[] };
  params: TrainingParam[];
  outputs: { loss: string; logits: string; bnStats?: BatchNormStat[] };
  dp?: { clipInput?: string; norms: string; perParam: { name: string; output: string }[] };
}

/**
 * Inputs through which no parameter is trained even when they are float initializers (sizes,
 * scales, bounds, fill values): such initializers are never picked as default parameters.
 */
const NON_PARAMETER_SLOTS: Readonly<Record<string, readonly number[]>> = {
  Resize: [1, 2, 3], Upsample: [1], Clip: [1, 2], Pad: [2], ConstantOfShape: [0], Dropout: [1],
  RandomNormalLike: [0], RandomUniformLike: [0], Range: [0, 1, 2],
};

/** Glob-like pattern (`*`, `?`) as an anchored regular expression. */
export function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export function buildTrainingGraph(model: Model, opts: TrainingGraphOptions): TrainingGraph {
  const m = model.clone();
  const g = m.graph;
  const opset = m.opset('') || 17;
  const b = new GraphBuilder(g);
  const batchNorm = opts.batchNorm ?? 'train';

  const logits = logitsValue(m, opts);
  const logitsType = g.typeOf(logits);
  // Every data input gets a symbolic batch dimension; stale intermediate shapes are dropped.
  const data = makeBatchDynamic(g);
  if (opts.batchSize !== undefined && !(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) throw new RpOnnxError(`batchSize must be a positive integer, got ${opts.batchSize}`);
  g.outputs = [{ name: logits, type: null }];

  const { runningStats, bnStats } = prepareBatchNorms(m, b, opts, opset);
  const { labels, loss, dLogits } = addLoss(m, b, opts.loss, logits, logitsType, opset);
  const params = parameterGradients(m, b, opts, chooseCandidates(m, opts, runningStats), logits, dLogits, opset);
  // Static batch: the engine checked the batch axis symbolically; the inputs now declare the size.
  if (opts.batchSize !== undefined) {
    for (const name of data) {
      const t = g.typeOf(name);
      if (t?.shape && t.shape.length > 0) g.setType(name, { dtype: t.dtype, shape: [opts.batchSize, ...t.shape.slice(1)] });
    }
  }
  const dp = opts.dp ? perExampleOutputs(b, params, opts.dp.mode, opset) : undefined;

  // Parameters and running statistics become inputs; with 'fed', inference BatchNorm whose
  // statistics are inputs too (DP with public-batch statistics).
  const statistics = batchNorm === 'fed' ? [...runningStats] : undefined;
  initializersAsInputs(g, [...params.map((p) => p.name), ...bnStats.map((s) => s.running), ...(statistics ?? [])]);
  g.outputs = [
    { name: loss, type: makeTensorTypeProto({ dtype: 'float32', shape: [] }) },
    { name: logits, type: null },
    ...(dp
      ? [...dp.perParam.map((p) => ({ name: p.output, type: null })), { name: dp.norms, type: null }]
      : params.map((p) => ({ name: p.gradient, type: makeTensorTypeProto({ dtype: 'float32', shape: p.shape }) }))),
    ...bnStats.map((s) => ({ name: s.updated, type: null })),
  ];
  if (dp?.clipInput) g.inputs.push({ name: dp.clipInput, type: makeTensorTypeProto({ dtype: 'float32', shape: [] }) });
  g.valueInfo.clear();
  g.removeDeadCode();
  g.toposort();
  return {
    model: m,
    inputs: { data, labels, ...(statistics ? { statistics } : {}) },
    params,
    outputs: { loss, logits, ...(batchNorm === 'train' ? { bnStats } : {}) },
    ...(dp ? { dp } : {}),
  };
}

/** The value the loss reads: `opts.logits` or the model's first output. */
function logitsValue(m: Model, opts: TrainingGraphOptions): string {
  const g = m.graph;
  const logits = opts.logits ?? g.outputs[0]?.name;
  if (!logits) throw new RpOnnxError('the model has no outputs: pass the logits value name (--logits)');
  if (!g.producer(logits) && !g.inputs.some((i) => i.name === logits)) {
    throw new RpOnnxError(`logits '${logits}' is not a value of the model`, { param: 'logits' });
  }
  return logits;
}

/**
 * BatchNormalization semantics for training (opts.batchNorm): the running-statistic inputs of
 * every BatchNormalization, and in 'train' mode their updates.
 */
function prepareBatchNorms(m: Model, b: GraphBuilder, opts: TrainingGraphOptions, opset: number): { runningStats: Set<string>; bnStats: BatchNormStat[] } {
  const g = m.graph;
  const batchNorm = opts.batchNorm ?? 'train';
  const runningStats = new Set<string>();
  for (const n of g.nodes) if (n.opType === 'BatchNormalization' && n.isStandard) for (const v of n.inputs.slice(3, 5)) runningStats.add(v);
  const forwardTypes = inferShapes(g, { opset });
  const rankOf = (v: string) => forwardTypes.get(v)?.shape?.length;
  if (opts.dp && batchNorm === 'train' && runningStats.size > 0) {
    throw new RpOnnxError('DP-SGD cannot train BatchNormalization with batch statistics: they mix the examples of a batch, so per-example clipping no longer bounds one example\'s influence; use --norm-fix freeze, group or public-batch');
  }
  const bnStats = batchNorm === 'train' ? prepareTrainingBatchNorm(m, b, opset, rankOf) : prepareFrozenBatchNorm(m);
  return { runningStats, bnStats };
}

/** The labels (or MSE targets) input, the loss and its closed-form seed d(loss)/d(logits). */
function addLoss(
  m: Model, b: GraphBuilder, kind: TrainingGraphOptions['loss'], logits: string, logitsType: TensorType | null, opset: number,
): { labels: string; loss: string; dLogits: string } {
  const g = m.graph;
  const labels = g.uniqueName(kind === 'mse' ? 'targets' : 'labels');
  if (kind === 'mse') {
    g.inputs.push({ name: labels, type: makeTensorTypeProto({ dtype: logitsType?.dtype ?? 'float32', shape: logitsType?.shape ? ['N', ...logitsType.shape.slice(1)] : null }) });
  } else {
    g.inputs.push({ name: labels, type: makeTensorTypeProto({ dtype: 'int64', shape: ['N'] }) });
  }
  const { loss, dLogits } = kind === 'mse' ? mseLoss(b, logits, labels) : crossEntropyLoss(b, logits, labels, opset);
  return { labels, loss, dLogits };
}

/**
 * The backward pass from the loss seed to the candidates, and one named gradient output per
 * parameter the loss depends on (per example with opts.dp).
 */
function parameterGradients(
  m: Model, b: GraphBuilder, opts: TrainingGraphOptions, candidates: string[], logits: string, dLogits: string, opset: number,
): TrainingParam[] {
  const g = m.graph;
  const types = inferShapes(g, { opset });
  const shapeOf = (v: string): Dim[] | null => types.get(v)?.shape ?? null;
  const typeOf = (v: string): TensorType | null => types.get(v) ?? null;
  // DP differentiates the sum of the per-example losses: the mean's seed times N.
  const seed = opts.dp ? b.op1('Mul', [dLogits, batchSizeAsFloat(b, logits)]) : dLogits;
  const grads = differentiate(g, {
    wrt: candidates, seeds: new Map([[logits, seed]]), opset, shapeOf, typeOf,
    perExample: opts.dp ? new Set(candidates) : undefined, batchSize: opts.batchSize,
  });
  if (opts.trainable) {
    const missing = candidates.filter((c) => !grads.has(c));
    if (missing.length > 0) throw new RpOnnxError(`trainable parameter(s) ${missing.map((x) => `'${x}'`).join(', ')} do not affect the loss; remove them from --trainable`);
  }
  if (grads.size === 0) throw new RpOnnxError('no parameter of the model affects the loss: nothing to train (check --freeze and --logits)');

  const params: TrainingParam[] = [];
  for (const name of candidates) {
    const grad = grads.get(name);
    if (!grad) continue;
    const t = g.initializers.get(name)!;
    const gradient = g.uniqueName(`${name}_grad`);
    g.addNode(identity(grad, gradient));
    params.push({ name, gradient, shape: tensorDims(t) });
  }
  return params;
}

/** The batch size N of `logits` as a float scalar. */
function batchSizeAsFloat(b: GraphBuilder, logits: string): string {
  const n = b.op1('Gather', [b.op1('Shape', [logits]), b.initializer('batch_axis', [], BigInt64Array.of(0n), 'int64')], { axis: 0 });
  return b.op1('Cast', [n], { to: 1 });
}

/**
 * Per-example norms and (mode 'clip') the clipped sums, from the [N, ...shape] gradients:
 * squared norms per parameter by ReduceSumSquare over the non-batch axes, summed, square root;
 * the clip factors min(1, C / (norm + CLIP_EPSILON)) (src/clipping.ts) as a [1, N] row times each [N, D] gradient: one
 * MatMul per parameter, nothing materialized twice. Norms and sums do not depend on how each
 * example's gradient is laid out, so in 'clip' mode both read the tensors the gradient is
 * assembled from (the per-offset products a Conv weight gradient concatenates and transposes,
 * see `perExampleParts`) and only the summed [1, ...] rows are assembled.
 */
function perExampleOutputs(b: GraphBuilder, params: TrainingParam[], mode: 'clip' | 'per-example', opset: number): NonNullable<TrainingGraph['dp']> {
  const sources = params.map((p) => (mode === 'clip' ? perExampleParts(b.graph, p.gradient) : { parts: [p.gradient], chain: [] }));
  // Outer products per example (Gemm weights) are clipped from their factors (per-example.ts).
  const ghosts = params.map((p) => (mode === 'clip' ? outerProductFactors(b.graph, p.gradient, p.shape.length) : undefined));
  const flat = sources.map((src, i) => (ghosts[i] ? [] : src.parts.map((part) => b.op1('Reshape', [part, b.int64s('flat', [0, -1])], {}, { name: `${params[i]!.name}_per_example_flat` }))));
  // Reduce* take axes as an input from opset 18, Unsqueeze from opset 13.
  const squares = flat.flat().map((f) => (opset >= 18 ? b.op1('ReduceSumSquare', [f, b.int64s('axes', [1])], { keepdims: 0 }) : b.op1('ReduceSumSquare', [f], { axes: [1], keepdims: 0 })));
  for (const gh of ghosts) if (gh) squares.push(outerProductSquaredNorms(b, gh, opset));
  const total = squares.length === 1 ? squares[0]! : b.op1('Sum', squares);
  const norms = b.op1('Sqrt', [total], {}, { name: 'dp_norms' });
  if (mode === 'per-example') {
    return { norms, perParam: params.map((p) => ({ name: p.name, output: p.gradient })) };
  }
  const clipInput = b.graph.uniqueName('dp_clip_norm');
  const factor = b.op1('Min', [b.op1('Div', [clipInput, b.op1('Add', [norms, b.scalar('dp_eps', CLIP_EPSILON)])]), b.scalar('dp_one', 1)]);
  const row = opset >= 13 ? b.op1('Unsqueeze', [factor, b.int64s('axes', [0])]) : b.op1('Unsqueeze', [factor], { axes: [0] });
  const perParam = params.map((p, i) => {
    const gh = ghosts[i];
    if (gh) return { name: p.name, output: b.op1('Reshape', [outerProductWeightedSum(b, gh, factor, opset), b.int64s('shape', p.shape)], {}, { name: `${p.name}_clipped_sum` }) };
    const src = sources[i]!;
    const sums = flat[i]!.map((f) => b.op1('MatMul', [row, f]));
    let summed: string;
    if (src.concatAxis === undefined) summed = sums[0]!;
    else {
      // Each part's sum in the part's own layout with batch 1, then the Concat replayed.
      const rest = (part: string) => b.op1('Slice', [b.op1('Shape', [part]), b.int64s('starts', [1]), b.int64s('ends', [2 ** 62])]);
      const asRow = (sum: string, part: string) => b.op1('Reshape', [sum, b.op1('Concat', [b.int64s('one', [1]), rest(part)], { axis: 0 })]);
      summed = b.op1('Concat', sums.map((sum, k) => asRow(sum, src.parts[k]!)), { axis: src.concatAxis });
    }
    for (const node of src.chain) {
      if (node.opType === 'Reshape') summed = b.op1('Reshape', [summed, node.inputs[1]!]);
      else if (node.opType === 'Transpose') summed = b.op1('Transpose', [summed], { perm: node.getInts('perm')! });
    }
    const output = b.op1('Reshape', [summed, b.int64s('shape', p.shape)], {}, { name: `${p.name}_clipped_sum` });
    return { name: p.name, output };
  });
  return { clipInput, norms, perParam };
}

/**
 * How a per-example gradient is assembled at its end: `chain`, layout ops that keep the batch
 * axis leading (Identity, Transpose with perm[0] = 0, Reshape to a constant [0, ...]), in
 * forward order, applied to the Concat (along an axis > 0) of `parts` or to the single part.
 * Replayed on [1, ...] rows it assembles the summed gradient (a leading 0 copies the 1); without
 * a Concat the chain starts at a Reshape, which takes the [1, D] row to the part's layout.
 */
function perExampleParts(g: Model['graph'], grad: string): { parts: string[]; concatAxis?: number; chain: Node[] } {
  const chain: Node[] = [];
  let v = grad;
  for (let p = g.producer(v); p && p.isStandard; p = g.producer(v)) {
    const keepsBatch = p.opType === 'Identity'
      || (p.opType === 'Transpose' && p.getInts('perm')?.[0] === 0)
      || (p.opType === 'Reshape' && p.getInt('allowzero', 0) === 0 && leadingDim(g, p.inputs[1]) === 0);
    if (!keepsBatch) break;
    chain.unshift(p);
    v = p.inputs[0]!;
  }
  const cat = g.producer(v);
  if (cat?.opType === 'Concat' && cat.isStandard && cat.getInt('axis', 0) > 0 && cat.inputs.length > 1 && cat.inputs.every(Boolean)) {
    return { parts: [...cat.inputs], concatAxis: cat.getInt('axis', 0), chain };
  }
  while (chain.length > 0 && chain[0]!.opType !== 'Reshape') v = chain.shift()!.outputs[0]!;
  return { parts: [v], chain };
}

/** The first entry of a constant int64 shape tensor, or undefined. */
function leadingDim(g: Model['graph'], value: string | undefined): number | undefined {
  const t = value ? g.initializers.get(value) : undefined;
  if (!t || dtypeName(t.dataType) !== 'int64') return undefined;
  const first = tensorToArray(t)[0];
  return first === undefined ? undefined : Number(first);
}

function identity(input: string, output: string): Node {
  return new Node({ opType: 'Identity', inputs: [input], outputs: [output] });
}

/** The initializers the autodiff pass is asked to differentiate. */
function chooseCandidates(m: Model, opts: TrainingGraphOptions, runningStats: Set<string>): string[] {
  const g = m.graph;
  const frozen = (opts.freeze ?? []).map(globToRegExp);
  const isFrozen = (name: string) => frozen.some((r) => r.test(name));
  const isFloat = (name: string) => {
    const t = g.initializers.get(name);
    return t !== undefined && isFloatDType(dtypeName(t.dataType));
  };
  if (opts.trainable) {
    for (const name of opts.trainable) {
      if (!g.initializers.has(name)) throw new RpOnnxError(`trainable names '${name}', which is not an initializer of the model`, { param: 'trainable' });
      if (!isFloat(name)) throw new RpOnnxError(`trainable names '${name}', which is not a floating-point tensor`, { param: 'trainable' });
    }
    return opts.trainable.filter((n) => !isFrozen(n));
  }
  const out: string[] = [];
  for (const [name, t] of g.initializers) {
    if (!isFloat(name) || runningStats.has(name) || isFrozen(name)) continue;
    if (tensorDims(t).length === 0) continue; // scalar constants (eps, noise scales) are not weights
    const uses = g.consumers(name).flatMap((n) => n.inputs.map((v, i) => (v === name ? (NON_PARAMETER_SLOTS[n.opType] ?? []).includes(i) : null)).filter((x) => x !== null));
    if (uses.length > 0 && uses.every((nonParam) => nonParam)) continue;
    out.push(name);
  }
  return out;
}

/**
 * BatchNormalization with batch statistics. From opset 14 the node itself runs in training
 * mode with momentum 0, so its two extra outputs are exactly the batch mean and biased
 * variance (onnxruntime's fused kernel); before, the statistics are computed with ReduceMean and
 * fed to an inference BatchNormalization. Returns the running-statistic updates.
 */
function prepareTrainingBatchNorm(m: Model, b: GraphBuilder, opset: number, rankOf: (v: string) => number | undefined): BatchNormStat[] {
  const g = m.graph;
  const stats: BatchNormStat[] = [];
  const seen = new Set<string>();
  for (const node of [...g.nodes]) {
    if (node.opType !== 'BatchNormalization' || !node.isStandard) continue;
    const [x, , , runMean, runVar] = node.inputs as [string, string, string, string, string];
    const momentum = node.getFloat('momentum', 0.9);
    const rank = rankOf(x);
    if (rank === undefined) throw new RpOnnxError(`the rank of BatchNormalization input '${x}' is unknown; export the model with static ranks`);
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    let mean: string;
    let variance: string;
    if (opset >= 14) {
      for (const i of [1, 2]) {
        const old = node.outputs[i];
        if (old && (g.consumers(old).length > 0 || g.isGraphOutput(old))) {
          throw new RpOnnxError(`BatchNormalization node '${node.name}' exposes its running statistics as '${old}', which the model uses; export the model in eval mode`);
        }
      }
      mean = g.uniqueName(`${node.outputs[0]}_batch_mean`);
      variance = g.uniqueName(`${node.outputs[0]}_batch_var`);
      node.outputs = [node.outputs[0]!, mean, variance];
      // With momentum 0 the node's own running-statistics inputs do not matter, and onnxruntime
      // may write its outputs into their buffers in place (seen with 1.30: the running stats
      // read later by the update below were overwritten). So the node gets zeros of its own.
      const scratch = (v: string) => b.op1('Mul', [v, b.scalar('zero', 0)]);
      node.inputs = [...node.inputs.slice(0, 3), scratch(runMean), scratch(runVar)];
      node.setAttr('training_mode', 1);
      node.setAttr('momentum', 0, 'float');
    } else {
      const reduceMean = (v: string) => b.op1('ReduceMean', [v], { axes, keepdims: 1 });
      const mean4 = reduceMean(x);
      const xc = b.op1('Sub', [x, mean4]);
      const var4 = reduceMean(b.op1('Mul', [xc, xc]));
      const flat = b.int64s('flat', [-1]);
      mean = b.op1('Reshape', [mean4, flat]);
      variance = b.op1('Reshape', [var4, flat]);
      node.inputs = [...node.inputs.slice(0, 3), mean, variance];
      node.outputs = [node.outputs[0]!];
    }
    if (!g.initializers.has(runMean) || !g.initializers.has(runVar) || seen.has(runMean) || seen.has(runVar)) continue;
    seen.add(runMean);
    seen.add(runVar);
    // count = N*H*W values per channel; PyTorch's running_var uses the unbiased variance.
    const count = b.op1('Cast', [b.op1('Div', [b.op1('Size', [x]), b.op1('Size', [runMean])])], { to: 1 });
    const denom = b.op1('Max', [b.op1('Sub', [count, b.scalar('one', 1)]), b.scalar('one', 1)]);
    const unbiased = b.op1('Div', [b.op1('Mul', [variance, count]), denom]);
    const blend = (running: string, batch: string, suffix: string) =>
      b.op1('Add', [b.op1('Mul', [running, b.scalar('momentum', momentum)]), b.op1('Mul', [batch, b.scalar('one_minus_momentum', 1 - momentum)])], {}, { name: `${running}_${suffix}` });
    stats.push({ running: runMean, updated: blend(runMean, mean, 'update') });
    stats.push({ running: runVar, updated: blend(runVar, unbiased, 'update') });
  }
  return stats;
}

/** Inference semantics for every BatchNormalization: drop training_mode and its extra outputs. */
function prepareFrozenBatchNorm(m: Model): BatchNormStat[] {
  const g = m.graph;
  for (const node of g.nodes) {
    if (node.opType !== 'BatchNormalization' || !node.isStandard) continue;
    node.removeAttr('training_mode');
    const extra = node.outputs.slice(1).filter((o) => o && (g.consumers(o).length > 0 || g.isGraphOutput(o)));
    if (extra.length > 0) throw new RpOnnxError(`BatchNormalization node '${node.name}' exposes its running statistics as '${extra[0]}', which the model uses; export the model in eval mode`);
    node.outputs = [node.outputs[0]!];
  }
  return [];
}
