/**
 * Gradient rules of the Reduce* ops. Each first brings dY (and Y) back to X's rank, by
 * Unsqueeze at the reduced axes when keepdims = 0, and lets broadcasting (or Expand to Shape(X))
 * spread it over X, so no static shape is needed.
 *
 * Axes are an attribute before opset 18 (ReduceSum: before 13) and an optional input after; no
 * axes means every axis, unless noop_with_empty_axes = 1: then nothing is reduced but the
 * elementwise part still applies (onnxruntime and the ONNX reference: ReduceSumSquare gives X^2,
 * ReduceL1/L2 |X|, ReduceLogSum log X), so the same derivatives hold with an empty axis list.
 */
import { registerGradient } from '../registry.js';
import type { GradContext } from '../rule.js';
import { castLike, constantNumbers, reduceSum, unsqueeze } from '../emit.js';

interface Reduction {
  /** Reduced axes (possibly negative; [] = none); null = all; a string = an axes value known at run time. */
  axes: number[] | null | string;
  keepdims: boolean;
}

function reductionOf(ctx: GradContext): Reduction {
  const n = ctx.node;
  const keepdims = n.getInt('keepdims', 1) === 1;
  const axesIsInput = ctx.opset >= 18 || (n.opType === 'ReduceSum' && ctx.opset >= 13);
  if (!axesIsInput) {
    const axes = n.getInts('axes');
    return { axes: axes && axes.length > 0 ? axes : null, keepdims };
  }
  const noop = n.getInt('noop_with_empty_axes', 0) === 1;
  const axes = n.inputs[1] ? constantNumbers(ctx, n.inputs[1]) : [];
  if (axes === undefined) return { axes: n.inputs[1]!, keepdims };
  return { axes: axes.length > 0 ? axes : noop ? [] : null, keepdims };
}

/** A reduced value (dY or Y) back at X's rank, with size 1 on the reduced axes. */
function restoreRank(ctx: GradContext, r: Reduction, v: string): string {
  if (r.keepdims || r.axes === null) return v;
  if (typeof r.axes === 'string') return ctx.b.op1('Unsqueeze', [v, r.axes]);
  return unsqueeze(ctx, v, r.axes);
}

function sumOverReduced(ctx: GradContext, r: Reduction, v: string): string {
  if (typeof r.axes === 'string') return ctx.b.op1('ReduceSum', [v, r.axes], { keepdims: 1 });
  return r.axes?.length === 0 ? v : reduceSum(ctx, v, r.axes, true);
}

type Derivative = (ctx: GradContext, r: Reduction, dYk: string, x: string, yk: () => string) => string;

/** Registers dX = derivative(dY at X's rank, X, Y at X's rank). */
function reduction(opType: string, derivative: Derivative): void {
  registerGradient(opType, (ctx) => {
    const dY = ctx.gradOutputs[0];
    if (!dY || !ctx.needsGrad[0]) return [];
    const r = reductionOf(ctx);
    const x = ctx.node.inputs[0]!;
    const yk = () => restoreRank(ctx, r, ctx.node.outputs[0]!);
    return [derivative(ctx, r, restoreRank(ctx, r, dY), x, yk)];
  });
}

const expandTo = (ctx: GradContext, v: string, x: string) => ctx.b.op1('Expand', [v, ctx.b.op1('Shape', [x])]);
const mul = (ctx: GradContext, a: string, b: string) => ctx.b.op1('Mul', [a, b]);

reduction('ReduceSum', (ctx, _r, dYk, x) => expandTo(ctx, dYk, x));
// Mean over k = |X| / |Y| elements, counted at run time.
reduction('ReduceMean', (ctx, _r, dYk, x) => {
  const b = ctx.b;
  const ratio = b.op1('Div', [castLike(ctx, b.op1('Size', [ctx.node.outputs[0]!]), dYk), castLike(ctx, b.op1('Size', [x]), dYk)]);
  return expandTo(ctx, mul(ctx, dYk, ratio), x);
});
reduction('ReduceSumSquare', (ctx, _r, dYk, x) => mul(ctx, dYk, ctx.b.op1('Add', [x, x])));
reduction('ReduceL1', (ctx, _r, dYk, x) => mul(ctx, dYk, ctx.b.op1('Sign', [x])));
// Y = |X|_2: dX = dY X / Y.
reduction('ReduceL2', (ctx, _r, dYk, x, yk) => ctx.b.op1('Div', [mul(ctx, dYk, x), yk()]));
// Y = log sum exp X: dX = dY exp(X - Y), the softmax over the reduced axes.
reduction('ReduceLogSumExp', (ctx, _r, dYk, x, yk) => mul(ctx, dYk, ctx.b.op1('Exp', [ctx.b.op1('Sub', [x, yk()])])));
// Y = log sum X: dX = dY / sum X = dY / exp(Y).
reduction('ReduceLogSum', (ctx, _r, dYk, x, yk) => expandTo(ctx, ctx.b.op1('Div', [dYk, ctx.b.op1('Exp', [yk()])]), x));

// Max/Min: the gradient goes to the elements equal to the result, split evenly among ties.
function extremum(ctx: GradContext, r: Reduction, dYk: string, x: string, yk: () => string): string {
  const mask = castLike(ctx, ctx.b.op1('Equal', [x, yk()]), dYk);
  return mul(ctx, mask, ctx.b.op1('Div', [dYk, sumOverReduced(ctx, r, mask)]));
}
reduction('ReduceMax', extremum);
reduction('ReduceMin', extremum);
