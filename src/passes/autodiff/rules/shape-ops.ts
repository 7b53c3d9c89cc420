/**
 * Gradient rules of ops that move, copy or select elements without arithmetic. Their gradients
 * put dY back where each element came from: reshape back, transpose back, slice back, and sum
 * where the forward copied (Expand, Tile, Gather with repeated indices).
 *
 * Shapes are taken from the forward tensors at run time (Shape(X)) wherever possible, so symbolic
 * batch dimensions need no static shape.
 */
import { registerGradient } from '../registry.js';
import type { GradContext, GradRule } from '../rule.js';
import { unbroadcast } from '../unbroadcast.js';
import {
  castLike, constantNumbers, dtypeOf, isFloatType, normAxes, reduceSum, reshapeLike, scalarLike,
  unsqueeze, zerosLike, zerosOfShape,
} from '../emit.js';
import { dtypeCode, dtypeName } from '../../../graph/tensor.js';
import { perExampleReshape } from '../per-example.js';
import { RpOnnxError } from '../../../errors.js';

const INT64 = dtypeCode('int64');

/**
 * A rule for one-input ops whose gradient is a function of dY alone. With `perExample` the op is
 * a parameter-path op (DP-SGD, see ../per-example.ts): applied to a parameter, its gradient
 * arrives as [N, ...outShape] and `perExample` maps it to [N, ...inShape].
 */
function passThrough(opTypes: string | string[], f: (ctx: GradContext, dY: string) => string, perExample?: (ctx: GradContext, dY: string) => string): void {
  registerGradient(opTypes, (ctx) => {
    const dY = ctx.gradOutputs[0];
    if (!dY || !ctx.needsGrad[0]) return [];
    return [ctx.perExample[0] && perExample ? perExample(ctx, dY) : f(ctx, dY)];
  }, { parameterPath: perExample !== undefined });
}

/** The static rank of `value`, or a clear error naming what needs it. */
function requireRank(ctx: GradContext, value: string): number {
  const s = ctx.shapeOf(value);
  if (!s) throw new RpOnnxError(`cannot differentiate ${ctx.node.opType} node '${ctx.node.name}': the rank of '${value}' is unknown; run shape inference on the model first`);
  return s.length;
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
function inversePerm(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => { inv[p] = i; });
  return inv;
}
function slice(ctx: GradContext, x: string, starts: string | number[], ends: string | number[], axes: number[]): string {
  const b = ctx.b;
  if (ctx.opset < 10) return b.op1('Slice', [x], { starts: starts as number[], ends: ends as number[], axes });
  const v = (a: string | number[], name: string) => (typeof a === 'string' ? a : b.int64s(name, a));
  return b.op1('Slice', [x, v(starts, 'starts'), v(ends, 'ends'), b.int64s('axes', axes)]);
}

passThrough(['Identity'], (_ctx, dY) => dY, (_ctx, dY) => dY);
passThrough(
  ['Flatten', 'Reshape', 'Squeeze', 'Unsqueeze'],
  (ctx, dY) => reshapeLike(ctx, dY, ctx.node.inputs[0]!),
  (ctx, dY) => perExampleReshape(ctx, dY, ctx.node.inputs[0]!),
);
passThrough('Transpose', (ctx, dY) => {
  const perm = ctx.node.getInts('perm');
  // No perm reverses the axes, which is its own inverse.
  return ctx.b.op1('Transpose', [dY], { perm: perm ? inversePerm(perm) : undefined });
}, (ctx, dY) => {
  // Per example the batch axis leads: forward perm [0, ...perm + 1], inverted.
  const rank = requireRank(ctx, ctx.node.inputs[0]!);
  const perm = ctx.node.getInts('perm') ?? range(0, rank).reverse();
  return ctx.b.op1('Transpose', [dY], { perm: inversePerm([0, ...perm.map((p) => p + 1)]) });
});
passThrough('Expand', (ctx, dY) => unbroadcast(ctx, dY, ctx.node.inputs[0]!));

// Cast: the gradient goes back in the input's float type; integer inputs get none.
registerGradient('Cast', (ctx) => {
  const dY = ctx.gradOutputs[0];
  const x = ctx.node.inputs[0]!;
  const inType = dtypeOf(ctx, x);
  const outType = dtypeName(ctx.node.getInt('to', 0));
  if (!dY || !ctx.needsGrad[0] || !isFloatType(outType) || (inType && !isFloatType(inType))) return [];
  return [castLike(ctx, dY, x)];
}, { parameterPath: true });

// CastLike (emitted by the rules when a type is not recorded): the gradient goes back in the
// input's type; the `like` operand only gives a type.
registerGradient('CastLike', (ctx) => {
  const dY = ctx.gradOutputs[0];
  const x = ctx.node.inputs[0]!;
  const inType = dtypeOf(ctx, x);
  if (!dY || !ctx.needsGrad[0] || (inType && !isFloatType(inType))) return [];
  return [castLike(ctx, dY, x), undefined];
});

// Concat: each input's gradient is its slab of dY along the axis, offsets known statically
// when every input's size along the axis is, else summed from Shape() at run time.
registerGradient('Concat', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY) return [];
  const b = ctx.b;
  const inputs = ctx.node.inputs;
  const axis = ctx.node.getInt('axis', 0);
  const sizes = inputs.map((x) => {
    const s = ctx.shapeOf(x);
    return s ? s[normAxes([axis], s.length)[0]!] : undefined;
  });
  if (sizes.every((d): d is number => typeof d === 'number')) {
    let start = 0;
    return inputs.map((_, i) => {
      const [s, e] = [start, (start += sizes[i]!)];
      return ctx.needsGrad[i] ? slice(ctx, dY, [s], [e], [axis]) : undefined;
    });
  }
  let start = b.int64s('start', [0]);
  return inputs.map((x, i) => {
    const end = b.op1('Add', [start, b.op1('Gather', [b.op1('Shape', [x]), b.int64s('axis', [axis])])]);
    const g = ctx.needsGrad[i] ? slice(ctx, dY, start, end, [axis]) : undefined;
    start = end;
    return g;
  });
});

// Split: concatenate the outputs' gradients, zeros for outputs that get none.
registerGradient('Split', (ctx) => {
  if (!ctx.needsGrad[0] || ctx.gradOutputs.every((g) => !g)) return [];
  const parts = ctx.node.outputs.map((y, i) => ctx.gradOutputs[i] ?? zerosLike(ctx, y));
  return [ctx.b.op1('Concat', parts, { axis: ctx.node.getInt('axis', 0) })];
});

// Slice: dY is scattered back into zeros. With constant unit-step bounds and static sizes that
// is a Pad; otherwise the same Slice is applied to a tensor of flat indices of X, which covers
// steps, negative and clamped bounds and run-time bounds, and dY is scattered to those indices.
registerGradient('Slice', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY || !ctx.needsGrad[0]) return [];
  const b = ctx.b;
  const n = ctx.node;
  const x = n.inputs[0]!;
  const pads = slicePads(ctx);
  if (pads) {
    return [ctx.opset >= 11 ? b.op1('Pad', [dY, b.int64s('pads', pads)]) : b.op1('Pad', [dY], { pads })];
  }
  if (ctx.opset < 11) {
    throw new RpOnnxError(`cannot differentiate Slice node '${n.name}' at opset ${ctx.opset}: with steps, run-time bounds or unknown sizes it needs opset >= 11 (Range, ScatterElements); convert the model`);
  }
  const size = b.op1('Size', [x]);
  const i64 = (v: number) => b.initializer('i', [], BigInt64Array.of(BigInt(v)), 'int64');
  const flatIndex = b.op1('Reshape', [b.op1('Range', [i64(0), size, i64(1)]), b.op1('Shape', [x])]);
  const picked = b.op1('Slice', [flatIndex, ...n.inputs.slice(1)]);
  const flat = b.int64s('flat', [-1]);
  const zeros = zerosOfShape(ctx, unsqueeze(ctx, size, [0]), dY);
  const scattered = b.op1('ScatterElements', [zeros, b.op1('Reshape', [picked, flat]), b.op1('Reshape', [dY, flat])], { axis: 0 });
  return [reshapeLike(ctx, scattered, x)];
});

/** Pad amounts that undo a unit-step Slice with constant bounds over static dims, else undefined. */
function slicePads(ctx: GradContext): number[] | undefined {
  const n = ctx.node;
  const shape = ctx.shapeOf(n.inputs[0]!);
  if (!shape) return undefined;
  const arg = (i: number, attr: string) => (ctx.opset >= 10 ? (n.inputs[i] ? constantNumbers(ctx, n.inputs[i]!) : undefined) : n.getInts(attr));
  const starts = arg(1, 'starts');
  const ends = arg(2, 'ends');
  if (!starts || !ends) return undefined;
  const axes = normAxes(arg(3, 'axes') ?? range(0, starts.length), shape.length);
  if (ctx.opset >= 10 && n.inputs[3] && !constantNumbers(ctx, n.inputs[3])) return undefined;
  const steps = ctx.opset >= 10 && n.inputs[4] ? constantNumbers(ctx, n.inputs[4]) : starts.map(() => 1);
  if (!steps || steps.some((s) => s !== 1)) return undefined;
  const pads = new Array<number>(2 * shape.length).fill(0);
  for (let k = 0; k < axes.length; k++) {
    const a = axes[k]!;
    const dim = shape[a];
    if (typeof dim !== 'number') return undefined;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
    const s = clamp(starts[k]!);
    const e = Math.max(clamp(ends[k]!), s);
    pads[a] = s;
    pads[a + shape.length] = dim - e;
  }
  return pads;
}

// Pad (constant mode): padding with negated amounts crops the padding off dY again (and pads
// back what a negative amount cropped). The pad value's gradient is what fell on the padding.
registerGradient('Pad', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY) return [];
  const b = ctx.b;
  const n = ctx.node;
  const mode = n.getString('mode', 'constant');
  if (mode !== 'constant') {
    throw new RpOnnxError(`cannot differentiate Pad node '${n.name}': mode '${mode}' has no gradient rule yet; use mode 'constant'`);
  }
  let dX: string;
  if (ctx.opset < 11) {
    dX = b.op1('Pad', [dY], { pads: n.getInts('pads', []).map((p) => -p) });
  } else {
    const pads = n.inputs[1]!;
    const known = constantNumbers(ctx, pads);
    const negated = known ? b.int64s('pads', known.map((p) => -p)) : b.op1('Neg', [pads]);
    dX = b.op1('Pad', n.inputs[3] ? [dY, negated, '', n.inputs[3]] : [dY, negated]);
  }
  const value = ctx.opset >= 11 ? n.inputs[2] : undefined;
  const dValue = value && ctx.needsGrad[2]
    ? reshapeLike(ctx, b.op1('Sub', [reduceSum(ctx, dY, null, false), reduceSum(ctx, dX, null, false)]), value)
    : undefined;
  return [ctx.needsGrad[0] ? dX : undefined, undefined, dValue];
});

// Tile: view dY as [r0, d0, r1, d1, ...] and sum over the repeat axes.
registerGradient('Tile', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY || !ctx.needsGrad[0]) return [];
  const b = ctx.b;
  const [x, repeats] = ctx.node.inputs as [string, string];
  const rank = requireRank(ctx, x);
  const column = (v: string) => unsqueeze(ctx, v, [1]);
  const pairs = b.op1('Concat', [column(repeats), column(b.op1('Shape', [x]))], { axis: 1 });
  const split = b.op1('Reshape', [dY, b.op1('Reshape', [pairs, b.int64s('flat', [-1])])]);
  return [reduceSum(ctx, split, range(0, rank).map((i) => 2 * i), false)];
});

// Gather: dX[.., idx[i], ..] += dY[.., i, ..]. The gathered axis and the index axes are moved to
// the front, dY is scatter-added into zeros (ScatterND with reduction 'add', opset >= 16, which
// onnxruntime accumulates over repeated and negative indices), and moved back. Before opset 16
// the scatter is a one-hot matrix product.
registerGradient('Gather', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY || !ctx.needsGrad[0]) return [];
  const b = ctx.b;
  const [x, idx] = ctx.node.inputs as [string, string];
  const r = requireRank(ctx, x);
  const a = normAxes([ctx.node.getInt('axis', 0)], r)[0]!;
  const q = a === 0 ? 0 : requireRank(ctx, idx);
  const dyPerm = [...range(a, a + q), ...range(0, a), ...range(a + q, r + q - 1)];
  const xPerm = [a, ...range(0, a), ...range(a + 1, r)];
  const dYT = a === 0 ? dY : b.op1('Transpose', [dY], { perm: dyPerm });
  const xShape = b.op1('Shape', [x]);
  const shapeT = a === 0 ? xShape : b.op1('Gather', [xShape, b.int64s('perm', xPerm)]);
  let scattered: string;
  if (ctx.opset >= 16) {
    const index = unsqueeze(ctx, b.op1('Cast', [idx], { to: INT64 }), [-1]);
    scattered = b.op1('ScatterND', [zerosOfShape(ctx, shapeT, dY), index, dYT], { reduction: 'add' });
  } else {
    const depth = b.op1('Gather', [xShape, b.int64s('axis', [a])]);
    const values = castLike(ctx, b.initializer('onoff', [2], Float32Array.of(0, 1), 'float32'), dY);
    const oh2 = b.op1('OneHot', [b.op1('Reshape', [idx, b.int64s('flat', [-1])]), depth, values], { axis: -1 });
    const rows = b.op1('Slice', [b.op1('Shape', [oh2]), b.int64s('s', [0]), b.int64s('e', [1])]);
    const dY2 = b.op1('Reshape', [dYT, b.op1('Concat', [rows, b.int64s('cols', [-1])], { axis: 0 })]);
    const product = b.op1('MatMul', [b.op1('Transpose', [oh2], { perm: [1, 0] }), dY2]);
    scattered = b.op1('Reshape', [product, shapeT]);
  }
  return [a === 0 ? scattered : b.op1('Transpose', [scattered], { perm: inversePerm(xPerm) })];
});

// GatherElements: scatter-add dY into zeros at the same indices (needs reduction, opset >= 16).
registerGradient('GatherElements', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY || !ctx.needsGrad[0]) return [];
  if (ctx.opset < 16) {
    throw new RpOnnxError(`cannot differentiate GatherElements node '${ctx.node.name}' below opset 16 (needs ScatterElements with reduction); convert the model to opset >= 16`);
  }
  const [x, idx] = ctx.node.inputs as [string, string];
  return [ctx.b.op1('ScatterElements', [zerosLike(ctx, x), idx, dY], { axis: ctx.node.getInt('axis', 0), reduction: 'add' })];
});

// Dropout: the identity at inference (no training_mode, or a constant false, or opset < 12,
// whose runtimes treat it as inference). In training mode dX = dY * mask / (1 - ratio), with
// the mask output added to the forward node when the model did not ask for it. A training_mode
// fed at run time selects the scale there (in inference the mask is all true and the scale 1).
registerGradient('Dropout', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY || !ctx.needsGrad[0]) return [];
  const n = ctx.node;
  const training = ctx.opset >= 12 ? n.inputs[2] : undefined;
  if (!training || constantNumbers(ctx, training)?.[0] === 0) return [dY];
  const b = ctx.b;
  if (!n.outputs[1]) {
    n.outputs[1] = b.graph.uniqueName(`${n.name || 'Dropout'}_mask`);
    b.graph.invalidate();
  }
  const ratio = n.inputs[1];
  const keep = ratio ? b.op1('Sub', [scalarLike(ctx, 1, ratio), ratio]) : scalarLike(ctx, 0.5, dY);
  let scale = castLike(ctx, b.op1('Reciprocal', [keep]), dY);
  if (constantNumbers(ctx, training)?.[0] !== 1) scale = b.op1('Where', [training, scale, scalarLike(ctx, 1, dY)]);
  return [b.op1('Mul', [b.op1('Mul', [dY, castLike(ctx, n.outputs[1]!, dY)]), scale])];
});

// Where: each branch gets dY where it was chosen.
registerGradient('Where', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY) return [];
  const [cond, x, y] = ctx.node.inputs as [string, string, string];
  const zero = scalarLike(ctx, 0, dY);
  return [
    undefined,
    ctx.needsGrad[1] ? unbroadcast(ctx, ctx.b.op1('Where', [cond, dY, zero]), x) : undefined,
    ctx.needsGrad[2] ? unbroadcast(ctx, ctx.b.op1('Where', [cond, zero, dY]), y) : undefined,
  ];
});

// Ops whose outputs are integers, booleans, shapes, constants or piecewise-constant functions
// (zero gradient almost everywhere), and random generators: nothing flows back.
const noGradient: GradRule = () => [];
registerGradient([
  'Constant', 'ConstantOfShape', 'Shape', 'Size', 'Range', 'EyeLike',
  'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf',
  'ArgMax', 'ArgMin', 'NonZero', 'Sign', 'Floor', 'Ceil', 'Round',
  'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'Multinomial',
], noGradient);
