/**
 * Small opset-aware emitters shared by the gradient rules: constants of an operand's float
 * type, masks cast to float, zeros, and the ops whose signature moved from attributes to inputs
 * (ReduceSum at opset 13, Squeeze/Unsqueeze at 13). Rules call these so each rule reads as its
 * math, not as opset bookkeeping.
 */
import type { GradContext } from './rule.js';
import type { Node } from '../../graph/ir.js';
import type { TensorProto } from '../../graph/onnx.js';
import { dtypeCode, makeTensor, tensorToArray, type DType } from '../../graph/tensor.js';

const FLOAT_TYPES: ReadonlySet<DType> = new Set<DType>(['float32', 'float64', 'float16', 'bfloat16']);

/**
 * The element type of a value when the graph records it (inputs, value_info, initializers).
 * An output gradient of the node has the type of its forward output.
 */
export function dtypeOf(ctx: GradContext, value: string): DType | undefined {
  const known = (v: string) => {
    const t = ctx.b.graph.typeOf(v)?.dtype;
    return t === undefined || t === 'undefined' ? undefined : t;
  };
  const i = ctx.gradOutputs.indexOf(value);
  return known(value) ?? (i >= 0 ? known(ctx.node.outputs[i]!) : undefined);
}

export function isFloatType(t: DType): boolean {
  return FLOAT_TYPES.has(t);
}

/**
 * Casts `x` to the element type of `like`: Cast when that type is recorded, CastLike (opset 15)
 * when it is not, and float32 (by far the common case) before opset 15.
 */
export function castLike(ctx: GradContext, x: string, like: string): string {
  const t = dtypeOf(ctx, like);
  if (t === undefined && ctx.opset >= 15) return ctx.b.op1('CastLike', [x, like]);
  return ctx.b.op1('Cast', [x], { to: dtypeCode(t ?? 'float32') });
}

/** A rank-0 constant with the float type of `like`. */
export function scalarLike(ctx: GradContext, value: number, like: string): string {
  const t = dtypeOf(ctx, like);
  if (t === 'float64') return ctx.b.initializer('c', [], Float64Array.of(value), 'float64');
  const s = ctx.b.scalar('c', value);
  if (t === 'float32' || (t === undefined && ctx.opset < 15)) return s;
  return castLike(ctx, s, like);
}

/** Zeros of the run-time shape `shape` (a 1-D int64 value) in the float type of `like`. */
export function zerosOfShape(ctx: GradContext, shape: string, like: string): string {
  const t = dtypeOf(ctx, like);
  const wide = t === 'float64';
  const value = makeTensor('value', [1], wide ? new Float64Array(1) : new Float32Array(1), wide ? 'float64' : 'float32');
  const z = ctx.b.op1('ConstantOfShape', [shape], { value });
  return t === 'float32' || wide || (t === undefined && ctx.opset < 15) ? z : castLike(ctx, z, like);
}

/** Zeros with the shape and float type of `like`. */
export function zerosLike(ctx: GradContext, like: string): string {
  return zerosOfShape(ctx, ctx.b.op1('Shape', [like]), like);
}

/** ReduceSum over `axes` (null: every axis), with axes as attribute before opset 13. */
export function reduceSum(ctx: GradContext, x: string, axes: readonly number[] | null, keepdims: boolean): string {
  const keep = keepdims ? 1 : 0;
  if (ctx.opset >= 13) {
    return ctx.b.op1('ReduceSum', axes === null ? [x] : [x, ctx.b.int64s('axes', axes)], { keepdims: keep });
  }
  return ctx.b.op1('ReduceSum', [x], { keepdims: keep, axes: axes === null ? undefined : [...axes] });
}

export function unsqueeze(ctx: GradContext, x: string, axes: readonly number[]): string {
  if (axes.length === 0) return x;
  return ctx.opset >= 13
    ? ctx.b.op1('Unsqueeze', [x, ctx.b.int64s('axes', axes)])
    : ctx.b.op1('Unsqueeze', [x], { axes: [...axes] });
}

export function squeeze(ctx: GradContext, x: string, axes: readonly number[]): string {
  if (axes.length === 0) return x;
  return ctx.opset >= 13
    ? ctx.b.op1('Squeeze', [x, ctx.b.int64s('axes', axes)])
    : ctx.b.op1('Squeeze', [x], { axes: [...axes] });
}

/** Reshape `x` to the runtime shape of `like` (independent of symbolic batch dimensions). */
export function reshapeLike(ctx: GradContext, x: string, like: string): string {
  return ctx.b.op1('Reshape', [x, ctx.b.op1('Shape', [like])]);
}

/** The tensor behind a value when it is a compile-time constant (initializer or Constant node). */
export function constantTensor(ctx: GradContext, value: string): TensorProto | undefined {
  if (!value) return undefined;
  const g = ctx.b.graph;
  const init = g.initializers.get(value);
  if (init) return init;
  const p: Node | undefined = g.producer(value);
  if (p?.opType !== 'Constant') return undefined;
  const t = p.getTensor('value');
  if (t) return t;
  const ints = p.getInts('value_ints') ?? (p.hasAttr('value_int') ? [p.getInt('value_int', 0)] : undefined);
  if (ints) return makeTensor(value, [ints.length], BigInt64Array.from(ints.map(BigInt)), 'int64');
  const fl = p.getFloats('value_floats') ?? (p.hasAttr('value_float') ? [p.getFloat('value_float', 0)] : undefined);
  return fl ? makeTensor(value, [fl.length], Float32Array.from(fl), 'float32') : undefined;
}

/** The numbers of a constant value, or undefined when the value is computed at run time. */
export function constantNumbers(ctx: GradContext, value: string): number[] | undefined {
  const t = constantTensor(ctx, value);
  return t ? Array.from(tensorToArray(t), Number) : undefined;
}

/** Normalizes possibly negative axes against a rank. */
export function normAxes(axes: readonly number[], rank: number): number[] {
  return axes.map((a) => (a < 0 ? a + rank : a));
}
