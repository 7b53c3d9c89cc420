/**
 * What each value of a graph is made of, for passes that reason about structure rather than
 * names:
 * - data: computed from the values of a real graph input. Shape/Size read only metadata and
 *   ConstantOfShape/EyeLike/Random*Like only an input's shape, so their outputs are not data:
 *   shape arithmetic, position indices built with Range(Shape(x)) and noise are not.
 * - static: computed from initializers and Constant nodes alone (weights, folded constants).
 * - weight-like: static, or a graph input read through layout/cast/dequantize ops (training
 *   graphs and `keep_initializers_as_inputs` exports feed weights as inputs).
 * Also a topological position for every node, without reordering the graph.
 */
import type { Graph, Node, TensorType } from './ir.js';
import { implicitInputs } from './ir.js';
import type { TensorProto } from './onnx.js';
import { isFloatDType, tensorToFloat32 } from './tensor.js';

/** Ops whose outputs depend on their inputs' shapes only, never on their values. */
const SHAPE_ONLY_OPS = new Set(['Shape', 'Size', 'ConstantOfShape', 'EyeLike', 'RandomNormalLike', 'RandomUniformLike']);
/** Ops whose outputs are random: neither data nor static. */
const RANDOM_OPS = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'Multinomial']);
/** Ops that only re-lay-out, convert or dequantize a tensor: a weight read through them is still a weight. */
const WEIGHT_VIEW_OPS = new Set(['Identity', 'Transpose', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Cast', 'CastLike', 'DequantizeLinear', 'Expand']);

export class Dataflow {
  /** Nodes in a topological order (the graph's own order when it already is one). */
  readonly order: readonly Node[];
  private readonly pos = new Map<Node, number>();
  private readonly captured = new Map<Node, string[]>();
  private readonly data = new Set<string>();
  private readonly statics = new Set<string>();
  private readonly realInputs: Set<string>;

  /**
   * `types` (e.g. from inferShapes) take precedence over the graph's declared value types.
   */
  constructor(readonly graph: Graph, private readonly types?: ReadonlyMap<string, TensorType>) {
    this.order = topologicalOrder(graph);
    this.order.forEach((n, i) => this.pos.set(n, i));
    this.realInputs = new Set(graph.realInputs().map((v) => v.name));
    for (const v of this.realInputs) this.data.add(v);
    for (const k of graph.initializers.keys()) this.statics.add(k);
    for (const n of this.order) {
      const implicit = implicitInputs(n);
      if (implicit.length > 0) this.captured.set(n, implicit);
      const ins = [...n.inputs.filter((i) => i !== ''), ...implicit];
      const isData = !SHAPE_ONLY_OPS.has(n.opType) && !RANDOM_OPS.has(n.opType) && ins.some((i) => this.data.has(i));
      const isStatic = !RANDOM_OPS.has(n.opType) && (n.opType === 'Constant' || (ins.length > 0 && ins.every((i) => this.statics.has(i))));
      for (const o of n.outputs) {
        if (!o) continue;
        if (isData) this.data.add(o);
        if (isStatic) this.statics.add(o);
      }
    }
  }

  /** Outer-scope values a node's subgraphs read (cached implicitInputs). */
  capturedInputs(node: Node): readonly string[] {
    return this.captured.get(node) ?? [];
  }

  /** Topological position of a node; -1 for nodes not in the graph. */
  position(node: Node): number {
    return this.pos.get(node) ?? -1;
  }
  /** Position of a value's producer; -1 for graph inputs and initializers. */
  positionOf(value: string): number {
    const p = this.graph.producer(value);
    return p ? this.position(p) : -1;
  }

  isData(value: string): boolean {
    return this.data.has(value);
  }
  isStatic(value: string): boolean {
    return this.statics.has(value);
  }
  /** A parameter: static, or a graph input, possibly through layout/cast/dequantize ops. */
  isWeightLike(value: string): boolean {
    for (let v = value, depth = 0; depth < 8; depth++) {
      if (this.statics.has(v) || (this.realInputs.has(v) && !this.graph.producer(v))) return true;
      const p = this.graph.producer(v);
      if (!p || !WEIGHT_VIEW_OPS.has(p.opType) || !p.inputs[0]) return false;
      v = p.inputs[0];
    }
    return false;
  }

  /** The constant tensor behind a static value (initializer or Constant node), if it is one directly. */
  constantTensor(value: string): TensorProto | undefined {
    const init = this.graph.initializers.get(value);
    if (init) return init;
    const p = this.graph.producer(value);
    if (p?.opType === 'Constant') return p.getTensor('value');
    return undefined;
  }

  /** True when a value is a constant whose every element is zero. */
  isZeroConstant(value: string): boolean {
    const t = this.constantTensor(value);
    if (!t) return false;
    try {
      return tensorToFloat32(t).every((x) => x === 0);
    } catch {
      return false;
    }
  }

  typeOf(value: string): TensorType | null {
    return this.types?.get(value) ?? this.graph.typeOf(value);
  }
}

/** True when the dtype is known and is not a floating-point type. */
export function isKnownNonFloat(t: TensorType | null): boolean {
  return t !== null && t.dtype !== 'undefined' && !isFloatDType(t.dtype);
}

/**
 * The graph's nodes in topological order. ONNX requires graphs to be sorted, so the file order
 * is kept when valid; otherwise Kahn's algorithm, visiting ready nodes in file order.
 */
export function topologicalOrder(graph: Graph): Node[] {
  const produced = new Set<string>();
  for (const n of graph.nodes) for (const o of n.outputs) if (o) produced.add(o);
  const defined = new Set<string>();
  const deps = (n: Node) => [...n.inputs, ...implicitInputs(n)].filter((i) => i !== '' && produced.has(i));
  let sorted = true;
  for (const n of graph.nodes) {
    if (!deps(n).every((i) => defined.has(i))) {
      sorted = false;
      break;
    }
    for (const o of n.outputs) defined.add(o);
  }
  if (sorted) return [...graph.nodes];

  const waiting = new Map<Node, number>();
  const ready: Node[] = [];
  for (const n of graph.nodes) {
    const count = new Set(deps(n)).size;
    waiting.set(n, count);
    if (count === 0) ready.push(n);
  }
  const out: Node[] = [];
  const done = new Set<string>();
  while (ready.length > 0) {
    const n = ready.shift()!;
    out.push(n);
    for (const o of n.outputs) {
      if (!o || done.has(o)) continue;
      done.add(o);
      for (const c of new Set(graph.consumers(o))) {
        const left = (waiting.get(c) ?? 0) - 1;
        waiting.set(c, left);
        if (left === 0) ready.push(c);
      }
    }
  }
  // Nodes on a cycle never become ready; keep them at the end rather than dropping them.
  const placed = new Set(out);
  for (const n of graph.nodes) if (!placed.has(n)) out.push(n);
  return out;
}
