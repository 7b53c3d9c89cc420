/**
 * Gradient rules of elementwise arithmetic. Binary and variadic ops broadcast (numpy rules), so
 * each operand's gradient is summed back to its own shape by `unbroadcast`.
 *
 * Per example (DP-SGD): a broadcast parameter operand (a bias, GroupNorm/LayerNorm's affine
 * weights in decomposed form) gets the same partial derivative summed over its broadcast axes
 * except the batch axis, [N, ...shape] (`perExampleUnbroadcast`).
 */
import { registerGradient } from '../registry.js';
import type { GradContext } from '../rule.js';
import { unbroadcast } from '../unbroadcast.js';
import { perExampleUnbroadcast } from '../per-example.js';
import { castLike, dtypeOf, scalarLike } from '../emit.js';

type Grads = (string | undefined)[];

/** Applies `f` to each input that needs a gradient. */
function each(ctx: GradContext, f: (input: string, i: number) => string): Grads {
  return ctx.node.inputs.map((x, i) => (ctx.needsGrad[i] && x ? f(x, i) : undefined));
}

/** The full-shape partial derivative `grad` summed to operand i's shape (per example if asked). */
function toOperand(ctx: GradContext, grad: string, x: string, i: number): string {
  return ctx.perExample[i] ? perExampleUnbroadcast(ctx, grad, x) : unbroadcast(ctx, grad, x);
}

function dYof(ctx: GradContext): string | undefined {
  return ctx.gradOutputs[0];
}

registerGradient(['Add', 'Sum'], (ctx) => {
  const dY = dYof(ctx);
  return dY ? each(ctx, (x, i) => toOperand(ctx, dY, x, i)) : [];
}, { perExample: true });

registerGradient('Mean', (ctx) => {
  const dY = dYof(ctx);
  if (!dY) return [];
  const scaled = ctx.b.op1('Div', [dY, scalarLike(ctx, ctx.node.inputs.length, dY)]);
  return each(ctx, (x, i) => toOperand(ctx, scaled, x, i));
}, { perExample: true });

registerGradient('Sub', (ctx) => {
  const dY = dYof(ctx);
  if (!dY) return [];
  return each(ctx, (x, i) => toOperand(ctx, i === 0 ? dY : ctx.b.op1('Neg', [dY]), x, i));
}, { perExample: true });

registerGradient('Mul', (ctx) => {
  const dY = dYof(ctx);
  if (!dY) return [];
  const [a, c] = ctx.node.inputs as [string, string];
  return each(ctx, (x, i) => toOperand(ctx, ctx.b.op1('Mul', [dY, i === 0 ? c : a]), x, i));
}, { perExample: true });

// Y = A / B: dA = dY / B, dB = -dY * A / B^2 = -dA * Y.
registerGradient('Div', (ctx) => {
  const dY = dYof(ctx);
  if (!dY) return [];
  const b = ctx.b;
  const dA = b.op1('Div', [dY, ctx.node.inputs[1]!]);
  return each(ctx, (x, i) => toOperand(ctx, i === 0 ? dA : b.op1('Neg', [b.op1('Mul', [dA, ctx.node.outputs[0]!])]), x, i));
}, { perExample: true });

registerGradient('Neg', (ctx) => {
  const dY = dYof(ctx);
  return dY && ctx.needsGrad[0] ? [ctx.b.op1('Neg', [dY])] : [];
});

// Y = A^B: dA = dY * B * A^(B-1), dB = dY * Y * ln(A). The exponent may be an integer tensor
// (opset >= 12); it is cast to A's type for the arithmetic and then gets no gradient.
registerGradient('Pow', (ctx) => {
  const dY = dYof(ctx);
  if (!dY) return [];
  const b = ctx.b;
  const [base, expo] = ctx.node.inputs as [string, string];
  const y = ctx.node.outputs[0]!;
  const expoType = dtypeOf(ctx, expo);
  const expoF = expoType !== undefined && expoType === dtypeOf(ctx, base) ? expo : castLike(ctx, expo, base);
  return each(ctx, (x, i) => {
    if (i === 0) {
      const powm1 = b.op1('Pow', [base, b.op1('Sub', [expoF, scalarLike(ctx, 1, base)])]);
      return toOperand(ctx, b.op1('Mul', [dY, b.op1('Mul', [expoF, powm1])]), x, i);
    }
    return toOperand(ctx, b.op1('Mul', [dY, b.op1('Mul', [y, b.op1('Log', [base])])]), x, i);
  });
}, { perExample: true });

/** Unary ops: dX = dY * f'(X, Y), with f' written in terms of the forward values. */
function unary(opType: string, derivative: (ctx: GradContext, dY: string, x: string, y: string) => string): void {
  registerGradient(opType, (ctx) => {
    const dY = dYof(ctx);
    if (!dY || !ctx.needsGrad[0]) return [];
    return [derivative(ctx, dY, ctx.node.inputs[0]!, ctx.node.outputs[0]!)];
  });
}

unary('Sqrt', (ctx, dY, _x, y) => ctx.b.op1('Div', [ctx.b.op1('Mul', [dY, scalarLike(ctx, 0.5, dY)]), y]));
unary('Exp', (ctx, dY, _x, y) => ctx.b.op1('Mul', [dY, y]));
unary('Log', (ctx, dY, x) => ctx.b.op1('Div', [dY, x]));
unary('Abs', (ctx, dY, x) => ctx.b.op1('Mul', [dY, ctx.b.op1('Sign', [x])]));
unary('Reciprocal', (ctx, dY, _x, y) => ctx.b.op1('Neg', [ctx.b.op1('Mul', [dY, ctx.b.op1('Mul', [y, y])])]));

// Max/Min: the gradient goes to the operands equal to the result, split evenly among ties
// (a valid subgradient, and what PyTorch does for maximum/minimum).
function extremum(ctx: GradContext): Grads {
  const dY = dYof(ctx);
  if (!dY) return [];
  const b = ctx.b;
  const y = ctx.node.outputs[0]!;
  const inputs = ctx.node.inputs;
  if (inputs.length === 1) return each(ctx, (x, i) => toOperand(ctx, dY, x, i));
  const masks = inputs.map((x) => castLike(ctx, b.op1('Equal', [x, y]), dY));
  const share = b.op1('Div', [dY, b.op1('Sum', masks)]);
  return each(ctx, (x, i) => toOperand(ctx, b.op1('Mul', [share, masks[i]!]), x, i));
}
registerGradient(['Max', 'Min'], extremum, { perExample: true });
