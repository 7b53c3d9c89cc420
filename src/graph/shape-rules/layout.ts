/**
 * Layout ops that move elements without computing on them: Reshape, Flatten, Transpose,
 * Concat, Split, Slice, Squeeze/Unsqueeze, Gather*, Expand, Tile, Pad. Those found in
 * exported shape arithmetic (Reshape targets built from Shape) also fold their values.
 */
import type { Dim, TensorType } from '../ir.js';
import { registerShapeRule, type ShapeContext } from './registry.js';
import { MAX_FOLDED_ELEMENTS, allKnown, broadcastShapes, dimAdd, dimDiv, dimMul, dimProduct, flatIndex, foldBroadcast, foldMove, isKnown, normAxis, tensor, checkedAxes, sameLengths } from './dims.js';

/** Output shape of Reshape: 0 copies the input dimension (unless allowzero), -1 is inferred. */
export function reshapeShape(input: Dim[] | null, target: Dim[], allowZero: boolean): Dim[] {
  const out = target.map((t, i): Dim => (t === 0 && !allowZero ? (input ? (input[i] ?? null) : null) : t));
  const hole = out.indexOf(-1);
  if (hole < 0) return out;
  out[hole] = null;
  if (!input) return out;
  const others = out.filter((_, i) => i !== hole);
  if (input.includes(null) || others.includes(null)) return out;
  out[hole] = dimDiv(dimProduct(input), dimProduct(others));
  return out;
}

registerShapeRule('Reshape', (ctx) => {
  const input = ctx.shape(0);
  // Opset 1-4 took the target as an attribute.
  const target = ctx.value(1) ?? ctx.node.getInts('shape') ?? null;
  const v = ctx.value(0);
  if (v) ctx.setValue(0, v);
  if (target) return [tensor(ctx.dtype(0), reshapeShape(input, target, ctx.node.getInt('allowzero', 0) === 1))];
  const len = ctx.shape(1)?.[0];
  return [tensor(ctx.dtype(0), isKnown(len ?? null) ? new Array<Dim>(len as number).fill(null) : null)];
});

registerShapeRule('Flatten', (ctx) => {
  const x = ctx.shape(0);
  if (!x) return [tensor(ctx.dtype(0), [null, null])];
  const axis = normAxis(ctx.node.getInt('axis', 1), x.length);
  const v = ctx.value(0);
  if (v) ctx.setValue(0, v);
  return [tensor(ctx.dtype(0), [dimProduct(x.slice(0, axis)), dimProduct(x.slice(axis))])];
});

registerShapeRule('Transpose', (ctx) => {
  const x = ctx.shape(0);
  if (!x) return [tensor(ctx.dtype(0), null)];
  const perm = ctx.node.getInts('perm', x.map((_, i) => x.length - 1 - i));
  const out = perm.map((p) => x[p] ?? null);
  const v = ctx.value(0);
  if (v && allKnown(x)) {
    const folded = foldMove(v, out, (idx) => {
      const src = new Array<number>(x.length);
      perm.forEach((p, k) => (src[p] = idx[k]!));
      return flatIndex(x, src);
    });
    if (folded) ctx.setValue(0, folded);
  }
  return [tensor(ctx.dtype(0), out)];
});

registerShapeRule('Concat', (ctx) => {
  const n = ctx.node.inputs.length;
  const shapes = Array.from({ length: n }, (_, i) => ctx.shape(i));
  const dtype = Array.from({ length: n }, (_, i) => ctx.dtype(i)).find((d) => d !== undefined);
  const known = shapes.filter((s): s is Dim[] => s !== null);
  if (known.length === 0) return [tensor(dtype, null)];
  const rank = known[0]!.length;
  const axis = normAxis(ctx.node.getInt('axis', 0), rank);
  const out: Dim[] = [];
  for (let k = 0; k < rank; k++) {
    if (k === axis) {
      out.push(shapes.reduce<Dim>((acc, s) => (s ? dimAdd(acc, s[k] ?? null) : null), 0));
    } else {
      const dims = known.map((s) => s[k] ?? null);
      out.push(dims.find(isKnown) ?? dims.find((d) => d !== null) ?? null);
    }
  }
  if (rank === 1) {
    const values = Array.from({ length: n }, (_, i) => ctx.value(i));
    if (values.every((v) => v !== null)) ctx.setValue(0, values.flatMap((v) => v!));
  }
  return [tensor(dtype, out)];
});

registerShapeRule('Split', (ctx) => {
  const x = ctx.shape(0);
  const count = ctx.node.outputs.length;
  const dtype = ctx.dtype(0);
  if (!x) return Array.from({ length: count }, () => tensor(dtype, null));
  const axis = normAxis(ctx.node.getInt('axis', 0), x.length);
  const d = x[axis] ?? null;
  let sizes: Dim[];
  const given = (ctx.hasInput(1) ? ctx.ints(1) : null) ?? ctx.node.getInts('split') ?? null;
  if (given) sizes = given;
  else if (ctx.hasInput(1)) sizes = new Array<Dim>(count).fill(null);
  else if (!isKnown(d)) sizes = new Array<Dim>(count).fill(count === 1 ? d : null);
  else if (ctx.node.hasAttr('num_outputs')) {
    // Opset 18: chunks of ceil(d / n), the last one smaller.
    const chunk = Math.ceil(d / count);
    sizes = Array.from({ length: count }, (_, i) => (i < count - 1 ? chunk : d - chunk * (count - 1)));
  } else sizes = new Array<Dim>(count).fill(d % count === 0 ? d / count : null);
  const v = ctx.value(0);
  if (v && x.length === 1 && allKnown(sizes)) {
    let at = 0;
    sizes.forEach((s, i) => {
      ctx.setValue(i, v.slice(at, at + s));
      at += s;
    });
  }
  return sizes.map((s) => tensor(dtype, x.map((dim, k) => (k === axis ? s : dim))));
});

/** Length of one sliced axis, with ONNX's clamping of starts/ends (INT64 limits included). */
export function sliceLength(d: Dim, start: number, end: number, step: number): Dim {
  if (!isKnown(d)) {
    // A symbolic extent survives only a full-range slice.
    if (step === 1 && start === 0 && end >= 2 ** 31 - 1) return d;
    return null;
  }
  if (step === 0) return null;
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), d);
    e = Math.min(Math.max(e, 0), d);
    return Math.max(0, Math.ceil((e - s) / step));
  }
  s = Math.min(Math.max(s, 0), d - 1);
  e = Math.min(Math.max(e, -1), d - 1);
  return Math.max(0, Math.ceil((s - e) / -step));
}

function sliceStart(d: number, start: number, step: number): number {
  const s = start < 0 ? start + d : start;
  return step > 0 ? Math.min(Math.max(s, 0), d) : Math.min(Math.max(s, 0), d - 1);
}

registerShapeRule('Slice', (ctx) => {
  const x = ctx.shape(0);
  const node = ctx.node;
  const fromAttrs = node.hasAttr('starts');
  const starts = fromAttrs ? node.getInts('starts')! : ctx.ints(1);
  const ends = fromAttrs ? node.getInts('ends')! : ctx.ints(2);
  if (!x) return [tensor(ctx.dtype(0), null)];
  if (!starts || !ends) return [tensor(ctx.dtype(0), x.map(() => null))];
  const axesIn = fromAttrs ? node.getInts('axes') : ctx.hasInput(3) ? ctx.ints(3) : undefined;
  if (axesIn === null) return [tensor(ctx.dtype(0), x.map(() => null))];
  const axes = checkedAxes(axesIn ?? starts.map((_, i) => i), x.length);
  sameLengths(axes.length, starts, ends);
  const stepsIn = !fromAttrs && ctx.hasInput(4) ? ctx.ints(4) : undefined;
  if (stepsIn === null) return [tensor(ctx.dtype(0), x.map((d, k) => (axes.includes(k) ? null : d)))];
  const steps = stepsIn ?? starts.map(() => 1);
  sameLengths(axes.length, steps);
  const out = [...x];
  axes.forEach((a, i) => {
    out[a] = sliceLength(x[a] ?? null, starts[i]!, ends[i]!, steps[i]!);
  });
  const v = ctx.value(0);
  if (v && allKnown(x)) {
    const first = x.map(() => 0);
    const stride = x.map(() => 1);
    axes.forEach((a, i) => {
      first[a] = sliceStart(x[a]!, starts[i]!, steps[i]!);
      stride[a] = steps[i]!;
    });
    const folded = foldMove(v, out, (idx) => flatIndex(x, idx.map((j, k) => first[k]! + j * stride[k]!)));
    if (folded) ctx.setValue(0, folded);
  }
  return [tensor(ctx.dtype(0), out)];
});

/** Axes from the 'axes' attribute (before opset 13) or the second input (after). */
function axesOf(ctx: ShapeContext): number[] | null | undefined {
  const attr = ctx.node.getInts('axes');
  if (attr) return attr;
  if (ctx.hasInput(1)) return ctx.ints(1);
  return undefined;
}

registerShapeRule('Squeeze', (ctx) => {
  const x = ctx.shape(0);
  const axes = axesOf(ctx);
  const v = ctx.value(0);
  if (v) ctx.setValue(0, v);
  if (!x) return [tensor(ctx.dtype(0), null)];
  if (axes === null) return [tensor(ctx.dtype(0), null)];
  if (axes === undefined) {
    if (x.some((d) => !isKnown(d))) return [tensor(ctx.dtype(0), null)];
    return [tensor(ctx.dtype(0), x.filter((d) => d !== 1))];
  }
  const drop = new Set(axes.map((a) => normAxis(a, x.length)));
  return [tensor(ctx.dtype(0), x.filter((_, i) => !drop.has(i)))];
});

registerShapeRule('Unsqueeze', (ctx) => {
  const x = ctx.shape(0);
  const axes = axesOf(ctx);
  const v = ctx.value(0);
  if (v) ctx.setValue(0, v);
  if (!x || !axes) return [tensor(ctx.dtype(0), null)];
  const rank = x.length + axes.length;
  const ones = new Set(checkedAxes(axes, rank));
  const out: Dim[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(ones.has(i) ? 1 : (x[k++] ?? null));
  return [tensor(ctx.dtype(0), out)];
});

registerShapeRule('Gather', (ctx) => {
  const data = ctx.shape(0);
  const idx = ctx.shape(1);
  if (!data || !idx) return [tensor(ctx.dtype(0), null)];
  const axis = normAxis(ctx.node.getInt('axis', 0), data.length);
  const out = [...data.slice(0, axis), ...idx, ...data.slice(axis + 1)];
  const dv = ctx.value(0);
  const iv = ctx.ints(1);
  if (dv && iv && allKnown(data) && allKnown(out)) {
    // Row-major: out[outer, idx, inner] = data[outer, idx[.], inner].
    const outer = data.slice(0, axis).reduce((a, b) => a * b, 1);
    const inner = data.slice(axis + 1).reduce((a, b) => a * b, 1);
    const n = data[axis]!;
    const values: Dim[] = [];
    for (let o = 0; o < outer; o++) {
      for (const i of iv) {
        const j = i < 0 ? i + n : i;
        for (let r = 0; r < inner; r++) values.push(dv[(o * n + j) * inner + r] ?? null);
      }
    }
    ctx.setValue(0, values);
  }
  return [tensor(ctx.dtype(0), out)];
});

registerShapeRule('GatherElements', (ctx) => [tensor(ctx.dtype(0), ctx.shape(1))]);

registerShapeRule('GatherND', (ctx) => {
  const data = ctx.shape(0);
  const idx = ctx.shape(1);
  const b = ctx.node.getInt('batch_dims', 0);
  if (!data || !idx) return [tensor(ctx.dtype(0), null)];
  const last = idx[idx.length - 1];
  if (!isKnown(last ?? null)) return [tensor(ctx.dtype(0), null)];
  return [tensor(ctx.dtype(0), [...idx.slice(0, -1), ...data.slice(b + (last as number))])];
});

registerShapeRule('Expand', (ctx) => {
  const x = ctx.shape(0);
  const target = ctx.value(1);
  const len = ctx.shape(1)?.[0];
  const shape = target ?? (isKnown(len ?? null) ? new Array<Dim>(len as number).fill(null) : null);
  if (!shape) return [tensor(ctx.dtype(0), null)];
  const out = broadcastShapes([x, shape]);
  const v = ctx.value(0);
  if (v && allKnown(shape) && shape.reduce((p, q) => p * q, 1) <= MAX_FOLDED_ELEMENTS) {
    const zeros = new Array<Dim>(shape.reduce((p, q) => p * q, 1)).fill(0);
    const full = foldBroadcast([{ shape: x, value: v }, { shape, value: zeros }], ([a]) => a!);
    if (full) ctx.setValue(0, full);
  }
  return [tensor(ctx.dtype(0), out)];
});

registerShapeRule('Tile', (ctx) => {
  const x = ctx.shape(0);
  const reps = ctx.value(1);
  if (!x) return [tensor(ctx.dtype(0), null)];
  return [tensor(ctx.dtype(0), x.map((d, i) => (reps ? dimMul(d, reps[i] ?? null) : null)))];
});

registerShapeRule('Pad', (ctx) => {
  const x = ctx.shape(0);
  if (!x) return [tensor(ctx.dtype(0), null)];
  const pads = ctx.node.getInts('pads') ?? (ctx.hasInput(1) ? ctx.ints(1) : null);
  if (!pads) return [tensor(ctx.dtype(0), x.map(() => null))];
  const axesIn = ctx.hasInput(3) ? ctx.ints(3) : undefined;
  if (axesIn === null) return [tensor(ctx.dtype(0), x.map(() => null))];
  const axes = checkedAxes(axesIn ?? x.map((_, i) => i), x.length);
  sameLengths(2 * axes.length, pads);
  const out = [...x];
  axes.forEach((a, i) => {
    out[a] = dimAdd(x[a] ?? null, pads[i]! + pads[i + axes.length]!);
  });
  return [tensor(ctx.dtype(0), out)];
});

registerShapeRule('CenterCropPad', (ctx) => {
  const x = ctx.shape(0);
  const target = ctx.value(1);
  if (!x) return [tensor(ctx.dtype(0), null)];
  const axes = checkedAxes(ctx.node.getInts('axes', x.map((_, i) => i)), x.length);
  if (target) sameLengths(axes.length, target);
  const out = [...x];
  axes.forEach((a, i) => {
    out[a] = target ? (target[i] ?? null) : null;
  });
  return [tensor(ctx.dtype(0), out)];
});

registerShapeRule('Compress', (ctx) => {
  const x = ctx.shape(0);
  const axis = ctx.node.getInt('axis');
  if (axis === undefined || !x) return [tensor(ctx.dtype(0), [null])];
  const a = normAxis(axis, x.length);
  return [tensor(ctx.dtype(0), x.map((d, i) => (i === a ? null : d)))];
});

registerShapeRule('NonZero', (ctx) => {
  const x = ctx.shape(0);
  return [tensor('int64', [x ? x.length : null, null])];
});

registerShapeRule('Unique', (ctx): (TensorType | null)[] => {
  const x = ctx.shape(0);
  const axis = ctx.node.getInt('axis');
  const y = axis === undefined || !x ? [null] : x.map((d, i) => (i === normAxis(axis, x.length) ? null : d));
  return [tensor(ctx.dtype(0), y), tensor('int64', [null]), tensor('int64', [axis === undefined || !x ? dimProduct(x ?? [null]) : (x[normAxis(axis, x.length)] ?? null)]), tensor('int64', [null])];
});
