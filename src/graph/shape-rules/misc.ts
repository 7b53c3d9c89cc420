/**
 * Resizing, losses, quantization, windows and control flow (If/Loop read their bodies'
 * declared output types).
 */
import { tensorTypeOf, type Dim, type TensorType } from '../ir.js';
import { dtypeName, type DType } from '../tensor.js';
import type { onnx } from '../onnx.js';
import { registerShapeRule, type ShapeContext } from './registry.js';
import { isKnown, normAxis, tensor } from './dims.js';

/** Resize (opset 10+) and Upsample: sizes given, or floor(dim * scale) in float32 as runtimes do. */
function resizeRule(ctx: ShapeContext): (TensorType | null)[] {
  const x = ctx.shape(0);
  const node = ctx.node;
  const dtype = ctx.dtype(0);
  if (!x) return [tensor(dtype, null)];
  const legacy = node.opType === 'Upsample' || node.inputs.length === 2;
  const scales = node.getFloats('scales') ?? (legacy ? ctx.ints(1) : ctx.hasInput(2) ? ctx.ints(2) : null);
  const sizes = !legacy && ctx.hasInput(3) ? ctx.ints(3) : null;
  const axes = node.getInts('axes', x.map((_, i) => i)).map((a) => normAxis(a, x.length));
  const out: Dim[] = [...x];
  if (sizes && sizes.length > 0) {
    const policy = node.getString('keep_aspect_ratio_policy', 'stretch');
    if (policy === 'stretch') axes.forEach((a, i) => (out[a] = sizes[i] ?? null));
    else {
      const dims = axes.map((a) => x[a] ?? null);
      if (!dims.every(isKnown)) return [tensor(dtype, x.map((d, i) => (axes.includes(i) ? null : d)))];
      const ratios = axes.map((_, i) => sizes[i]! / (dims[i] as number));
      const scale = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
      axes.forEach((a, i) => (out[a] = Math.round(scale * (dims[i] as number))));
    }
    return [tensor(dtype, out)];
  }
  if (!scales || scales.length === 0) return [tensor(dtype, x.map((d, i) => (axes.includes(i) ? null : d)))];
  axes.forEach((a, i) => {
    const d = x[a] ?? null;
    const s = scales[i]!;
    out[a] = isKnown(d) ? Math.floor(Math.fround(d * Math.fround(s))) : s === 1 ? d : null;
  });
  return [tensor(dtype, out)];
}
registerShapeRule(['Resize', 'Upsample'], resizeRule);

/** Loss of NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss: per element or reduced. */
function lossShape(ctx: ShapeContext): Dim[] | null {
  if (ctx.node.getString('reduction', 'mean') !== 'none') return [];
  const target = ctx.shape(1);
  if (target) return [...target];
  const x = ctx.shape(0);
  return x ? [x[0]!, ...x.slice(2)] : null;
}
registerShapeRule('NegativeLogLikelihoodLoss', (ctx) => [tensor(ctx.dtype(0), lossShape(ctx))]);
registerShapeRule('SoftmaxCrossEntropyLoss', (ctx) => [tensor(ctx.dtype(0), lossShape(ctx)), tensor(ctx.dtype(0), ctx.shape(0))]);

registerShapeRule('QuantizeLinear', (ctx) => {
  const code = ctx.node.getInt('output_dtype', 0);
  const dtype: DType = code ? dtypeName(code) : (ctx.dtype(2) ?? 'uint8');
  return [tensor(dtype, ctx.shape(0))];
});
registerShapeRule('DequantizeLinear', (ctx) => [tensor(ctx.dtype(1) ?? 'float32', ctx.shape(0))]);
registerShapeRule('DynamicQuantizeLinear', (ctx) => [tensor('uint8', ctx.shape(0)), tensor('float32', []), tensor('uint8', [])]);

registerShapeRule(['HannWindow', 'HammingWindow', 'BlackmanWindow'], (ctx) => {
  const size = ctx.value(0)?.[0] ?? null;
  return [tensor(dtypeName(ctx.node.getInt('output_datatype', 1)), [isKnown(size) ? size : null])];
});

registerShapeRule('AffineGrid', (ctx) => {
  const size = ctx.value(1);
  if (!size) return [tensor(ctx.dtype(0), null)];
  const spatial = size.length - 2;
  return [tensor(ctx.dtype(0), [size[0]!, ...size.slice(2), spatial])];
});

registerShapeRule('NonMaxSuppression', () => [tensor('int64', [null, 3])]);

registerShapeRule(['RMSNormalization', 'RotaryEmbedding'], (ctx) => [tensor(ctx.dtype(0), ctx.shape(0))]);

function declaredOutputs(g: onnx.IGraphProto | null | undefined): (TensorType | null)[] {
  return (g?.output ?? []).map((o) => {
    try {
      return tensorTypeOf(o.type as onnx.TypeProto | null);
    } catch {
      return null;
    }
  });
}

/** Dimensions two shapes agree on; null elsewhere (and when the ranks differ). */
function agree(a: Dim[] | null, b: Dim[] | null): Dim[] | null {
  if (!a || !b || a.length !== b.length) return null;
  return a.map((d, k) => (d === b[k] ? d : null));
}

/** If: the branches' declared output types, dimension by dimension where they agree. */
registerShapeRule('If', (ctx) => {
  const a = declaredOutputs(ctx.node.attr('then_branch')?.g);
  const b = declaredOutputs(ctx.node.attr('else_branch')?.g);
  return ctx.node.outputs.map((_, i) => {
    const x = a[i] ?? null;
    const y = b[i] ?? null;
    if (!x || !y) return x ?? y;
    return tensor(x.dtype !== 'undefined' ? x.dtype : y.dtype, agree(x.shape, y.shape));
  });
});

/** Loop: carried values keep their initial types; scan outputs gain a leading iteration axis. */
registerShapeRule('Loop', (ctx) => {
  const body = declaredOutputs(ctx.node.attr('body')?.g);
  const carried = ctx.node.inputs.length - 2;
  return ctx.node.outputs.map((_, i) => {
    if (i < carried) {
      const init = ctx.type(2 + i);
      const decl = body[1 + i] ?? null;
      if (!init || !decl) return init ? tensor(init.dtype, init.shape ? init.shape.map(() => null) : null) : decl;
      return tensor(init.dtype, agree(init.shape, decl.shape));
    }
    const decl = body[1 + i] ?? null;
    return decl ? tensor(decl.dtype, decl.shape ? [null, ...decl.shape] : null) : null;
  });
});
