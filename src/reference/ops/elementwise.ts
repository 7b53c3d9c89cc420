/**
 * Elementwise ops: unary math and activations, binary arithmetic and comparisons with numpy
 * broadcasting, variadic Sum/Mean/Max/Min, Where, Clip, PRelu, Cast/CastLike.
 */
import type { Node } from '../../graph/ir.js';
import { dtypeName } from '../../graph/tensor.js';
import { input, opError, type OpContext, type OpImpl, type OpTable } from '../op.js';
import { broadcastShapes, broadcastTo, refDType, roundHalfEven, type Arr, type RefDType } from '../tensor.js';
import { erf, erfc } from '../special.js';

type Unary = (v: number) => number;

/** An op applying `f` (built from the node's attributes) to every element. */
function unary(make: (node: Node) => Unary, out: 'same' | 'float' | 'bool' = 'float'): OpImpl {
  return (ctx) => {
    const x = input(ctx, 0);
    const f = make(ctx.node);
    const data = new Float64Array(x.data.length);
    for (let i = 0; i < data.length; i++) data[i] = f(x.data[i]!);
    const dtype: RefDType = out === 'same' ? x.dtype : out === 'bool' ? 'bool' : 'float64';
    return [{ dims: [...x.dims], data, dtype }];
  };
}
const plain = (f: Unary) => unary(() => f);
const sameType = (f: Unary) => unary(() => f, 'same');

function sigmoid(v: number): number {
  if (v >= 0) return 1 / (1 + Math.exp(-v));
  const e = Math.exp(v);
  return e / (1 + e);
}
/** log(1 + e^v) without overflow for large v or loss of digits for very negative v. */
function softplus(v: number): number {
  return v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v));
}

const SELU_ALPHA = 1.67326319217681884765625;
const SELU_GAMMA = 1.05070102214813232421875;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

const unaryOps: OpTable = {
  Relu: sameType((v) => (v > 0 ? v : 0)),
  Neg: sameType((v) => -v),
  Abs: sameType((v) => Math.abs(v)),
  Sign: sameType((v) => Math.sign(v)),
  Floor: plain(Math.floor),
  Ceil: plain(Math.ceil),
  Round: plain(roundHalfEven),
  Exp: plain(Math.exp),
  Log: plain(Math.log),
  Sqrt: plain(Math.sqrt),
  Reciprocal: plain((v) => 1 / v),
  Sigmoid: plain(sigmoid),
  Tanh: plain(Math.tanh),
  Erf: plain(erf),
  Sin: plain(Math.sin), Cos: plain(Math.cos), Tan: plain(Math.tan),
  Asin: plain(Math.asin), Acos: plain(Math.acos), Atan: plain(Math.atan),
  Sinh: plain(Math.sinh), Cosh: plain(Math.cosh),
  Asinh: plain(Math.asinh), Acosh: plain(Math.acosh), Atanh: plain(Math.atanh),
  Softplus: plain(softplus),
  Softsign: plain((v) => v / (1 + Math.abs(v))),
  Mish: plain((v) => v * Math.tanh(softplus(v))),
  LeakyRelu: unary((n) => {
    const a = n.getFloat('alpha', 0.01);
    return (v) => (v >= 0 ? v : a * v);
  }),
  Elu: unary((n) => {
    const a = n.getFloat('alpha', 1);
    return (v) => (v >= 0 ? v : a * Math.expm1(v));
  }),
  Celu: unary((n) => {
    const a = n.getFloat('alpha', 1);
    return (v) => Math.max(0, v) + Math.min(0, a * Math.expm1(v / a));
  }),
  Selu: unary((n) => {
    const a = n.getFloat('alpha', SELU_ALPHA);
    const g = n.getFloat('gamma', SELU_GAMMA);
    return (v) => g * (v > 0 ? v : a * Math.expm1(v));
  }),
  ThresholdedRelu: unary((n) => {
    const a = n.getFloat('alpha', 1);
    return (v) => (v > a ? v : 0);
  }),
  HardSigmoid: unary((n) => {
    const a = n.getFloat('alpha', 0.2);
    const b = n.getFloat('beta', 0.5);
    return (v) => Math.max(0, Math.min(1, a * v + b));
  }),
  HardSwish: plain((v) => v * Math.max(0, Math.min(1, v / 6 + 0.5))),
  Shrink: unary((n) => {
    const bias = n.getFloat('bias', 0);
    const lambd = n.getFloat('lambd', 0.5);
    return (v) => (v < -lambd ? v + bias : v > lambd ? v - bias : 0);
  }, 'same'),
  Gelu: unary((n) => {
    if (n.getString('approximate', 'none') === 'tanh') {
      return (v) => 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
    }
    // 1 + erf(v/sqrt2) = erfc(-v/sqrt2), exact in the far negative tail too.
    return (v) => 0.5 * v * erfc(-v / Math.SQRT2);
  }),
  IsNaN: unary(() => (v) => (Number.isNaN(v) ? 1 : 0), 'bool'),
  IsInf: unary((n) => {
    const neg = n.getInt('detect_negative', 1) !== 0;
    const pos = n.getInt('detect_positive', 1) !== 0;
    return (v) => ((pos && v === Infinity) || (neg && v === -Infinity) ? 1 : 0);
  }, 'bool'),
  Not: unary(() => (v) => (v ? 0 : 1), 'bool'),
};

type Binary = (a: number, b: number) => number;

/** Broadcasts a and b and combines them elementwise. */
export function broadcastBinary(a: Arr, b: Arr, f: Binary, dtype: RefDType): Arr {
  const dims = broadcastShapes(a.dims, b.dims);
  const x = broadcastTo(a, dims);
  const y = broadcastTo(b, dims);
  const data = new Float64Array(x.length);
  for (let i = 0; i < data.length; i++) data[i] = f(x[i]!, y[i]!);
  return { dims, data, dtype };
}

function numericType(a: Arr, b: Arr): RefDType {
  return a.dtype === 'float64' || b.dtype === 'float64' ? 'float64' : 'int64';
}

/** A binary op; `intF` replaces `f` when both operands are integers. */
function binary(f: Binary, opts: { out?: 'numeric' | 'bool' | 'first'; intF?: Binary } = {}): OpImpl {
  return (ctx) => {
    const a = input(ctx, 0);
    const b = input(ctx, 1);
    const type = numericType(a, b);
    const fn = type === 'int64' && opts.intF ? opts.intF : f;
    const out: RefDType = opts.out === 'bool' ? 'bool' : opts.out === 'first' ? a.dtype : type;
    return [broadcastBinary(a, b, fn, out)];
  };
}

/** Python's modulo: the result takes the sign of the divisor. */
function floorMod(a: number, b: number): number {
  const r = a % b;
  return r !== 0 && (r < 0) !== (b < 0) ? r + b : r;
}

const binaryOps: OpTable = {
  Add: binary((a, b) => a + b),
  Sub: binary((a, b) => a - b),
  Mul: binary((a, b) => a * b),
  Div: binary((a, b) => a / b, { intF: (a, b) => Math.trunc(a / b) }),
  Pow: binary((a, b) => a ** b, { out: 'first', intF: (a, b) => Math.trunc(a ** b) }),
  Mod: (ctx) => {
    const fmod = ctx.node.getInt('fmod', 0) !== 0;
    return [broadcastBinary(input(ctx, 0), input(ctx, 1), fmod ? (a, b) => a % b : floorMod, numericType(input(ctx, 0), input(ctx, 1)))];
  },
  Equal: binary((a, b) => (a === b ? 1 : 0), { out: 'bool' }),
  Less: binary((a, b) => (a < b ? 1 : 0), { out: 'bool' }),
  LessOrEqual: binary((a, b) => (a <= b ? 1 : 0), { out: 'bool' }),
  Greater: binary((a, b) => (a > b ? 1 : 0), { out: 'bool' }),
  GreaterOrEqual: binary((a, b) => (a >= b ? 1 : 0), { out: 'bool' }),
  And: binary((a, b) => (a && b ? 1 : 0), { out: 'bool' }),
  Or: binary((a, b) => (a || b ? 1 : 0), { out: 'bool' }),
  Xor: binary((a, b) => ((a ? 1 : 0) !== (b ? 1 : 0) ? 1 : 0), { out: 'bool' }),
  PRelu: binary((x, slope) => (x < 0 ? slope * x : x), { out: 'first' }),
};

/** Sum/Mean/Max/Min over any number of broadcast inputs. */
function variadic(f: Binary, finish?: (v: number, count: number) => number): OpImpl {
  return (ctx) => {
    const xs = ctx.inputs.filter((x): x is Arr => x !== undefined);
    if (xs.length === 0) throw opError(ctx, 'needs at least one input');
    let acc: Arr = { ...xs[0]!, data: Float64Array.from(xs[0]!.data) };
    for (const x of xs.slice(1)) acc = broadcastBinary(acc, x, f, numericType(acc, x));
    if (finish) for (let i = 0; i < acc.data.length; i++) acc.data[i] = finish(acc.data[i]!, xs.length);
    return [acc];
  };
}

// NaN propagates through Max/Min as in numpy.maximum and onnxruntime.
const nanMax = (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b));
const nanMin = (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b));

const variadicOps: OpTable = {
  Sum: variadic((a, b) => a + b),
  Mean: variadic((a, b) => a + b, (v, n) => v / n),
  Max: variadic(nanMax),
  Min: variadic(nanMin),
};

function where(ctx: OpContext): Arr[] {
  const c = input(ctx, 0);
  const x = input(ctx, 1);
  const y = input(ctx, 2);
  const dims = broadcastShapes(c.dims, x.dims, y.dims);
  const cd = broadcastTo(c, dims);
  const xd = broadcastTo(x, dims);
  const yd = broadcastTo(y, dims);
  const data = new Float64Array(cd.length);
  for (let i = 0; i < data.length; i++) data[i] = cd[i] ? xd[i]! : yd[i]!;
  return [{ dims, data, dtype: numericType(x, y) === 'float64' ? 'float64' : x.dtype }];
}

/** Clip: bounds from inputs (opset 11+) or from the min/max attributes (opset 6-10). */
function clip(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const bound = (i: number, attr: string, fallback: number) => {
    const t = ctx.inputs[i];
    if (t) return t.data[0]!;
    return ctx.node.getFloat(attr, fallback);
  };
  const lo = bound(1, 'min', -Infinity);
  const hi = bound(2, 'max', Infinity);
  const data = new Float64Array(x.data.length);
  for (let i = 0; i < data.length; i++) {
    const v = x.data[i]!;
    data[i] = Number.isNaN(v) ? v : Math.min(hi, Math.max(lo, v));
  }
  return [{ dims: [...x.dims], data, dtype: x.dtype }];
}

/** Converts values to a target dtype: integers truncate toward zero, bool is "non-zero". */
export function castTo(x: Arr, to: RefDType): Arr {
  const data = Float64Array.from(x.data);
  if (to === 'int64') for (let i = 0; i < data.length; i++) data[i] = Number.isNaN(data[i]!) ? 0 : Math.trunc(data[i]!);
  if (to === 'bool') for (let i = 0; i < data.length; i++) data[i] = data[i] ? 1 : 0;
  return { dims: [...x.dims], data, dtype: to };
}

const castOps: OpTable = {
  // Cast to float32/float16 does not round: the interpreter is a float64 reference throughout.
  Cast: (ctx) => [castTo(input(ctx, 0), refDType(dtypeName(ctx.node.getInt('to', 0))))],
  CastLike: (ctx) => [castTo(input(ctx, 0), input(ctx, 1).dtype)],
};

export const elementwiseOps: OpTable = {
  ...unaryOps,
  ...binaryOps,
  ...variadicOps,
  ...castOps,
  Where: where,
  Clip: clip,
};
