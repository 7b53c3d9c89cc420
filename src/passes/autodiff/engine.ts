/**
 * Reverse-mode automatic differentiation over an ONNX graph, as a graph pass: it appends to the
 * graph the nodes that compute the gradients of the seeded values with respect to `wrt`.
 *
 * The engine only walks and bookkeeps; every op's math lives in a gradient rule looked up in
 * ./registry.ts (so adding an op never touches this file). The walk:
 *  1. forward: mark the values that depend on a `wrt` value through differentiable ops
 *     ("active"); integer/bool values, Shape-like results and random noise are never active;
 *     then the forward nodes get the optional outputs their rules read (./forward-outputs.ts);
 *  2. backward, in reverse topological order: a node gets its rule called only if some output
 *     has received a gradient and some input is active (pruning both ways), and gradients of a
 *     value with several consumers are summed (Add for two, Sum for more) when first read.
 *
 * Per-example mode (DP-SGD, `perExample`; ./per-example.ts): the flagged parameters, and values
 * derived only from them through parameter-path ops, get [N, ...shape] gradients from rules
 * with the per-example trait. The engine checks what makes those exact: each such value meets
 * the data in a per-example rule, and every activation on the way to the seeds keeps the batch
 * axis, unmerged and unreduced (the rules check that it sits where they need it).
 */
import { Graph, type Dim, type Node, type TensorType } from '../../graph/ir.js';
import { GraphBuilder } from '../../graph/builder.js';
import { inferShapes } from '../../graph/shape-inference.js';
import { isFloatDType } from '../../graph/tensor.js';
import { RpOnnxError } from '../../errors.js';
import { differentiableOps, gradientRule, gradientTraits, perExampleOps } from './registry.js';
import { forwardOutputsRewrite, valuesReachingSeeds } from './forward-outputs.js';
import { applyRewrite } from '../rewrite.js';
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
   * Parameters whose gradients must be per example, [N, ...shape] (DP-SGD): consumed by ops
   * whose rule has the per-example trait, directly or through parameter-path ops
   * (./per-example.ts).
   */
  perExample?: ReadonlySet<string>;
  /** Per-example mode: the batch dimension; default axis 0 of the first seeded value's shape. */
  batchDim?: Dim;
  /** The number of examples when it is fixed (a static-batch training graph), for rules (GradContext.batchSize). */
  batchSize?: number;
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
  // The optional forward outputs rules read are named now, before any gradient node.
  applyRewrite(graph, forwardOutputsRewrite(active, valuesReachingSeeds(forward, opts.seeds.keys()), opset));

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

  const perExampleMode = perExampleSetup(graph, forward, opts, active, shapeOf);

  for (let k = forward.length - 1; k >= 0; k--) {
    const node = forward[k]!;
    if (NO_GRADIENT_OPS.has(node.opType)) continue;
    const gradOutputs = node.outputs.map((o) => (o ? total(o) : undefined));
    if (gradOutputs.every((g) => g === undefined)) continue;
    const needsGrad = node.inputs.map((i) => i !== '' && active.has(i));
    if (!needsGrad.some(Boolean)) continue;
    const key = ruleKey(node);
    const rule = gradientRule(key);
    if (!rule) {
      throw new RpOnnxError(
        `no gradient rule for op ${key} (node '${node.name}'); supported: ${differentiableOps().join(', ')}. Freeze the parameters before it (--freeze) or replace the op`,
      );
    }
    const perExample = node.inputs.map((v, i) => needsGrad[i]! && (perExampleMode?.values.has(v) ?? false));
    if (perExampleMode) perExampleMode.check(node, key, gradOutputs, perExample);
    const grads = rule({ b, node, gradOutputs, needsGrad, perExample, batchDim: perExampleMode?.batchDim, batchSize: opts.batchSize, shapeOf, opset });
    node.inputs.forEach((input, i) => {
      if (!needsGrad[i]) return;
      const g = grads[i];
      if (g) add(input, g);
      else if (perExample[i]) {
        throw new RpOnnxError(`per-example gradients (DP-SGD): the ${key} rule gives none for input ${i} ('${input}') of node '${node.name}'; freeze that parameter (--freeze)`);
      }
    });
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
      if (dtype !== undefined && dtype !== 'undefined' && !isFloatDType(dtype)) return;
      active.add(o);
    });
  }
  return active;
}

const PARAMETER_PATH_HINT = 'directly or through Reshape/Flatten/Transpose/Squeeze/Unsqueeze/Cast/Identity';

interface PerExampleMode {
  /** Parameters and values derived only from them through parameter-path ops. */
  values: ReadonlySet<string>;
  batchDim: Dim;
  /** Throws unless per-example gradients through `node` are exact. */
  check(node: Node, key: string, gradOutputs: readonly (string | undefined)[], perExample: readonly boolean[]): void;
}

/** The per-example values and the checks of the per-example mode, or undefined when it is off. */
function perExampleSetup(
  graph: Graph, forward: readonly Node[], opts: DifferentiateOptions, active: ReadonlySet<string>,
  shapeOf: (v: string) => Dim[] | null,
): PerExampleMode | undefined {
  const params = opts.wrt.filter((w) => opts.perExample?.has(w) && active.has(w));
  if (params.length === 0) return undefined;
  const values = new Set<string>(params);
  for (const node of forward) {
    const [x, ...rest] = node.inputs;
    const y = node.outputs[0];
    if (!x || !y || !values.has(x) || !active.has(y)) continue;
    if (!node.isStandard || !gradientTraits(node.opType).parameterPath) continue;
    if (rest.some((v) => v && active.has(v))) continue;
    values.add(y);
  }
  const firstSeed = [...opts.seeds.keys()][0];
  const batchDim = opts.batchDim ?? (firstSeed ? shapeOf(firstSeed)?.[0] : undefined);
  if (batchDim === undefined || batchDim === null) {
    throw new RpOnnxError(`per-example gradients (DP-SGD) need the batch size on axis 0 of '${firstSeed}', whose shape is unknown; export the model with static ranks`);
  }
  // Values computed from the examples (everything else is a function of the parameters only).
  const fromData = new Set<string>(graph.realInputs().map((v) => v.name));
  for (const node of forward) if (node.inputs.some((v) => v && fromData.has(v))) for (const o of node.outputs) if (o) fromData.add(o);

  const check: PerExampleMode['check'] = (node, key, gradOutputs, perExample) => {
    const slot = perExample.indexOf(true);
    if (slot >= 0 && !gradientTraits(key).perExample) {
      throw new RpOnnxError(
        `per-example gradients (DP-SGD) are not available for op ${key} (node '${node.name}'), which consumes parameter '${node.inputs[slot]}'; ops with per-example rules: ${perExampleOps().join(', ')} (parameters reach them ${PARAMETER_PATH_HINT}). Freeze the parameter (--freeze) or change the model`,
      );
    }
    node.outputs.forEach((o, i) => {
      if (!o || gradOutputs[i] === undefined || values.has(o)) return;
      if (!fromData.has(o)) {
        throw new RpOnnxError(
          `per-example gradients (DP-SGD): a parameter is transformed by op ${key} (node '${node.name}') before it meets the data; parameters must reach their consumers ${PARAMETER_PATH_HINT}. Freeze it (--freeze) or fold the op into the parameter`,
        );
      }
      // The batch axis must survive, once: a merged, reduced or unknown one may mix examples.
      // (Where it sits is checked by the per-example rules that need it on a given axis.)
      const shape = shapeOf(o);
      if (!shape || shape.filter((d) => d === batchDim).length !== 1) {
        throw new RpOnnxError(
          `per-example gradients (DP-SGD) need every activation between the parameters and the logits to keep the batch axis (${batchDim}), but '${o}' (output of ${key} node '${node.name}') has shape ${shape ? `[${shape.map((d) => d ?? '?').join(', ')}]` : 'unknown'}; reshape without merging the batch axis into others, and never reduce over it`,
        );
      }
    });
  };
  return { values, batchDim, check };
}
