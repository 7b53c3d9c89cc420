/**
 * Reverse-mode automatic differentiation over an ONNX graph, as a graph pass: it appends to the
 * graph the nodes that compute the gradients of the seeded values with respect to `wrt`.
 *
 * The engine only walks and bookkeeps; every op's math lives in a gradient rule looked up in
 * ./registry.ts (so adding an op never touches this file). The walk:
 *  1. forward: mark the values that depend on a `wrt` value through differentiable ops
 *     ("active"); integer/bool values, Shape-like results and random noise are never active;
 *  2. backward, in reverse topological order: a node gets its rule called only if some output
 *     has received a gradient and some input is active (pruning both ways), and gradients of a
 *     value with several consumers are summed (Add for two, Sum for more) when first read.
 */
import { Graph, type Dim, type Node, type TensorType } from '../../graph/ir.js';
import { GraphBuilder } from '../../graph/builder.js';
import { inferShapes } from '../../graph/shape-inference.js';
import type { DType } from '../../graph/tensor.js';
import { RpOnnxError } from '../../errors.js';
import type { GradContext } from './rule.js';
import { differentiableOps, gradientRule } from './registry.js';
import { perExampleRule } from './per-example.js';
import './rules/index.js';

export interface DifferentiateOptions {
  /** Values that need gradients (usually initializers). */
  wrt: readonly string[];
  /** Forward value -> the value holding d(loss)/d(it). */
  seeds: ReadonlyMap<string, string>;
  /** Default-domain opset of the model (rules emit opset-specific signatures). Default 17. */
  opset?: number;
  /** Static shapes; default: shape inference on the graph (src/graph/shape-inference.ts). */
  shapeOf?: (value: string) => Dim[] | null;
  /** Static element types; default: shape inference as well. */
  typeOf?: (value: string) => TensorType | null;
  /** Prefix of emitted node and value names. Default 'grad/'. */
  prefix?: string;
  /**
   * Parameters whose gradients must be per example, [N, ...shape] (DP-SGD). They must be
   * consumed directly by ops with a per-example rule (./per-example.ts).
   */
  perExample?: ReadonlySet<string>;
}

/**
 * Ops whose outputs carry no gradient whatever their inputs: shapes, comparisons, indices, and
 * random noise (a constant with respect to the parameters; the input of the *Like variants
 * only gives the shape).
 */
const NO_GRADIENT_OPS: ReadonlySet<string> = new Set([
  'Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero', 'Equal', 'Less', 'LessOrEqual', 'Greater',
  'GreaterOrEqual', 'And', 'Or', 'Not', 'Xor', 'IsNaN', 'IsInf', 'Sign', 'Floor', 'Ceil', 'Round',
  'RandomNormal', 'RandomNormalLike', 'RandomUniform', 'RandomUniformLike', 'Bernoulli',
  'Multinomial', 'ConstantOfShape', 'EyeLike', 'Range', 'OneHot', 'StopGradient',
]);

/** Outputs that are integer-valued by definition, for graphs without recorded types. */
const INTEGER_OUTPUTS: Readonly<Record<string, readonly number[]>> = {
  MaxPool: [1], TopK: [1], Dropout: [1], Unique: [1, 2, 3],
};

const FLOAT_DTYPES: ReadonlySet<DType> = new Set<DType>(['float32', 'float64', 'float16', 'bfloat16']);

/**
 * Emits the gradient nodes into `graph` and returns, for every `wrt` value that the seeds depend
 * on, the name of its gradient value. Values the seeds do not depend on get no entry.
 */
export function differentiate(graph: Graph, opts: DifferentiateOptions): Map<string, string> {
  const opset = opts.opset ?? 17;
  // Without given types, shape inference supplies them (it also records them in the graph).
  const inferred = opts.typeOf && opts.shapeOf ? undefined : inferShapes(graph, { opset });
  const typeOf = opts.typeOf ?? ((v: string) => inferred?.get(v) ?? graph.typeOf(v));
  const shapeOf = opts.shapeOf ?? ((v: string) => typeOf(v)?.shape ?? null);
  const b = new GraphBuilder(graph, opts.prefix ?? 'grad/');

  graph.toposort();
  const forward = [...graph.nodes];
  const active = activeValues(forward, opts.wrt, typeOf);

  // Gradient contributions per value, summed lazily on first read.
  const parts = new Map<string, string[]>();
  const add = (value: string, grad: string) => {
    const list = parts.get(value);
    if (list) list.push(grad);
    else parts.set(value, [grad]);
  };
  const total = (value: string): string | undefined => {
    const list = parts.get(value);
    if (!list || list.length === 0) return undefined;
    if (list.length > 1) {
      const sum = list.length === 2 ? b.op1('Add', list, {}, { name: 'AccumulateGrad' }) : b.op1('Sum', list, {}, { name: 'AccumulateGrad' });
      parts.set(value, [sum]);
      return sum;
    }
    return list[0];
  };
  for (const [value, grad] of opts.seeds) add(value, grad);

  for (let k = forward.length - 1; k >= 0; k--) {
    const node = forward[k]!;
    if (NO_GRADIENT_OPS.has(node.opType)) continue;
    const gradOutputs = node.outputs.map((o) => (o ? total(o) : undefined));
    if (gradOutputs.every((g) => g === undefined)) continue;
    const active0 = node.inputs.map((i) => i !== '' && active.has(i));
    if (!active0.some(Boolean)) continue;
    // Per-example parameters get their gradient from the op's per-example rule; the ordinary
    // rule computes the rest (the gradients that flow on to the data).
    const perExample = active0.map((a, i) => a && (opts.perExample?.has(node.inputs[i]!) ?? false));
    const needsGrad = active0.map((a, i) => a && !perExample[i]);
    if (needsGrad.some(Boolean)) {
      const rule = gradientRule(ruleKey(node));
      if (!rule) {
        throw new RpOnnxError(
          `no gradient rule for op ${ruleKey(node)} (node '${node.name}'); supported: ${differentiableOps().join(', ')}. Freeze the parameters before it (--freeze) or replace the op`,
        );
      }
      const grads = rule({ b, node, gradOutputs, needsGrad, shapeOf, opset });
      node.inputs.forEach((input, i) => {
        const g = grads[i];
        if (needsGrad[i] && g) add(input, g);
      });
    }
    if (perExample.some(Boolean)) {
      const pe = node.isStandard ? perExampleRule(node.opType) : undefined;
      const slot = perExample.indexOf(true);
      if (!pe) {
        throw new RpOnnxError(`per-example gradients (DP-SGD) are not available for parameter '${node.inputs[slot]}' consumed by op ${ruleKey(node)} (node '${node.name}'); freeze it (--freeze) or use a model whose parameters feed Conv, Gemm, MatMul or elementwise ops directly`);
      }
      const ctx: GradContext = { b, node, gradOutputs, needsGrad: active0, shapeOf, opset };
      node.inputs.forEach((input, i) => {
        if (!perExample[i]) return;
        const g = pe(ctx, i);
        if (!g) throw new RpOnnxError(`per-example gradient of '${input}' (slot ${i} of ${node.opType} node '${node.name}') is not supported`);
        add(input, g);
      });
    }
  }

  const result = new Map<string, string>();
  for (const w of opts.wrt) {
    const g = total(w);
    if (g !== undefined) result.set(w, g);
  }
  return result;
}

/** Registry key: the op type for the default domain, `domain:op` for any other. */
function ruleKey(node: Node): string {
  return node.isStandard ? node.opType : `${node.domain}:${node.opType}`;
}

/** Values that depend on some `wrt` value through ops that carry gradients. */
function activeValues(nodes: readonly Node[], wrt: readonly string[], typeOf: (v: string) => TensorType | null): Set<string> {
  const active = new Set<string>(wrt);
  for (const node of nodes) {
    if (NO_GRADIENT_OPS.has(node.opType)) continue;
    if (!node.inputs.some((i) => i !== '' && active.has(i))) continue;
    const intOuts = node.isStandard ? INTEGER_OUTPUTS[node.opType] ?? [] : [];
    node.outputs.forEach((o, i) => {
      if (!o || intOuts.includes(i)) return;
      const dtype = typeOf(o)?.dtype;
      if (dtype !== undefined && dtype !== 'undefined' && !FLOAT_DTYPES.has(dtype)) return;
      active.add(o);
    });
  }
  return active;
}
