/**
 * Runtime pass: turn the Gaussian random ops of a graph into graph inputs, so rp-onnx's runtime
 * can feed noise from its own generator (src/runtime/ziggurat.ts) instead of onnxruntime's
 * RandomNormalLike kernel, which costs about 6 ns per value on one thread and dominated the
 * latency of perturbed models.
 *
 * A node is externalized when its output is float32 and its shape is known in terms of the
 * graph's real inputs: every dimension a number or a dim_param of some input axis (resolved from
 * the feeds at run time). Others stay in the graph (the runtime seeds them instead). The pass
 * never changes the file a user gets: it runs on the private copy a session is created from.
 *
 * A wrong inferred shape must never let one noise value broadcast over many elements, so for
 * every RandomNormalLike the pass also outputs Shape(like) (`check`, a few int64s): the runtime
 * compares it with the shape it fed after each run and fails the run instead of returning
 * outputs computed with misshapen noise. (A Reshape of the fed tensor to Shape(like) would do it
 * in the graph, but onnxruntime copies a graph input through Reshape: 1-3% of the latency.)
 */
import { Graph, Node, makeTensorTypeProto, type Dim } from '../graph/ir.js';
import { inferShapes } from '../graph/shape-inference.js';
import { dtypeName, elementCount, tensorDims, tensorToFloat32 } from '../graph/tensor.js';

/** One noise tensor the runtime must feed: N(mean, scale^2) of `shape` under the name `input`. */
export interface ExternalNoise {
  input: string;
  /** Numbers, or dim_params of real graph inputs (see `symbols`). */
  shape: (number | string)[];
  mean: number;
  scale: number;
  /** Graph output holding the run-time shape the noise must have (RandomNormalLike only). */
  check?: string;
}

/** Where a dim_param can be read from the feeds: input name and axis. */
export type DimSymbols = Map<string, { input: string; axis: number }>;

export interface ExternalizedNoise {
  noise: ExternalNoise[];
  symbols: DimSymbols;
}

const GAUSSIAN_OPS: ReadonlySet<string> = new Set(['RandomNormalLike', 'RandomNormal']);
const FLOAT32 = 1;

/** Dim params of the graph's real inputs, first occurrence wins. */
function inputSymbols(graph: Graph): DimSymbols {
  const symbols: DimSymbols = new Map();
  for (const vi of graph.realInputs()) {
    const dims = vi.type?.tensorType?.shape?.dim ?? [];
    dims.forEach((d, axis) => {
      if (d.dimParam && !symbols.has(d.dimParam)) symbols.set(d.dimParam, { input: vi.name, axis });
    });
  }
  return symbols;
}

/**
 * Replaces every externalizable Gaussian random op of `graph` (top level) by a graph input of the
 * same name as its output; returns what must be fed. Mutates `graph`.
 */
export function externalizeNoise(graph: Graph, opset: number): ExternalizedNoise {
  const symbols = inputSymbols(graph);
  const candidates = graph.nodes.filter((n) => n.isStandard && GAUSSIAN_OPS.has(n.opType) && n.outputs.length === 1);
  if (candidates.length === 0) return { noise: [], symbols };
  const types = inferShapes(graph, { opset, record: false });
  const noise: ExternalNoise[] = [];
  for (const node of candidates) {
    let shape: Dim[] | null;
    let dtype: number;
    if (node.opType === 'RandomNormal') {
      shape = node.getInts('shape') ?? null;
      dtype = node.getInt('dtype', FLOAT32)!;
    } else {
      const like = types.get(node.inputs[0] ?? '');
      shape = like?.shape ?? null;
      dtype = node.getInt('dtype') ?? (like && like.dtype === 'float32' ? FLOAT32 : -1);
    }
    if (dtype !== FLOAT32 || shape === null) continue;
    const resolvable = shape.every((d) => (typeof d === 'number' && d >= 0) || (typeof d === 'string' && symbols.has(d)));
    if (!resolvable) continue;
    const input = node.outputs[0]!;
    const at = graph.nodes.indexOf(node);
    graph.removeNode(node);
    let check: string | undefined;
    if (node.opType === 'RandomNormalLike') {
      check = graph.uniqueName(`${input}/shape_check`);
      graph.addNode(new Node({ opType: 'Shape', inputs: [node.inputs[0]!], outputs: [check], name: graph.uniqueName(`${input}/shape_of_like`) }), at);
      graph.outputs.push({ name: check, type: makeTensorTypeProto({ dtype: 'int64', shape: [shape.length] }) });
    }
    graph.inputs.push({ name: input, type: makeTensorTypeProto({ dtype: dtypeName(FLOAT32), shape }) });
    noise.push({ input, shape: shape as (number | string)[], mean: node.getFloat('mean', 0)!, scale: node.getFloat('scale', 1)!, ...(check ? { check } : {}) });
  }
  return { noise, symbols };
}

/**
 * Runtime pass after `externalizeNoise`, on the session's private copy: a fed noise multiplied
 * by a scalar constant (Strategy I absolute: `n * gamma`) is fed already scaled, since
 * N(mean, scale^2) * c is N(c mean, (c scale)^2): the Mul and its full pass over the tensor go
 * (the scale is applied in double before rounding to float32, as the generator applies any
 * scale). gamma 0 feeds exact zeros, as before. Mutates `graph` and the `noise` entries.
 *
 * (Measured and not kept: reassociating `Add(Add(F, skip), n)` so that onnxruntime would fuse the
 * Add and the ReLU into a convolution, as in the unperturbed model; onnxruntime fused nothing
 * more, since the branch's conv output is also read by the noise's shape check. bench/README.md.)
 */
export function simplifyNoiseTerms(graph: Graph, noise: ExternalNoise[]): void {
  for (const spec of noise) {
    const term = spec.input;
    const [mul, ...more] = graph.consumers(term);
    if (!mul || more.length > 0 || mul.opType !== 'Mul' || mul.inputs.length !== 2 || graph.isGraphOutput(mul.outputs[0]!)) continue;
    if (mul.inputs[0] === mul.inputs[1]) continue;
    const c = scalarConstant(graph, mul.inputs[0] === term ? mul.inputs[1]! : mul.inputs[0]!);
    if (c === null) continue;
    spec.mean *= c;
    spec.scale *= c;
    graph.replaceAllUses(mul.outputs[0]!, term);
    graph.removeNode(mul);
  }
}

/** The value of a one-element float32 initializer, or null. */
function scalarConstant(graph: Graph, name: string): number | null {
  const t = graph.initializers.get(name);
  if (!t || t.dataType !== FLOAT32 || elementCount(tensorDims(t)) !== 1) return null;
  const v = tensorToFloat32(t)[0];
  return v === undefined || !Number.isFinite(v) ? null : v;
}
