/** Ops that create tensors: Constant, ConstantOfShape, Range, EyeLike. */
import { dtypeName } from '../../graph/tensor.js';
import { input, opError, type OpContext, type OpTable } from '../op.js';
import { fromProto, refDType, sizeOf, toInts, type Arr } from '../tensor.js';

function constant(ctx: OpContext): Arr[] {
  const n = ctx.node;
  const t = n.getTensor('value');
  if (t) return [fromProto(t)];
  const f = n.getFloat('value_float');
  if (f !== undefined) return [{ dims: [], data: Float64Array.of(f), dtype: 'float64' }];
  const fs = n.getFloats('value_floats');
  if (fs !== undefined) return [{ dims: [fs.length], data: Float64Array.from(fs), dtype: 'float64' }];
  const i = n.getInt('value_int');
  if (i !== undefined) return [{ dims: [], data: Float64Array.of(i), dtype: 'int64' }];
  const is = n.getInts('value_ints');
  if (is !== undefined) return [{ dims: [is.length], data: Float64Array.from(is), dtype: 'int64' }];
  throw opError(ctx, 'only numeric value, value_float(s) and value_int(s) constants are supported');
}

function constantOfShape(ctx: OpContext): Arr[] {
  const dims = toInts(input(ctx, 0));
  const t = ctx.node.getTensor('value');
  const v = t ? fromProto(t) : { data: Float64Array.of(0), dtype: 'float64' as const };
  return [{ dims, data: new Float64Array(sizeOf(dims)).fill(v.data[0]!), dtype: v.dtype }];
}

function range(ctx: OpContext): Arr[] {
  const start = input(ctx, 0);
  const limit = input(ctx, 1).data[0]!;
  const delta = input(ctx, 2).data[0]!;
  const s = start.data[0]!;
  const n = Math.max(Math.ceil((limit - s) / delta), 0);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = s + i * delta;
  return [{ dims: [n], data, dtype: start.dtype }];
}

function eyeLike(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const k = ctx.node.getInt('k', 0);
  const code = ctx.node.getInt('dtype');
  const dtype = code !== undefined ? refDType(dtypeName(code)) : x.dtype;
  const [rows, cols] = x.dims as [number, number];
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const j = i + k;
    if (j >= 0 && j < cols) data[i * cols + j] = 1;
  }
  return [{ dims: [rows, cols], data, dtype }];
}

export const constantOps: OpTable = {
  Constant: constant,
  ConstantOfShape: constantOfShape,
  Range: range,
  EyeLike: eyeLike,
};
