/**
 * Static shape inference: the dtype and shape (numbers, symbolic names such as 'N', or null
 * for unknown) of every value in a graph. Nodes are visited in topological order and each
 * op's rule (src/graph/shape-rules/*, one registered function per op) maps input types to
 * output types. Small integer tensors are folded along the way (value propagation), so the
 * Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains PyTorch exports resolve to static
 * shapes. Ops without a rule, or whose rule cannot decide, leave their outputs unknown:
 * inference never throws on a graph.
 */
import { implicitInputs, tensorTypeOf, type Dim, type Graph, type Model, type Node, type TensorType } from './ir.js';
import { dtypeName, tensorDims } from './tensor.js';
import { RpOnnxError } from '../errors.js';
import { shapeRule, type ShapeContext } from './shape-rules/registry.js';
import { MAX_FOLDED_ELEMENTS, isKnown, isWellFormedShape, mergeShapes } from './shape-rules/dims.js';
import { tensorValues } from './shape-rules/generators.js';
import './shape-rules/elementwise.js';
import './shape-rules/nn.js';
import './shape-rules/linalg.js';
import './shape-rules/layout.js';
import './shape-rules/reduce.js';
import './shape-rules/misc.js';

export { registerShapeRule, opsWithShapeRules, type ShapeContext, type ShapeRule } from './shape-rules/registry.js';
export { broadcastShapes } from './shape-rules/dims.js';

/** Opset assumed when the caller does not say (rules also accept the older attribute forms). */
export const DEFAULT_OPSET = 21;

export interface ShapeInferenceOptions {
  /** Default-domain opset of the model (see Model.opset()). */
  opset?: number;
  /** Shapes that replace the declared shapes of graph inputs, e.g. { input: [1, 3, 224, 224] }. */
  inputShapes?: Record<string, Dim[]>;
  /** Record the inferred types in the graph's value_info / untyped outputs (default true). */
  record?: boolean;
}

function safeTensorType(type: Parameters<typeof tensorTypeOf>[0]): TensorType | null {
  try {
    return tensorTypeOf(type);
  } catch {
    return null; // an element type this build does not know
  }
}

/** The inferred type refined by a declared one: inferred numbers win, declared fill the gaps. */
function refine(inferred: TensorType | null, declared: TensorType | undefined): TensorType | null {
  if (!inferred) return declared ? { dtype: declared.dtype, shape: declared.shape ? [...declared.shape] : null } : null;
  if (!declared) return inferred;
  return {
    dtype: inferred.dtype !== 'undefined' ? inferred.dtype : declared.dtype,
    shape: mergeShapes(inferred.shape, declared.shape),
  };
}

function sameType(a: TensorType, b: TensorType | undefined): boolean {
  if (!b || a.dtype !== b.dtype) return false;
  if (a.shape === null || b.shape === null) return a.shape === b.shape;
  return a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape![i]);
}

/** Nodes in an order where producers come first; the graph itself is not reordered. */
function topologicalOrder(graph: Graph): Node[] {
  const produced = new Set<string>();
  for (const n of graph.nodes) for (const o of n.outputs) if (o) produced.add(o);
  const available = new Set<string>();
  const ready = (n: Node) => [...n.inputs, ...implicitInputs(n)].every((i) => !i || available.has(i) || !produced.has(i));
  const order: Node[] = [];
  let pending = graph.nodes;
  while (pending.length > 0) {
    const later: Node[] = [];
    for (const n of pending) {
      if (ready(n)) {
        order.push(n);
        for (const o of n.outputs) available.add(o);
      } else later.push(n);
    }
    if (later.length === pending.length) {
      order.push(...later); // a cycle: visit the rest as written rather than fail
      break;
    }
    pending = later;
  }
  return order;
}

/**
 * Infers the type of every value of `graph` and records it with `graph.setType` unless
 * `record` is false (graph inputs and already typed graph outputs are left as declared;
 * existing value_info is only refined, never made less specific). Returns the types by value name; values nothing is
 * known about are absent.
 */
export function inferShapes(graph: Graph, opts: ShapeInferenceOptions = {}): Map<string, TensorType> {
  const opset = opts.opset ?? DEFAULT_OPSET;
  const types = new Map<string, TensorType>();
  const values = new Map<string, Dim[] | null>();
  const declared = new Map<string, TensorType>();
  for (const vi of [...graph.valueInfo.values(), ...graph.outputs]) {
    const t = safeTensorType(vi.type);
    if (t) declared.set(vi.name, t);
  }
  const typedOutputs = new Set(graph.outputs.filter((o) => declared.has(o.name)).map((o) => o.name));
  const inputNames = new Set(graph.inputs.map((v) => v.name));

  for (const name of Object.keys(opts.inputShapes ?? {})) {
    if (!inputNames.has(name)) throw new RpOnnxError(`inputShapes names '${name}', which is not an input of graph '${graph.name}'`);
  }
  for (const [name, t] of graph.initializers) {
    try {
      types.set(name, { dtype: dtypeName(t.dataType), shape: tensorDims(t) });
    } catch {
      // unknown element type: leave untyped
    }
  }
  for (const vi of graph.inputs) {
    const given = opts.inputShapes?.[vi.name];
    const t = types.get(vi.name) ?? safeTensorType(vi.type);
    if (given) types.set(vi.name, { dtype: t?.dtype ?? 'undefined', shape: [...given] });
    else if (t) types.set(vi.name, t);
  }

  const valueOf = (name: string): Dim[] | null => {
    if (values.has(name)) return values.get(name)!;
    const init = graph.initializers.get(name);
    // An input that is also an initializer (IR < 4) can be overridden at run time.
    const v = init && !inputNames.has(name) ? tensorValues(init) : null;
    values.set(name, v);
    return v;
  };

  for (const node of topologicalOrder(graph)) {
    const typeAt = (i: number): TensorType | null => {
      const name = node.inputs[i];
      return name ? (types.get(name) ?? null) : null;
    };
    const ctx: ShapeContext = {
      node,
      opset,
      hasInput: (i) => Boolean(node.inputs[i]),
      type: typeAt,
      shape: (i) => typeAt(i)?.shape ?? null,
      dtype: (i) => {
        const d = typeAt(i)?.dtype;
        return d === 'undefined' ? undefined : d;
      },
      value: (i) => (node.inputs[i] ? valueOf(node.inputs[i]!) : null),
      ints: (i) => {
        const v = node.inputs[i] ? valueOf(node.inputs[i]!) : null;
        return v && v.every(isKnown) ? (v as number[]) : null;
      },
      setValue: (o, v) => {
        const name = node.outputs[o];
        if (name && v.length <= MAX_FOLDED_ELEMENTS) values.set(name, v);
      },
    };
    let outs: (TensorType | null)[] = [];
    const rule = node.isStandard ? shapeRule(node.opType) : undefined;
    if (rule) {
      try {
        // A malformed shape (an empty slot, NaN, a negative size) is a rule that could not decide.
        outs = rule(ctx).map((t) => (t && isWellFormedShape(t.shape) ? t : null));
      } catch {
        outs = []; // malformed attributes or inputs: the outputs stay unknown
        for (const o of node.outputs) values.delete(o);
      }
    }
    node.outputs.forEach((name, i) => {
      if (!name) return;
      let inferred = outs[i] ?? null;
      if (inferred && inferred.dtype === 'undefined' && inferred.shape === null) inferred = null;
      const decl = declared.get(name);
      const final = refine(inferred, decl);
      if (!final) return;
      types.set(name, final);
      if (opts.record === false || typedOutputs.has(name) || inputNames.has(name) || final.dtype === 'undefined') return;
      if (!sameType(final, decl)) graph.setType(name, final);
    });
  }
  return types;
}

/** inferShapes with the model's own default-domain opset. */
export function inferModelShapes(model: Model, inputShapes?: Record<string, Dim[]>): Map<string, TensorType> {
  return inferShapes(model.graph, { opset: model.opset() || DEFAULT_OPSET, inputShapes });
}
