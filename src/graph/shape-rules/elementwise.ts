/**
 * Elementwise ops: unary ops keep their input's type, binary and variadic ops broadcast
 * numpy-style, comparisons give bool. Ops that appear in exported shape arithmetic also fold
 * small constant operands so Reshape targets computed at run time become known.
 */
import type { Dim, TensorType } from '../ir.js';
import { dtypeName, type DType } from '../tensor.js';
import { registerShapeRule, type ShapeContext } from './registry.js';
import { broadcastShapes, dimDiv, dimMul, foldBroadcast, isIntegerDType, isKnown, liftNumeric, tensor } from './dims.js';

const UNARY_SAME = [
  'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'ThresholdedRelu', 'Clip', 'Sigmoid', 'Tanh', 'Erf',
  'Sqrt', 'Exp', 'Log', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Sign', 'Sin', 'Cos', 'Tan',
  'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh', 'Softmax', 'LogSoftmax',
  'Hardmax', 'HardSigmoid', 'HardSwish', 'Gelu', 'Softplus', 'Softsign', 'Mish', 'Shrink', 'LRN',
  'BitwiseNot', 'Swish', 'MeanVarianceNormalization', 'LpNormalization', 'CumSum', 'Trilu',
  'ReverseSequence', 'Scatter', 'ScatterElements', 'ScatterND', 'Identity', 'Neg', 'Abs',
];

function unaryFold(op: string): ((v: Dim) => Dim) | undefined {
  switch (op) {
    case 'Identity': return (v) => v;
    case 'Neg': return (v) => (isKnown(v) ? -v : null);
    case 'Abs': return (v) => (isKnown(v) ? Math.abs(v) : v);
    case 'Floor': return (v) => (isKnown(v) ? Math.floor(v) : v);
    case 'Ceil': return (v) => (isKnown(v) ? Math.ceil(v) : v);
    case 'Round': return (v) => (isKnown(v) ? roundHalfEven(v) : v);
    case 'Sign': return (v) => (isKnown(v) ? Math.sign(v) : null);
    case 'Relu': return (v) => (isKnown(v) ? Math.max(0, v) : v);
    default: return undefined;
  }
}

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function sameAsInput(ctx: ShapeContext): (TensorType | null)[] {
  const t = ctx.type(0);
  const fold = unaryFold(ctx.node.opType);
  const v = ctx.value(0);
  if (fold && v) ctx.setValue(0, v.map(fold));
  return [t ? { dtype: t.dtype, shape: t.shape ? [...t.shape] : null } : null];
}

registerShapeRule(UNARY_SAME, sameAsInput);

/** Elementwise ops whose output dtype differs from the input's but keeps its shape. */
registerShapeRule(['IsNaN', 'IsInf'], (ctx) => [tensor('bool', ctx.shape(0))]);
registerShapeRule('Not', (ctx) => {
  const v = ctx.value(0);
  if (v) ctx.setValue(0, v.map((x) => (isKnown(x) ? (x ? 0 : 1) : null)));
  return [tensor('bool', ctx.shape(0))];
});

/** Cast: dtype from 'to'; values convert with C truncation for integer targets. */
export function castValue(v: Dim, to: DType): Dim {
  if (!isKnown(v)) return to === 'bool' ? null : v;
  if (to === 'bool') return v !== 0 ? 1 : 0;
  if (isIntegerDType(to)) return Math.trunc(v);
  if (to === 'float32') return Math.fround(v);
  return v;
}
registerShapeRule('Cast', (ctx) => {
  const to = dtypeName(ctx.node.getInt('to', 0));
  const v = ctx.value(0);
  if (v) ctx.setValue(0, v.map((x) => castValue(x, to)));
  return [tensor(to, ctx.shape(0))];
});
registerShapeRule('CastLike', (ctx) => {
  const to = ctx.dtype(1);
  const v = ctx.value(0);
  if (v && to) ctx.setValue(0, v.map((x) => castValue(x, to)));
  return [tensor(to, ctx.shape(0))];
});

registerShapeRule('Dropout', (ctx) => {
  const s = ctx.shape(0);
  return [tensor(ctx.dtype(0), s), tensor('bool', s)];
});

registerShapeRule('PRelu', (ctx) => [tensor(ctx.dtype(0), broadcastShapes([ctx.shape(0), ctx.shape(1)]))]);

type Folder = (args: Dim[]) => Dim;

function binaryFolder(op: string, integer: boolean): Folder | undefined {
  switch (op) {
    case 'Add': return liftNumeric((a, b) => a + b, (a, b) => (a === 0 ? b : b === 0 ? a : null));
    case 'Sub': return liftNumeric((a, b) => a - b, (a, b) => (b === 0 ? a : a !== null && a === b ? 0 : null));
    case 'Mul': return liftNumeric((a, b) => a * b, dimMul);
    case 'Div': return liftNumeric((a, b) => (integer ? Math.trunc(a / b) : a / b), (a, b) => (integer ? dimDiv(a, b) : null));
    case 'Mod': return liftNumeric((a, b) => a - b * Math.floor(a / b));
    case 'Pow': return liftNumeric((a, b) => a ** b);
    case 'Max': return liftNumeric(Math.max, (a, b) => (isKnown(b) && b <= 0 ? a : isKnown(a) && a <= 0 ? b : a !== null && a === b ? a : null));
    case 'Min': return liftNumeric(Math.min, (a, b) => (a !== null && a === b ? a : null));
    case 'Equal': return liftNumeric((a, b) => (a === b ? 1 : 0), (a, b) => symbolicCompare(a, b, 'eq'));
    case 'Less': return liftNumeric((a, b) => (a < b ? 1 : 0), (a, b) => symbolicCompare(a, b, 'lt'));
    case 'Greater': return liftNumeric((a, b) => (a > b ? 1 : 0), (a, b) => symbolicCompare(b, a, 'lt'));
    case 'LessOrEqual': return liftNumeric((a, b) => (a <= b ? 1 : 0));
    case 'GreaterOrEqual': return liftNumeric((a, b) => (a >= b ? 1 : 0));
    case 'And': return liftNumeric((a, b) => (a && b ? 1 : 0));
    case 'Or': return liftNumeric((a, b) => (a || b ? 1 : 0));
    case 'Xor': return liftNumeric((a, b) => ((a ? 1 : 0) ^ (b ? 1 : 0)));
    default: return undefined;
  }
}

/** Dimensions are never negative, so a symbol compares with a negative number. */
function symbolicCompare(a: Dim, b: Dim, how: 'eq' | 'lt'): Dim {
  if (how === 'eq') {
    if (a !== null && a === b) return 1;
    if ((typeof a === 'string' && isKnown(b) && b < 0) || (typeof b === 'string' && isKnown(a) && a < 0)) return 0;
    return null;
  }
  if (a !== null && a === b) return 0;
  if (typeof a === 'string' && isKnown(b) && b <= 0) return 0; // sym < b<=0 never
  if (typeof b === 'string' && isKnown(a) && a < 0) return 1;
  return null;
}

function broadcastRule(outDType: (ctx: ShapeContext) => DType | undefined) {
  return (ctx: ShapeContext): (TensorType | null)[] => {
    const n = ctx.node.inputs.length;
    const shapes = Array.from({ length: n }, (_, i) => ctx.shape(i));
    const out = broadcastShapes(shapes);
    const dtype = outDType(ctx);
    const folder = binaryFolder(ctx.node.opType, isIntegerDType(ctx.dtype(0)));
    if (folder && n === 2) {
      const v = foldBroadcast([0, 1].map((i) => ({ shape: ctx.shape(i), value: ctx.value(i) })), folder);
      if (v) ctx.setValue(0, v);
    } else if (folder && n > 2 && (ctx.node.opType === 'Max' || ctx.node.opType === 'Min')) {
      const v = foldBroadcast(shapes.map((s, i) => ({ shape: s, value: ctx.value(i) })), (args) => args.reduce((a, b) => folder([a, b])));
      if (v) ctx.setValue(0, v);
    } else if (n === 1) {
      const v = ctx.value(0);
      if (v && ['Max', 'Min', 'Sum', 'Mean'].includes(ctx.node.opType)) ctx.setValue(0, v);
    }
    return [tensor(dtype, out)];
  };
}

const firstDType = (ctx: ShapeContext) => ctx.dtype(0) ?? ctx.dtype(1);
registerShapeRule(
  ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'BitShift', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor', 'Sum', 'Mean', 'Max', 'Min'],
  broadcastRule(firstDType),
);
registerShapeRule(
  ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor'],
  broadcastRule(() => 'bool'),
);

registerShapeRule('Where', (ctx) => {
  const shapes = [0, 1, 2].map((i) => ctx.shape(i));
  const v = foldBroadcast(shapes.map((s, i) => ({ shape: s, value: ctx.value(i) })), ([c, a, b]) =>
    c === null || typeof c === 'string' ? (a !== null && a === b ? a : null) : c ? a! : b!);
  if (v) ctx.setValue(0, v);
  return [tensor(ctx.dtype(1) ?? ctx.dtype(2), broadcastShapes(shapes))];
});
