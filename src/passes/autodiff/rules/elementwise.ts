/**
 * Gradient rules of elementwise arithmetic, as one table: op -> the gradient of each input in
 * terms of dY and the forward values (tinygrad's `pm_gradient` reads the same way); one generic
 * rule per entry emits what the table says. Binary and variadic ops broadcast (numpy rules), so
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

/**
 * What a gradient expression is written with: dY, the forward inputs `x` and output `y`, and
 * shorthands to emit an op and a constant of an operand's type.
 */
interface Terms {
  readonly ctx: GradContext;
  readonly dY: string;
  readonly x: readonly string[];
  readonly y: string;
  op(type: string, ...inputs: string[]): string;
  c(value: number, like: string): string;
}

/**
 * An op's gradient: terms shared by its inputs are emitted first, then `(i) => ...` gives input
 * i's gradient at the output's shape (called only for the inputs that need one).
 */
type Gradient = (t: Terms) => (i: number) => string;

interface Entry {
  /** Broadcasting (binary, variadic) ops sum each gradient back to its operand's shape. */
  readonly broadcasts: boolean;
  readonly gradient: Gradient;
}

const broadcasting = (gradient: Gradient): Entry => ({ broadcasts: true, gradient });
const unary = (gradient: (t: Terms) => string): Entry => ({ broadcasts: false, gradient: (t) => () => gradient(t) });

/** Max/Min: dY goes to the operands equal to the result, split evenly among ties. */
const extremum: Gradient = ({ ctx, dY, x, y, op }) => {
  if (x.length === 1) return () => dY;
  const masks = x.map((v) => castLike(ctx, op('Equal', v, y), dY));
  const share = op('Div', dY, op('Sum', ...masks));
  return (i) => op('Mul', share, masks[i]!);
};

/** Op -> the gradient of each input, as tinygrad's gradient table (`pm_gradient`). */
const GRADIENTS: Readonly<Record<string, Entry>> = {
  Add: broadcasting(({ dY }) => () => dY),
  Sum: broadcasting(({ dY }) => () => dY),
  Mean: broadcasting(({ dY, x, op, c }) => {
    const scaled = op('Div', dY, c(x.length, dY));
    return () => scaled;
  }),
  Sub: broadcasting(({ dY, op }) => (i) => (i === 0 ? dY : op('Neg', dY))),
  Mul: broadcasting(({ dY, x: [a, b], op }) => (i) => op('Mul', dY, i === 0 ? b! : a!)),
  // Y = A / B: dA = dY / B, dB = -dY * A / B^2 = -dA * Y.
  Div: broadcasting(({ dY, x: [, b], y, op }) => {
    const dA = op('Div', dY, b!);
    return (i) => (i === 0 ? dA : op('Neg', op('Mul', dA, y)));
  }),
  // Y = A^B: dA = dY * B * A^(B-1), dB = dY * Y * ln(A). The exponent may be an integer tensor
  // (opset >= 12); it is cast to A's type for the arithmetic and then gets no gradient.
  Pow: broadcasting(({ ctx, dY, x: [base, expo], y, op, c }) => {
    const expoType = dtypeOf(ctx, expo!);
    const expoF = expoType !== undefined && expoType === dtypeOf(ctx, base!) ? expo! : castLike(ctx, expo!, base!);
    return (i) => (i === 0
      ? op('Mul', dY, op('Mul', expoF, op('Pow', base!, op('Sub', expoF, c(1, base!)))))
      : op('Mul', dY, op('Mul', y, op('Log', base!))));
  }),
  // Max/Min: a valid subgradient, and what PyTorch does for maximum/minimum.
  Max: broadcasting(extremum),
  Min: broadcasting(extremum),
  Neg: unary(({ dY, op }) => op('Neg', dY)),
  Sqrt: unary(({ dY, y, op, c }) => op('Div', op('Mul', dY, c(0.5, dY)), y)),
  Exp: unary(({ dY, y, op }) => op('Mul', dY, y)),
  Log: unary(({ dY, x: [x], op }) => op('Div', dY, x!)),
  Abs: unary(({ dY, x: [x], op }) => op('Mul', dY, op('Sign', x!))),
  Reciprocal: unary(({ dY, y, op }) => op('Neg', op('Mul', dY, op('Mul', y, y)))),
};

/** The full-shape gradient `grad` summed to operand i's shape (per example if asked). */
function toOperand(ctx: GradContext, grad: string, x: string, i: number): string {
  return ctx.perExample[i] ? perExampleUnbroadcast(ctx, grad, x) : unbroadcast(ctx, grad, x);
}

for (const [opType, entry] of Object.entries(GRADIENTS)) {
  registerGradient(opType, (ctx) => {
    const dY = ctx.gradOutputs[0];
    if (!dY) return [];
    const gradientOf = entry.gradient({
      ctx, dY, x: ctx.node.inputs, y: ctx.node.outputs[0]!,
      op: (type, ...inputs) => ctx.b.op1(type, inputs),
      c: (value, like) => scalarLike(ctx, value, like),
    });
    return ctx.node.inputs.map((x, i) => {
      if (!ctx.needsGrad[i] || !x) return undefined;
      const g = gradientOf(i);
      return entry.broadcasts ? toOperand(ctx, g, x, i) : g;
    });
  }, entry.broadcasts ? { perExample: true } : {});
}
