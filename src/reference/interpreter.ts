/**
 * A float64 reference interpreter for ONNX graphs: an implementation independent of
 * onnxruntime, used as the second implementation in tests (finite-difference gradient checks
 * in float64, whole-model cross-checks). Clarity over speed; small CNNs run in milliseconds.
 *
 * Every floating tensor (float32/float16 initializers and feeds included) is computed in
 * float64 and Cast to a float type does not round; integer tensors of every width are int64,
 * bools bool. Ops follow the ONNX operator spec for the opset given (default DEFAULT_OPSET).
 * Only nodes needed for the requested outputs run, in dependency order (the graph need not be
 * sorted). Random ops and training-mode Dropout take their randomness from the options (see
 * ./ops/random.ts), so every evaluation is deterministic. Control flow (If/Loop/Scan),
 * sequences, strings, quantized ops, RNNs and Resize are not implemented: such a node throws
 * an error naming its op.
 *
 * Op families live in ./ops (one table each: conv, pool, matmul, elementwise, norm, softmax,
 * shape, gather, constant, reduce, loss, random); this file only schedules and dispatches.
 */
import type { Graph, Node } from '../graph/ir.js';
import { RpOnnxError } from '../errors.js';
import type { OpContext, OpImpl, OpTable } from './op.js';
import { fromProto, fromRef, toRef, type Arr, type RefTensor } from './tensor.js';
import { convOps } from './ops/conv.js';
import { poolOps } from './ops/pool.js';
import { matmulOps } from './ops/matmul.js';
import { elementwiseOps } from './ops/elementwise.js';
import { normOps } from './ops/norm.js';
import { softmaxOps } from './ops/softmax.js';
import { shapeOps } from './ops/shape.js';
import { gatherOps } from './ops/gather.js';
import { constantOps } from './ops/constant.js';
import { reduceOps } from './ops/reduce.js';
import { lossOps } from './ops/loss.js';
import { randomOps } from './ops/random.js';

export type { RefTensor, RefDType } from './tensor.js';
export { f64, i64 } from './tensor.js';

/** Opset assumed when the caller gives none: the newest semantics implemented here. */
export const DEFAULT_OPSET = 21;

const REGISTRY = new Map<string, OpImpl>();
function register(table: OpTable): void {
  for (const [op, impl] of Object.entries(table)) {
    if (REGISTRY.has(op)) throw new Error(`reference interpreter: ${op} registered twice`);
    REGISTRY.set(op, impl);
  }
}
for (const table of [convOps, poolOps, matmulOps, elementwiseOps, normOps, softmaxOps, shapeOps, gatherOps, constantOps, reduceOps, lossOps, randomOps]) {
  register(table);
}

/** Op types of the default ONNX domain the interpreter implements, sorted. */
export function supportedOps(): string[] {
  return [...REGISTRY.keys()].sort();
}
export function isSupported(node: Pick<Node, 'opType' | 'domain'>): boolean {
  return (node.domain === '' || node.domain === 'ai.onnx') && REGISTRY.has(node.opType);
}

export interface EvaluateOptions {
  /** Values to return (graph outputs or any intermediate value); default: the graph outputs. */
  outputs?: string[];
  /** Opset version of the default domain (Model.opset()); default DEFAULT_OPSET. */
  opset?: number;
  /**
   * Standard noise for RandomNormal(Like) (N(0,1) draws) and RandomUniform(Like)/Bernoulli
   * (U[0,1) draws), one value per output element. Default: zeros.
   */
  randomValues?: (node: Node) => Float64Array;
  /** Keep-mask (1/true = keep) for Dropout nodes run with training_mode true and ratio > 0. */
  dropoutMask?: (node: Node) => ArrayLike<number | boolean>;
  /** Replaces initializers by name (e.g. perturbed weights for finite differences). */
  initializerOverrides?: Record<string, RefTensor>;
}

/** The nodes that compute `wanted`, in an order where producers come first. */
function schedule(graph: Graph, wanted: string[], available: (v: string) => boolean): Node[] {
  const order: Node[] = [];
  const state = new Map<Node, 'visiting' | 'done'>();
  for (const root of wanted) {
    const first = graph.producer(root);
    if (!first || available(root)) continue;
    // Iterative depth-first search: a node is emitted after all producers of its inputs.
    const stack: { node: Node; next: number }[] = [{ node: first, next: 0 }];
    if (state.get(first) === 'done') continue;
    state.set(first, 'visiting');
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.next < top.node.inputs.length) {
        const v = top.node.inputs[top.next++]!;
        if (!v || available(v)) continue;
        const p = graph.producer(v);
        if (!p) continue; // reported as a missing value when the node runs
        const s = state.get(p);
        if (s === 'done') continue;
        if (s === 'visiting') throw new RpOnnxError(`reference interpreter: the graph has a cycle through value '${v}'`);
        state.set(p, 'visiting');
        stack.push({ node: p, next: 0 });
      } else {
        state.set(top.node, 'done');
        order.push(top.node);
        stack.pop();
      }
    }
  }
  return order;
}

/** Evaluates `graph` on `feeds` and returns the requested values. */
export function evaluate(graph: Graph, feeds: Record<string, RefTensor>, opts: EvaluateOptions = {}): Record<string, RefTensor> {
  const opset = opts.opset ?? DEFAULT_OPSET;
  const overrides = opts.initializerOverrides ?? {};
  for (const name of Object.keys(overrides)) {
    if (!graph.initializers.has(name)) throw new RpOnnxError(`reference interpreter: initializerOverrides names '${name}', which is not an initializer of the graph`);
  }
  const inputNames = new Set(graph.inputs.map((v) => v.name));
  for (const name of Object.keys(feeds)) {
    if (!inputNames.has(name) && !graph.initializers.has(name)) {
      throw new RpOnnxError(`reference interpreter: feed '${name}' is not an input of the graph (inputs: ${graph.realInputs().map((v) => v.name).join(', ')})`);
    }
  }

  const env = new Map<string, Arr>();
  for (const [name, t] of Object.entries(feeds)) env.set(name, fromRef(t, `feed '${name}'`));
  // Initializers are decoded on first use only.
  const lookup = (name: string): Arr | undefined => {
    const hit = env.get(name);
    if (hit) return hit;
    const init = graph.initializers.get(name);
    if (!init) return undefined;
    const o = overrides[name];
    const a = o ? fromRef(o, `initializerOverrides['${name}']`) : fromProto(init);
    env.set(name, a);
    return a;
  };
  const available = (v: string) => env.has(v) || graph.initializers.has(v);

  const wanted = opts.outputs ?? graph.outputs.map((o) => o.name);
  for (const node of schedule(graph, wanted, available)) {
    const impl = isSupported(node) ? REGISTRY.get(node.opType) : undefined;
    if (!impl) {
      const op = node.isStandard ? node.opType : `${node.domain}:${node.opType}`;
      throw new RpOnnxError(`reference interpreter: operator ${op} (node '${node.name}') is not implemented`);
    }
    const inputs = node.inputs.map((v) => {
      if (!v) return undefined;
      const a = lookup(v);
      if (!a && inputNames.has(v)) throw new RpOnnxError(`reference interpreter: graph input '${v}' was not fed`);
      if (!a) throw new RpOnnxError(`reference interpreter: node '${node.name}' (${node.opType}) reads '${v}', which is neither fed, an initializer nor computed by any node`);
      return a;
    });
    const ctx: OpContext = { node, opset, inputs, randomValues: opts.randomValues, dropoutMask: opts.dropoutMask };
    let results: (Arr | undefined)[];
    try {
      results = impl(ctx);
    } catch (e) {
      if (e instanceof RpOnnxError) throw e;
      throw new RpOnnxError(`reference interpreter: ${node.opType} node '${node.name}' failed: ${(e as Error).message}`, { cause: e });
    }
    node.outputs.forEach((name, i) => {
      const r = results[i];
      if (name && r) env.set(name, r);
    });
  }

  const out: Record<string, RefTensor> = {};
  for (const name of wanted) {
    const a = lookup(name);
    if (!a) throw new RpOnnxError(`reference interpreter: value '${name}' was not computed (no node produces it, or its node does not output it)`);
    out[name] = toRef(a);
  }
  return out;
}
