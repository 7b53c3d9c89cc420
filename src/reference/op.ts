/**
 * What an operator implementation of the reference interpreter sees and returns. Each file in
 * ./ops exports a table of these; ./interpreter.ts merges the tables into its registry, so an
 * op family never touches the evaluator.
 */
import type { Node } from '../graph/ir.js';
import type { Arr } from './tensor.js';
import { RpOnnxError } from '../errors.js';

export interface OpContext {
  readonly node: Node;
  /** Opset version of the default ONNX domain the graph is read under. */
  readonly opset: number;
  /** One entry per node input; undefined where the input is omitted ('' or absent). */
  readonly inputs: readonly (Arr | undefined)[];
  /** Noise for RandomNormalLike & co. (see EvaluateOptions.randomValues). */
  readonly randomValues?: (node: Node) => ArrayLike<number>;
  /** Keep-mask for Dropout in training mode (see EvaluateOptions.dropoutMask). */
  readonly dropoutMask?: (node: Node) => ArrayLike<number | boolean>;
}

/** Returns one tensor per node output (entries past the node's outputs are ignored). */
export type OpImpl = (ctx: OpContext) => (Arr | undefined)[];

export type OpTable = Record<string, OpImpl>;

/** An error about one node, phrased for the interpreter's user. */
export function opError(ctx: OpContext, message: string): RpOnnxError {
  return new RpOnnxError(`reference interpreter: ${ctx.node.opType} node '${ctx.node.name}': ${message}`);
}

/** The i-th input, which the op requires. */
export function input(ctx: OpContext, i: number): Arr {
  const a = ctx.inputs[i];
  if (!a) throw opError(ctx, `input ${i} is required`);
  return a;
}

/** Whether the node asks for its i-th output. */
export function wantsOutput(ctx: OpContext, i: number): boolean {
  return (ctx.node.outputs[i] ?? '') !== '';
}
