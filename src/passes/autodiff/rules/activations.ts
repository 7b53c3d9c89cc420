/**
 * Gradient rules of activation functions. Each derivative is written in terms of whichever
 * forward value makes it cheapest (the output Y where f' is a function of f, else the input X).
 * Kinks (Relu at 0, Clip at its bounds) take the one-sided derivative PyTorch uses.
 */
import { registerGradient } from '../registry.js';
import type { GradContext } from '../rule.js';
import { unbroadcast } from '../unbroadcast.js';
import { perExampleUnbroadcast } from '../per-example.js';
import { reduceSum, reshapeLike, scalarLike } from '../emit.js';
import { float } from '../../../graph/builder.js';

/** Registers dX = derivative(dY, X, Y) for a one-input op. */
function unary(opTypes: string | string[], derivative: (ctx: GradContext, dY: string, x: string, y: string) => string): void {
  registerGradient(opTypes, (ctx) => {
    const dY = ctx.gradOutputs[0];
    if (!dY || !ctx.needsGrad[0]) return [];
    return [derivative(ctx, dY, ctx.node.inputs[0]!, ctx.node.outputs[0]!)];
  });
}

const c = (ctx: GradContext, v: number, like: string) => scalarLike(ctx, v, like);
const op = (ctx: GradContext, type: string, ...inputs: string[]) => ctx.b.op1(type, inputs);
/** Where(cond, a, b): `a` where cond holds, else `b`. */
const where = (ctx: GradContext, cond: string, a: string, b: string) => ctx.b.op1('Where', [cond, a, b]);
const positive = (ctx: GradContext, x: string) => op(ctx, 'Greater', x, c(ctx, 0, x));

unary('Relu', (ctx, dY, x) => where(ctx, positive(ctx, x), dY, c(ctx, 0, dY)));
unary('LeakyRelu', (ctx, dY, x) =>
  where(ctx, positive(ctx, x), dY, op(ctx, 'Mul', dY, c(ctx, ctx.node.getFloat('alpha', 0.01), dY))));
unary('Sigmoid', (ctx, dY, _x, y) => op(ctx, 'Mul', dY, op(ctx, 'Mul', y, op(ctx, 'Sub', c(ctx, 1, y), y))));
unary('Tanh', (ctx, dY, _x, y) => op(ctx, 'Mul', dY, op(ctx, 'Sub', c(ctx, 1, y), op(ctx, 'Mul', y, y))));
unary('Softplus', (ctx, dY, x) => op(ctx, 'Mul', dY, op(ctx, 'Sigmoid', x)));
// erf'(x) = 2/sqrt(pi) exp(-x^2)
unary('Erf', (ctx, dY, x) => {
  const g = op(ctx, 'Exp', op(ctx, 'Neg', op(ctx, 'Mul', x, x)));
  return op(ctx, 'Mul', dY, op(ctx, 'Mul', g, c(ctx, 2 / Math.sqrt(Math.PI), x)));
});
// Elu: Y = alpha (e^x - 1) for x <= 0, so Y' = Y + alpha there.
unary('Elu', (ctx, dY, x, y) =>
  where(ctx, positive(ctx, x), dY, op(ctx, 'Mul', dY, op(ctx, 'Add', y, c(ctx, ctx.node.getFloat('alpha', 1), y)))));
unary('Selu', (ctx, dY, x, y) => {
  const alpha = ctx.node.getFloat('alpha', 1.67326319217681884765625);
  const gamma = ctx.node.getFloat('gamma', 1.05070102214813232421875);
  const neg = op(ctx, 'Add', y, c(ctx, alpha * gamma, y));
  return op(ctx, 'Mul', dY, where(ctx, positive(ctx, x), c(ctx, gamma, x), neg));
});
// HardSigmoid: Y = clip(alpha x + beta, 0, 1): slope alpha strictly inside (0, 1).
unary('HardSigmoid', (ctx, dY, _x, y) => {
  const inside = op(ctx, 'And', positive(ctx, y), op(ctx, 'Less', y, c(ctx, 1, y)));
  const alpha = ctx.node.getFloat('alpha', 0.2);
  return where(ctx, inside, op(ctx, 'Mul', dY, c(ctx, alpha, dY)), c(ctx, 0, dY));
});
// HardSwish: Y = x h(x), h = clip(x/6 + 1/2, 0, 1); Y' = h + x/6 on -3 < x < 3.
unary('HardSwish', (ctx, dY, x) => {
  const h = ctx.b.op1('HardSigmoid', [x], { alpha: float(1 / 6), beta: float(0.5) });
  const inside = op(ctx, 'Less', op(ctx, 'Abs', x), c(ctx, 3, x));
  const slope = op(ctx, 'Add', h, where(ctx, inside, op(ctx, 'Div', x, c(ctx, 6, x)), c(ctx, 0, x)));
  return op(ctx, 'Mul', dY, slope);
});
// Gelu (opset 20): exact Y = x Phi(x), Y' = Phi(x) + x phi(x); tanh form differentiated as written.
unary('Gelu', (ctx, dY, x) => {
  const mul = (a: string, b: string) => op(ctx, 'Mul', a, b);
  const half = c(ctx, 0.5, x);
  const one = c(ctx, 1, x);
  let slope: string;
  if (ctx.node.getString('approximate', 'none') === 'tanh') {
    const k = Math.sqrt(2 / Math.PI);
    const x2 = mul(x, x);
    const inner = mul(c(ctx, k, x), op(ctx, 'Add', x, mul(c(ctx, 0.044715, x), mul(x2, x))));
    const t = op(ctx, 'Tanh', inner);
    const dInner = mul(c(ctx, k, x), op(ctx, 'Add', one, mul(c(ctx, 3 * 0.044715, x), x2)));
    const sech2 = op(ctx, 'Sub', one, mul(t, t));
    slope = op(ctx, 'Add', mul(half, op(ctx, 'Add', one, t)), mul(mul(half, x), mul(sech2, dInner)));
  } else {
    const cdf = mul(half, op(ctx, 'Add', one, op(ctx, 'Erf', mul(x, c(ctx, Math.SQRT1_2, x)))));
    const pdf = mul(c(ctx, 1 / Math.sqrt(2 * Math.PI), x), op(ctx, 'Exp', mul(mul(x, x), c(ctx, -0.5, x))));
    slope = op(ctx, 'Add', cdf, mul(x, pdf));
  }
  return mul(dY, slope);
});

// PRelu: Y = x for x >= 0, slope * x otherwise; slope broadcasts to X (unidirectionally).
// Per example (DP-SGD) the slope's partial is summed over its broadcast axes except the batch.
registerGradient('PRelu', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY) return [];
  const [x, slope] = ctx.node.inputs as [string, string];
  const neg = op(ctx, 'Less', x, c(ctx, 0, x));
  const zero = c(ctx, 0, dY);
  return [
    ctx.needsGrad[0] ? where(ctx, neg, op(ctx, 'Mul', dY, slope), dY) : undefined,
    ctx.needsGrad[1] ? (ctx.perExample[1] ? perExampleUnbroadcast : unbroadcast)(ctx, where(ctx, neg, op(ctx, 'Mul', dY, x), zero), slope) : undefined,
  ];
}, { perExample: true });

// Clip: gradient passes where min <= x <= max. Bounds are inputs from opset 11, attributes
// before; a bound given as a (rarely trainable) input gets the gradient of the clipped part.
registerGradient('Clip', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY) return [];
  const x = ctx.node.inputs[0]!;
  const bound = (i: number, attr: string): string | undefined => {
    if (ctx.opset >= 11) return ctx.node.inputs[i] || undefined;
    const v = ctx.node.getFloat(attr);
    return v === undefined ? undefined : c(ctx, v, x);
  };
  const lo = bound(1, 'min');
  const hi = bound(2, 'max');
  const below = lo ? op(ctx, 'Less', x, lo) : undefined;
  const above = hi ? op(ctx, 'Greater', x, hi) : undefined;
  const zero = c(ctx, 0, dY);
  const out = below && above ? op(ctx, 'Or', below, above) : (below ?? above);
  const sumWhere = (cond: string) => reduceSum(ctx, where(ctx, cond, dY, zero), null, false);
  return [
    ctx.needsGrad[0] ? (out ? where(ctx, out, zero, dY) : dY) : undefined,
    ctx.needsGrad[1] && below ? sumWhere(below) : undefined,
    ctx.needsGrad[2] && above ? sumWhere(above) : undefined,
  ];
});

/**
 * Softmax and LogSoftmax normalize over one axis from opset 13. Before 13 the input is coerced
 * to 2-D at `axis` (default 1) and normalized over all trailing dimensions at once, so the
 * gradient is computed on Flatten(., axis) and reshaped back.
 */
function softmaxFamily(log: boolean) {
  return (ctx: GradContext) => {
    const dY = ctx.gradOutputs[0];
    if (!dY || !ctx.needsGrad[0]) return [];
    const x = ctx.node.inputs[0]!;
    const modern = ctx.opset >= 13;
    const axis = ctx.node.getInt('axis', modern ? -1 : 1);
    const flat = (v: string) => (modern ? v : ctx.b.op1('Flatten', [v], { axis }));
    const g = flat(dY);
    const y = flat(ctx.node.outputs[0]!);
    const axes = [modern ? axis : 1];
    let dX: string;
    if (log) {
      // Y = X - logsumexp: dX = dY - softmax * sum(dY)
      const soft = op(ctx, 'Exp', y);
      dX = op(ctx, 'Sub', g, op(ctx, 'Mul', soft, reduceSum(ctx, g, axes, true)));
    } else {
      // dX = Y * (dY - sum(dY * Y))
      dX = op(ctx, 'Mul', y, op(ctx, 'Sub', g, reduceSum(ctx, op(ctx, 'Mul', g, y), axes, true)));
    }
    return [modern ? dX : reshapeLike(ctx, dX, x)];
  };
}
registerGradient('Softmax', softmaxFamily(false));
registerGradient('LogSoftmax', softmaxFamily(true));
