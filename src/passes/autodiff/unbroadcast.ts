/**
 * Shared with every gradient rule (light rules included): `unbroadcast` sums a gradient back to
 * the shape of the operand it belongs to, undoing numpy-style broadcasting. Use it for any
 * broadcasting op (Add, Mul, Where, Gemm's C, batched MatMul...):
 *
 *     const dA = unbroadcast(ctx, dY, ctx.node.inputs[0]!);            // dY has the output's shape
 *     const dB = unbroadcast(ctx, dFull, b, [...batch, 'K', 'N']);     // explicit gradient shape
 *
 * Static shapes (from shape inference) decide the reduced axes at graph-build time: leading axes
 * the operand lacks, and axes where the operand has 1 and the gradient has something else (a
 * symbolic dimension counts as "something else": summing over an axis that turns out to be 1 is
 * still exact). Only when a dimension of the operand is unknown and could be a broadcast 1 does it
 * fall back to computing the axes at run time (opset 13+, ranks must be known).
 */
import type { Dim } from '../../graph/ir.js';
import type { GradContext } from './rule.js';
import { RpOnnxError } from '../../errors.js';
import { reduceSum, squeeze } from './emit.js';

/**
 * Returns `grad` summed to the shape of `operand`. `gradShape` defaults to the static shape of
 * the node's first output (the usual case: the gradient of an elementwise op's result).
 */
export function unbroadcast(ctx: GradContext, grad: string, operand: string, gradShape?: readonly Dim[] | null): string {
  const gShape = gradShape === undefined ? ctx.shapeOf(ctx.node.outputs[0]!) : gradShape;
  const xShape = ctx.shapeOf(operand);
  if (!gShape || !xShape) {
    throw new RpOnnxError(
      `gradient of node '${ctx.node.name}' (${ctx.node.opType}): the rank of '${!xShape ? operand : grad}' is unknown, so its broadcast cannot be undone; give the model static ranks (run shape inference)`,
    );
  }
  const axes = staticReduceAxes(gShape, xShape);
  if (axes === null) return dynamicUnbroadcast(ctx, grad, operand, gShape.length, xShape.length);
  if (axes.length === 0) return grad;
  const lead = gShape.length - xShape.length;
  const summed = reduceSum(ctx, grad, axes, true);
  return squeeze(ctx, summed, Array.from({ length: lead }, (_, i) => i));
}

/**
 * The axes (of the gradient) to sum so it takes the operand's shape, or null when a dimension of
 * the operand is unknown where the gradient's is not known to match.
 */
export function staticReduceAxes(gShape: readonly Dim[], xShape: readonly Dim[]): number[] | null {
  const lead = gShape.length - xShape.length;
  if (lead < 0) return null;
  const axes: number[] = [];
  for (let i = 0; i < lead; i++) axes.push(i);
  for (let i = 0; i < xShape.length; i++) {
    const xd = xShape[i];
    const gd = gShape[i + lead];
    if (xd === 1) {
      if (gd !== 1) axes.push(i + lead);
    } else if (xd === null || xd === undefined) {
      if (gd === 1) continue;
      return null;
    } else if (typeof xd === 'string') {
      // Same symbol: same size. A different symbol may be 1 broadcast up: decide at run time.
      if (gd !== xd) return null;
    } else if (gd !== xd && gd !== null && typeof gd !== 'string') {
      throw new RpOnnxError(`cannot unbroadcast a gradient of shape [${gShape.join(', ')}] to [${xShape.join(', ')}]`);
    }
  }
  return axes;
}

/** Run-time axes: those where the (left-padded) operand shape is 1 and the gradient's is not. */
function dynamicUnbroadcast(ctx: GradContext, grad: string, operand: string, gRank: number, xRank: number): string {
  if (ctx.opset < 13) {
    throw new RpOnnxError(
      `gradient of node '${ctx.node.name}' (${ctx.node.opType}): the shape of '${operand}' is not static and the model's opset ${ctx.opset} < 13 cannot reduce over run-time axes; export the model with static shapes or opset >= 13`,
    );
  }
  const b = ctx.b;
  let xs = b.op1('Shape', [operand]);
  if (gRank > xRank) xs = b.op1('Concat', [b.int64s('ones', new Array<number>(gRank - xRank).fill(1)), xs], { axis: 0 });
  const one = b.int64s('one', [1]);
  const mask = b.op1('And', [b.op1('Equal', [xs, one]), b.op1('Not', [b.op1('Equal', [b.op1('Shape', [grad]), one])])]);
  const axes = b.op1('Reshape', [b.op1('NonZero', [mask]), b.int64s('flat', [-1])]);
  const summed = b.op1('ReduceSum', [grad, axes], { keepdims: 1, noop_with_empty_axes: 1 });
  return b.op1('Reshape', [summed, b.op1('Shape', [operand])]);
}
