/**
 * A gradient rule turns one forward node into the nodes that compute its inputs' gradients
 * from its outputs' gradients (reverse mode). Rules are registered per op type in
 * ./registry.ts; the autodiff engine only looks them up, so adding an op never touches it.
 * Every rule emits standard ONNX ops only (whatever onnxruntime-node's CPU build runs).
 */
import type { GraphBuilder } from '../../graph/builder.js';
import type { Dim } from '../../graph/ir.js';
import type { Node } from '../../graph/ir.js';

export interface GradContext {
  /** Emits nodes into the training graph (the forward nodes are already there). */
  readonly b: GraphBuilder;
  /** The forward node being differentiated. Its inputs/outputs are values of the training graph. */
  readonly node: Node;
  /** Gradient value of each forward output, or undefined where no gradient flows. */
  readonly gradOutputs: readonly (string | undefined)[];
  /** Whether each forward input needs a gradient (false for labels, shapes, frozen weights...). */
  readonly needsGrad: readonly boolean[];
  /**
   * DP-SGD: whether each input's gradient must be per example, [N, ...inputShape] with N the
   * batch (axis 0 of the data): set for parameters and values derived only from parameters
   * through layout ops. Only rules registered with the `perExample` trait see a true here; the
   * output gradients of such a node are per example already (activations, or [N, ...] for a
   * parameter-path output). Returning undefined for a flagged input makes the engine stop.
   */
  readonly perExample: readonly boolean[];
  /** Per-example mode: the batch dimension N (symbolic, e.g. 'N'), for rules to check where it is. */
  readonly batchDim?: Dim;
  /** The number of examples when the caller fixes it (a static-batch training graph), else undefined. */
  readonly batchSize?: number;
  /** Static shape of a value from shape inference (null when unknown). */
  shapeOf(value: string): Dim[] | null;
  /** Opset version of the default domain, for ops whose signature changed across opsets. */
  readonly opset: number;
}

/**
 * Returns the gradient value name for each forward input (same order as node.inputs), or
 * undefined for inputs that get none. Must only emit gradients where needsGrad[i] is true, and
 * where perExample[i] is true the per-example gradient [N, ...shape] (see ./per-example.ts).
 */
export type GradRule = (ctx: GradContext) => (string | undefined)[];
