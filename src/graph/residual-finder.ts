/**
 * Finds residual connections x_{l+1} = skip(x_l) + F(x_l) in an ONNX graph, by structure alone
 * (no names, no exporter-specific patterns), so models from any exporter work.
 *
 * An Add (or a two-input Sum) is a residual connection when there is one tensor x such that
 * - one operand, the skip, is x itself or a short projection of it: a walk back from the operand
 *   through at most MAX_SKIP_STEPS skip-path ops (SKIP_RULES: 1x1 Conv / Gemm / MatMul with a
 *   weight, BatchNormalization, pooling, Pad/Slice, Concat with zeros, bias/scale by constants,
 *   Transpose, Identity, Q/DQ) with at most one parametric projection among them;
 * - the other operand, the branch, is computed from x along a path that passes through a
 *   parametric op (PARAMETRIC_RULES: Conv, Gemm, MatMul, Einsum, ... with a weight operand)
 *   and does not run through the skip path.
 * x is the nearest such tensor: candidates are tried in order of distance from the skip operand.
 * The path from x may cross an earlier residual connection only along that block's trunk (its
 * skip or block input reached from x): a tensor that merely feeds into another block's branch,
 * like an attention mask or a DETR-style positional code reused by every layer, is not the
 * trunk of the later blocks that depend on it.
 *
 * What this rules out, and why:
 * - bias adds, LayerNorm's `var + eps` / `* gamma + beta`, learned positional embeddings: one
 *   operand is not data (it is static, or built from Shape/Range like position indices);
 * - attention-mask adds: the mask derives from another input (or nothing), not from the scores'
 *   source through the allowed skip ops, and its shape broadcasts;
 * - Gelu/erf arithmetic such as h + 0.044715 h^3: no parametric op between h and the operand;
 * - arithmetic on a projection's output, like LayerNorm centring y + Neg(mean(y)) with
 *   y = Linear(h): the other operand reaches h only through y, the would-be skip;
 * - shape arithmetic: int64 values derived from Shape are not data (and not float);
 * - broadcasting adds: when both operand shapes are known they must agree dimension by dimension.
 */
import { Graph, type Dim, type Node, type TensorType } from './ir.js';
import { Dataflow, isKnownNonFloat } from './dataflow.js';
import { inferShapes, DEFAULT_OPSET } from './shape-inference.js';

export interface ResidualBlock {
  /** 0-based, in topological order of the Add nodes. */
  index: number;
  /** Name of the Add/Sum node (its output tensor name when the node is unnamed). */
  add: string;
  /** The Add's output tensor. */
  output: string;
  /** The tensor x both operands derive from. */
  blockInput: string;
  /** The operand tensor that is F(x). */
  branch: string;
  /** The operand tensor that is the skip (x itself or its projection). */
  skip: string;
  skipKind: 'identity' | 'projection';
  /** Op types on the branch from x to the Add, in topological order. */
  branchOps: string[];
  /** Shape of the Add output if known. */
  shape: (number | string | null)[] | null;
}

/** At most this many ops between x and the skip operand. */
const MAX_SKIP_STEPS = 8;
/** Ops with learned weights: a statistic never passes through one. */
const PARAMETRIC_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Einsum', 'ConvInteger', 'MatMulInteger', 'QLinearConv', 'QLinearMatMul', 'FusedConv', 'FusedMatMul', 'FusedGemm', 'LSTM', 'GRU', 'RNN', 'Attention', 'MultiHeadAttention']);
/** At most this many weighted projections (1x1 Conv, Gemm, MatMul) on the skip path. */
const MAX_SKIP_PROJECTIONS = 1;

// ------------------------------------------------------------------ skip-path rules

/**
 * How a skip-path op relates its output to the tensor it reads: 'passthrough' keeps the values
 * (Identity, Dropout, float Cast), 'layout' only permutes them (Transpose), 'projection'
 * transforms them; `weighted` marks a learned linear map (counted against MAX_SKIP_PROJECTIONS).
 */
interface SkipStep {
  from: string;
  kind: 'passthrough' | 'layout' | 'projection';
  weighted?: boolean;
}
/** Returns the steps back through `node`, or null when the op cannot be on a skip path. */
type SkipRule = (node: Node, flow: Dataflow) => SkipStep[] | null;

const SKIP_RULES = new Map<string, SkipRule>();
function registerSkipRule(ops: string[], rule: SkipRule): void {
  for (const op of ops) SKIP_RULES.set(op, rule);
}

const first = (kind: SkipStep['kind']): SkipRule => (node) => (node.inputs[0] ? [{ from: node.inputs[0], kind }] : null);

// QuantizeLinear/DequantizeLinear: QDQ-quantized models wrap every tensor in a Q -> DQ pair.
registerSkipRule(['Identity', 'Dropout', 'QuantizeLinear', 'DequantizeLinear'], first('passthrough'));
registerSkipRule(['Transpose'], first('layout'));
registerSkipRule(['Cast'], (node, flow) => {
  // Only float -> float: a Cast from bool/int is how masks enter the graph, never a skip.
  const from = flow.typeOf(node.inputs[0] ?? '');
  const to = flow.typeOf(node.outputs[0] ?? '');
  return isKnownNonFloat(from) || isKnownNonFloat(to) ? null : first('passthrough')(node, flow);
});
// Normalization and resampling of the skip (ResNet projection BN, ResNet-D pooling, option-A
// CIFAR shortcuts that subsample with a strided Slice and zero-pad channels).
registerSkipRule(['BatchNormalization', 'AveragePool', 'MaxPool', 'LpPool', 'Pad', 'Slice'], first('projection'));

registerSkipRule(['Conv'], (node, flow) => {
  const w = node.inputs[1];
  if (!node.inputs[0] || !w || !flow.isWeightLike(w)) return null;
  // A projection shortcut is a 1x1 convolution; a larger kernel is a branch of its own.
  const kernel = node.getInts('kernel_shape') ?? flow.typeOf(w)?.shape?.slice(2);
  if (!kernel || kernel.length === 0 || !kernel.every((k) => k === 1)) return null;
  return [{ from: node.inputs[0], kind: 'projection', weighted: true }];
});

/** Gemm/MatMul: a weighted projection of whichever operand is not the weight. */
const linearProjection: SkipRule = (node, flow) => {
  const [a, b] = node.inputs;
  if (!a || !b || (node.inputs[2] && flow.isData(node.inputs[2]))) return null;
  if (flow.isWeightLike(b) && flow.isData(a)) return [{ from: a, kind: 'projection', weighted: true }];
  if (flow.isWeightLike(a) && flow.isData(b)) return [{ from: b, kind: 'projection', weighted: true }];
  return null;
};
registerSkipRule(['Gemm', 'MatMul'], linearProjection);

/** Elementwise with a constant: bias (Add, x - c), scale (Mul, x / c), e.g. BN folded to Mul+Add. */
const affineWithConstant = (constantSlots: number[]): SkipRule => (node, flow) => {
  const [a, b] = node.inputs;
  if (!a || !b || node.inputs.length !== 2) return null;
  for (const slot of constantSlots) {
    const c = node.inputs[slot]!;
    const x = node.inputs[1 - slot]!;
    // Multiplying by zero does not carry x: that is a zero-fill, not a skip.
    if (flow.isStatic(c) && !(node.opType === 'Mul' && flow.isZeroConstant(c))) return [{ from: x, kind: 'projection' }];
  }
  return null;
};
/** Ops through which a per-example statistic (mean, variance) of a tensor is computed. */
const REDUCTIONS = new Set(['ReduceMean', 'ReduceSum', 'ReduceSumSquare', 'ReduceL2', 'ReduceMax', 'ReduceMin', 'GlobalAveragePool']);
const STATISTIC_STEPS = 10;

/**
 * Whether `stat` is a statistic of `x`: computed from x alone through at most STATISTIC_STEPS
 * non-parametric ops, at least one of them a reduction (mean, variance, norm). This is what
 * normalizations decompose into: (x - mean(x)) / sqrt(var(x) + eps), x * rsqrt(mean(x^2)).
 */
function isStatisticOf(stat: string, x: string, flow: Dataflow): boolean {
  let reduced = false;
  let reached = false;
  const seen = new Set<string>();
  const stack = [stat];
  let steps = 0;
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (v === x) { reached = true; continue; }
    if (seen.has(v) || !flow.isData(v)) continue;
    seen.add(v);
    const p = flow.graph.producer(v);
    if (!p || ++steps > STATISTIC_STEPS || PARAMETRIC_OPS.has(p.opType)) return false;
    if (REDUCTIONS.has(p.opType)) reduced = true;
    for (const i of p.inputs) if (i) stack.push(i);
  }
  return reached && reduced;
}

/**
 * Elementwise with a constant (bias, scale; BN folded to Mul+Add), or with a statistic of the
 * other operand (the centring and scaling steps of a decomposed GroupNorm/LayerNorm/RMSNorm).
 */
const affineOrNormalizing = (constantSlots: number[]): SkipRule => (node, flow) => {
  const viaConstant = affineWithConstant(constantSlots)(node, flow);
  if (viaConstant) return viaConstant;
  const [a, b] = node.inputs;
  if (!a || !b || node.inputs.length !== 2 || !flow.isData(a) || !flow.isData(b)) return null;
  if (isStatisticOf(b, a, flow)) return [{ from: a, kind: 'projection' }];
  if (node.opType === 'Mul' && isStatisticOf(a, b, flow)) return [{ from: b, kind: 'projection' }];
  return null;
};
registerSkipRule(['Add', 'Mul'], affineOrNormalizing([0, 1]));
registerSkipRule(['Sub', 'Div'], affineOrNormalizing([1]));
// Normalization ops of the skip (a GroupNorm/LayerNorm shortcut, as BatchNormalization above),
// and the reshapes around grouped statistics.
registerSkipRule(['InstanceNormalization', 'GroupNormalization', 'LayerNormalization', 'MeanVarianceNormalization', 'LpNormalization'], first('projection'));
registerSkipRule(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze'], first('layout'));

/**
 * Concat: option-A shortcuts append zero channels, either constants or x * 0. Every input but
 * one must be such a zero-fill; the walk follows the one that carries x.
 */
registerSkipRule(['Concat'], (node, flow) => {
  const carriers = node.inputs.filter((v) => v && flow.isData(v) && !isZeroFill(v, flow));
  return carriers.length === 1 ? [{ from: carriers[0]!, kind: 'projection' }] : null;
});

function isZeroFill(value: string, flow: Dataflow): boolean {
  const p = flow.graph.producer(value);
  if (!p) return false;
  if (p.opType === 'Mul') return p.inputs.some((v) => flow.isZeroConstant(v));
  if (p.opType === 'Identity' || p.opType === 'Cast') return isZeroFill(p.inputs[0] ?? '', flow);
  return false;
}

// ------------------------------------------------------------------ parametric ops

/**
 * Whether `node` applies a learned map to the value(s) at `dataSlots` (the inputs that carry x):
 * one of its other inputs in a weight position is weight-like. A product of two activations
 * (Q K^T, attention @ V) is not parametric.
 */
type ParametricRule = (node: Node, dataSlots: Set<number>, flow: Dataflow) => boolean;

const PARAMETRIC_RULES = new Map<string, ParametricRule>();
function registerParametricRule(ops: string[], rule: ParametricRule): void {
  for (const op of ops) PARAMETRIC_RULES.set(op, rule);
}
const weightAt = (dataSlot: number, weightSlot: number): ParametricRule => (node, slots, flow) =>
  slots.has(dataSlot) && !!node.inputs[weightSlot] && flow.isWeightLike(node.inputs[weightSlot]!);
const eitherOperand: ParametricRule = (node, slots, flow) =>
  weightAt(0, 1)(node, slots, flow) || weightAt(1, 0)(node, slots, flow);

registerParametricRule(['Conv', 'ConvTranspose', 'ConvInteger', 'FusedConv', 'DeformConv', 'LSTM', 'GRU', 'RNN', 'Attention', 'MultiHeadAttention'], weightAt(0, 1));
registerParametricRule(['QLinearConv'], weightAt(0, 3));
registerParametricRule(['Gemm', 'MatMul', 'MatMulInteger', 'FusedMatMul', 'FusedGemm'], eitherOperand);
registerParametricRule(['QLinearMatMul'], (node, slots, flow) => weightAt(0, 3)(node, slots, flow) || weightAt(3, 0)(node, slots, flow));
registerParametricRule(['Einsum'], (node, slots, flow) =>
  node.inputs.some((v, i) => !slots.has(i) && v !== '' && flow.isWeightLike(v)) && slots.size > 0);

// ------------------------------------------------------------------ the finder

interface SkipCandidate {
  value: string;
  steps: number;
  weighted: number;
  /** Only passthrough/layout steps so far: x itself. */
  identity: boolean;
  /** The values from the skip operand back to (not including) this candidate: the skip path. */
  path: string[];
}

/** x candidates for a skip operand, nearest first: the operand, then back along skip-path ops. */
function skipCandidates(skip: string, flow: Dataflow): SkipCandidate[] {
  const out: SkipCandidate[] = [];
  const seen = new Set<string>([skip]);
  const queue: SkipCandidate[] = [{ value: skip, steps: 0, weighted: 0, identity: true, path: [] }];
  while (queue.length > 0) {
    const c = queue.shift()!;
    out.push(c);
    if (c.steps >= MAX_SKIP_STEPS) continue;
    const p = flow.graph.producer(c.value);
    const rule = p && p.isStandard ? SKIP_RULES.get(p.opType) : undefined;
    const steps = p && rule ? rule(p, flow) : null;
    for (const s of steps ?? []) {
      const weighted = c.weighted + (s.weighted ? 1 : 0);
      if (seen.has(s.from) || !flow.isData(s.from) || weighted > MAX_SKIP_PROJECTIONS) continue;
      seen.add(s.from);
      queue.push({ value: s.from, steps: c.steps + 1, weighted, identity: c.identity && s.kind !== 'projection', path: [...c.path, c.value] });
    }
  }
  return out;
}

/**
 * Follows data edges forward from x up to (not including) the Add. Returns the nodes on paths
 * from x to `branch` when one of those paths passes through a parametric op, else null.
 * The branch must not run through the skip path itself: in Add(y, -mean(y)) with y = Linear(h)
 * the branch depends on h only through the "skip" y, which makes it arithmetic on y, not F(h).
 */
function traceBranch(x: SkipCandidate, branch: string, addPos: number, flow: Dataflow, earlier: Map<Node, Match>): Node[] | null {
  const start = flow.positionOf(x.value);
  if (branch === x.value || flow.positionOf(branch) <= start) return null;
  const skipPath = new Set(x.path);
  const reach = new Set<string>([x.value]);
  const parametric = new Set<string>();
  for (let i = start + 1; i < addPos; i++) {
    const n = flow.order[i]!;
    const slots = new Set<number>();
    n.inputs.forEach((v, k) => { if (reach.has(v)) slots.add(k); });
    const viaSubgraph = flow.capturedInputs(n).some((v) => reach.has(v));
    if (slots.size === 0 && !viaSubgraph) continue;
    const block = earlier.get(n);
    if (block && !reach.has(block.skip) && !reach.has(block.x.value)) continue;
    const rule = PARAMETRIC_RULES.get(n.opType);
    const isParam = (rule?.(n, slots, flow) ?? false) || [...slots].some((k) => parametric.has(n.inputs[k]!));
    for (const o of n.outputs) {
      if (!o || !flow.isData(o) || skipPath.has(o)) continue;
      reach.add(o);
      if (isParam) parametric.add(o);
    }
  }
  if (!parametric.has(branch)) return null;
  // The branch's ops: producers of reached values between x and the branch operand.
  const nodes = new Set<Node>();
  const stack = [branch];
  const visited = new Set<string>();
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (v === x.value || visited.has(v)) continue;
    visited.add(v);
    const p = flow.graph.producer(v);
    if (!p || !reach.has(v)) continue;
    nodes.add(p);
    for (const i of [...p.inputs, ...flow.capturedInputs(p)]) if (reach.has(i)) stack.push(i);
  }
  return [...nodes].sort((a, b) => flow.position(a) - flow.position(b));
}

/** False when both shapes are known and cannot be equal (a broadcasting add). */
function shapesAgree(a: TensorType | null, b: TensorType | null): boolean {
  const sa = a?.shape;
  const sb = b?.shape;
  if (!sa || !sb) return true;
  if (sa.length !== sb.length) return false;
  return sa.every((d, i) => dimsAgree(d, sb[i]!));
}
function dimsAgree(a: Dim, b: Dim): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  // A literal 1 facing a symbolic extent is how a broadcast operand looks.
  if ((a === 1 && typeof b === 'string') || (b === 1 && typeof a === 'string')) return false;
  return true;
}
function sameRank(a: TensorType | null, b: TensorType | null): boolean {
  return !a?.shape || !b?.shape || a.shape.length === b.shape.length;
}

interface Match {
  skip: string;
  branch: string;
  x: SkipCandidate;
  ops: Node[];
}

/** The residual reading of one Add/Sum node, or null when it is not a residual connection. */
function matchAdd(node: Node, flow: Dataflow, earlier: Map<Node, Match>): Match | null {
  if (!node.isStandard || node.inputs.length !== 2 || node.outputs.length !== 1) return null;
  if (node.opType !== 'Add' && node.opType !== 'Sum') return null;
  const [a, b] = node.inputs as [string, string];
  const out = node.outputs[0]!;
  if (!a || !b || a === b || !flow.isData(a) || !flow.isData(b)) return null;
  if ([a, b, out].some((v) => isKnownNonFloat(flow.typeOf(v)))) return null;
  if (!shapesAgree(flow.typeOf(a), flow.typeOf(b))) return null;

  const addPos = flow.position(node);
  const matches: Match[] = [];
  for (const [skip, branch] of [[a, b], [b, a]] as const) {
    for (const x of skipCandidates(skip, flow)) {
      const tx = flow.typeOf(x.value);
      if (x.value === branch || isKnownNonFloat(tx) || !sameRank(tx, flow.typeOf(out))) continue;
      const ops = traceBranch(x, branch, addPos, flow, earlier);
      if (ops) {
        matches.push({ skip, branch, x, ops });
        break;
      }
    }
  }
  // Both readings can hold only in unusual graphs; prefer an identity skip, then the nearer x.
  matches.sort((m, n) =>
    Number(n.x.identity) - Number(m.x.identity) || m.x.steps - n.x.steps || flow.positionOf(n.x.value) - flow.positionOf(m.x.value));
  return matches[0] ?? null;
}

function shapeOf(out: string, skip: string, branch: string, flow: Dataflow): Dim[] | null {
  const own = flow.typeOf(out)?.shape;
  if (own) return [...own];
  const s = flow.typeOf(skip)?.shape;
  const b = flow.typeOf(branch)?.shape;
  if (s && b && s.length === b.length && s.every((d, i) => d !== null && d === b[i])) return [...s];
  return null;
}

export interface FindResidualOptions {
  /** Default-domain opset of the model, for shape inference (Model.opset()). */
  opset?: number;
  /** Value types to use instead of running shape inference (e.g. an inferShapes result). */
  types?: ReadonlyMap<string, TensorType>;
}

/**
 * Every residual connection in the graph, in topological order of the Add nodes. Shapes come
 * from shape inference (run on a copy: the caller's graph is not touched) refined by declared
 * value types; they fill `shape` and reject broadcasting adds.
 */
export function findResidualBlocks(graph: Graph, opts: FindResidualOptions = {}): ResidualBlock[] {
  const flow = new Dataflow(graph, opts.types ?? inferTypesOnCopy(graph, opts.opset ?? DEFAULT_OPSET));
  const blocks: ResidualBlock[] = [];
  const found = new Map<Node, Match>();
  for (const node of flow.order) {
    const m = matchAdd(node, flow, found);
    if (!m) continue;
    found.set(node, m);
    const output = node.outputs[0]!;
    blocks.push({
      index: blocks.length,
      add: node.name || output,
      output,
      blockInput: m.x.value,
      branch: m.branch,
      skip: m.skip,
      skipKind: m.x.identity ? 'identity' : 'projection',
      branchOps: m.ops.map((n) => n.opType),
      shape: shapeOf(output, m.skip, m.branch, flow),
    });
  }
  return blocks;
}

/** inferShapes records types into the graph it is given; give it a copy sharing nodes and weights. */
function inferTypesOnCopy(graph: Graph, opset: number): Map<string, TensorType> {
  const copy = new Graph({
    name: graph.name,
    nodes: graph.nodes,
    inputs: graph.inputs.map((v) => ({ ...v })),
    outputs: graph.outputs.map((v) => ({ ...v })),
    initializers: graph.initializers,
    valueInfo: new Map(graph.valueInfo),
  });
  return inferShapes(copy, { opset });
}
