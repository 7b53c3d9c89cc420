/**
 * Ops that create tensors from attributes or from another tensor's shape: Constant,
 * ConstantOfShape, Shape, Size, Range, random generators, EyeLike, OneHot. Shape and Size are
 * where folding starts: their values are the (possibly symbolic) dimensions of their input.
 */
import type { Dim } from '../ir.js';
import type { TensorProto } from '../onnx.js';
import { dtypeName, elementCount, tensorDims, tensorToArray, type DType } from '../tensor.js';
import { registerShapeRule, type ShapeContext } from './registry.js';
import { MAX_FOLDED_ELEMENTS, dimProduct, isKnown, normAxis, tensor } from './dims.js';

/** Contents of a small numeric tensor, or null (too big, strings, external data, exotic type). */
export function tensorValues(t: TensorProto): Dim[] | null {
  if (elementCount(tensorDims(t)) > MAX_FOLDED_ELEMENTS) return null;
  try {
    const a = tensorToArray(t);
    const out: Dim[] = [];
    for (let i = 0; i < a.length; i++) out.push(Number(a[i]));
    return out;
  } catch {
    return null;
  }
}

registerShapeRule('Constant', (ctx) => {
  const n = ctx.node;
  const t = n.getTensor('value');
  if (t) {
    const v = tensorValues(t);
    if (v) ctx.setValue(0, v);
    return [tensor(dtypeName(t.dataType), tensorDims(t))];
  }
  const sparse = n.attr('sparse_value')?.sparseTensor;
  if (sparse) return [tensor(dtypeName(sparse.values?.dataType ?? 0), (sparse.dims ?? []).map((d) => Number(d)))];
  const f = n.getFloat('value_float');
  if (n.hasAttr('value_float') && f !== undefined) {
    ctx.setValue(0, [f]);
    return [tensor('float32', [])];
  }
  const fs = n.getFloats('value_floats');
  if (fs) {
    ctx.setValue(0, fs);
    return [tensor('float32', [fs.length])];
  }
  if (n.hasAttr('value_int')) {
    ctx.setValue(0, [n.getInt('value_int', 0)]);
    return [tensor('int64', [])];
  }
  const is = n.getInts('value_ints');
  if (is) {
    ctx.setValue(0, is);
    return [tensor('int64', [is.length])];
  }
  if (n.hasAttr('value_string')) return [tensor('string', [])];
  const ss = n.attr('value_strings');
  if (ss) return [tensor('string', [ss.strings.length])];
  return [null];
});

registerShapeRule('ConstantOfShape', (ctx) => {
  const shape = ctx.value(0);
  const t = ctx.node.getTensor('value');
  const dtype: DType = t ? dtypeName(t.dataType) : 'float32';
  if (!shape) {
    const len = ctx.shape(0)?.[0];
    return [tensor(dtype, isKnown(len ?? null) ? new Array<Dim>(len as number).fill(null) : null)];
  }
  const count = dimProduct(shape);
  if (isKnown(count) && count <= MAX_FOLDED_ELEMENTS) {
    const fill = t ? (tensorValues(t)?.[0] ?? null) : 0;
    ctx.setValue(0, new Array<Dim>(count).fill(fill));
  }
  return [tensor(dtype, [...shape])];
});

registerShapeRule('Shape', (ctx) => {
  const x = ctx.shape(0);
  if (!x) return [tensor('int64', [null])];
  const rank = x.length;
  const clamp = (a: number) => Math.min(Math.max(a < 0 ? a + rank : a, 0), rank);
  const start = clamp(ctx.node.getInt('start', 0));
  const end = clamp(ctx.node.getInt('end', rank));
  const dims = x.slice(start, Math.max(start, end));
  ctx.setValue(0, dims);
  return [tensor('int64', [dims.length])];
});

registerShapeRule('Size', (ctx) => {
  const x = ctx.shape(0);
  if (x) ctx.setValue(0, [dimProduct(x)]);
  return [tensor('int64', [])];
});

registerShapeRule('Range', (ctx) => {
  const [start, limit, delta] = [0, 1, 2].map((i) => ctx.value(i)?.[0] ?? null);
  const dtype = ctx.dtype(0) ?? ctx.dtype(1);
  // arange(n) over a symbolic n, as position embeddings do.
  if (start === 0 && delta === 1 && typeof limit === 'string') return [tensor(dtype, [limit])];
  if (!isKnown(start ?? null) || !isKnown(limit ?? null) || !isKnown(delta ?? null) || delta === 0) return [tensor(dtype, [null])];
  const s = start as number;
  const d = delta as number;
  const n = Math.max(Math.ceil(((limit as number) - s) / d), 0);
  if (n <= MAX_FOLDED_ELEMENTS) ctx.setValue(0, Array.from({ length: n }, (_, i) => s + i * d));
  return [tensor(dtype, [n])];
});

function dtypeAttr(ctx: ShapeContext, fallback: DType | undefined): DType | undefined {
  const code = ctx.node.getInt('dtype');
  return code === undefined ? fallback : dtypeName(code);
}

registerShapeRule(['RandomNormal', 'RandomUniform'], (ctx) => [tensor(dtypeAttr(ctx, 'float32'), ctx.node.getInts('shape') ?? null)]);
registerShapeRule(['RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'EyeLike'], (ctx) => [tensor(dtypeAttr(ctx, ctx.dtype(0)), ctx.shape(0))]);

registerShapeRule('Multinomial', (ctx) => {
  const x = ctx.shape(0);
  return [tensor(dtypeAttr(ctx, 'int32'), [x ? (x[0] ?? null) : null, ctx.node.getInt('sample_size', 1)])];
});

registerShapeRule('OneHot', (ctx) => {
  const idx = ctx.shape(0);
  const depth = ctx.value(1)?.[0] ?? null;
  const dtype = ctx.dtype(2);
  if (!idx) return [tensor(dtype, null)];
  const axis = normAxis(ctx.node.getInt('axis', -1), idx.length + 1);
  const out: Dim[] = [...idx];
  out.splice(axis, 0, isKnown(depth) ? Math.trunc(depth) : null);
  return [tensor(dtype, out)];
});

