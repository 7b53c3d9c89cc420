/**
 * Ops that move data without arithmetic: Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
 * Expand, Tile, Concat, Split, Slice, Pad, Shape, Size, Identity, DepthToSpace, SpaceToDepth,
 * Trilu.
 *
 * Ops whose axes moved from an attribute to an input across opsets (Squeeze, Unsqueeze, Split,
 * Slice, Pad, Reshape) read the input when it is present and the attribute otherwise: the two
 * forms never coexist in a valid node, so this needs no opset check.
 */
import { input, opError, type OpContext, type OpTable } from '../op.js';
import {
  broadcastShapes, broadcastTo, normAxis, sizeOf, stridesOf, toInts, transpose, type Arr,
} from '../tensor.js';

function reshaped(x: Arr, dims: number[]): Arr {
  return { dims, data: x.data, dtype: x.dtype };
}

/** Integers from an optional input, else from an attribute, else undefined. */
function intsFrom(ctx: OpContext, inputIndex: number, attr: string): number[] | undefined {
  const t = ctx.inputs[inputIndex];
  if (t) return toInts(t);
  return ctx.node.getInts(attr);
}

function reshape(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const spec = intsFrom(ctx, 1, 'shape');
  if (!spec) throw opError(ctx, 'needs a shape');
  const allowZero = ctx.node.getInt('allowzero', 0) !== 0;
  const dims = spec.map((d, i) => (d === 0 && !allowZero ? x.dims[i]! : d));
  const minus = dims.indexOf(-1);
  if (minus >= 0) {
    const known = dims.reduce((p, d, i) => (i === minus ? p : p * d), 1);
    dims[minus] = known === 0 ? 0 : sizeOf(x.dims) / known;
  }
  if (sizeOf(dims) !== x.data.length || dims.some((d) => !Number.isInteger(d) || d < 0)) {
    throw opError(ctx, `cannot reshape [${x.dims.join(', ')}] to [${spec.join(', ')}]`);
  }
  return [reshaped(x, dims)];
}

function flatten(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const r = x.dims.length;
  let axis = ctx.node.getInt('axis', 1);
  if (axis < 0) axis += r;
  return [reshaped(x, [sizeOf(x.dims.slice(0, axis)), sizeOf(x.dims.slice(axis))])];
}

function squeeze(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const axes = intsFrom(ctx, 1, 'axes');
  const drop = axes ? new Set(axes.map((a) => normAxis(a, x.dims.length))) : new Set(x.dims.flatMap((d, i) => (d === 1 ? [i] : [])));
  for (const a of drop) if (x.dims[a] !== 1) throw opError(ctx, `cannot squeeze axis ${a} of size ${x.dims[a]}`);
  return [reshaped(x, x.dims.filter((_, i) => !drop.has(i)))];
}

function unsqueeze(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const axes = intsFrom(ctx, 1, 'axes');
  if (!axes) throw opError(ctx, 'needs axes');
  const rank = x.dims.length + axes.length;
  const add = new Set(axes.map((a) => normAxis(a, rank)));
  const dims: number[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) dims.push(add.has(i) ? 1 : x.dims[k++]!);
  return [reshaped(x, dims)];
}

function transposeOp(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const perm = ctx.node.getInts('perm') ?? x.dims.map((_, i) => x.dims.length - 1 - i);
  return [transpose(x, perm)];
}

function expand(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const dims = broadcastShapes(x.dims, toInts(input(ctx, 1)));
  return [{ dims, data: Float64Array.from(broadcastTo(x, dims)), dtype: x.dtype }];
}

function tile(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const reps = toInts(input(ctx, 1));
  const dims = x.dims.map((d, i) => d * reps[i]!);
  const st = stridesOf(x.dims);
  // Each output index reads input index (i mod d) on every axis.
  const data = new Float64Array(sizeOf(dims));
  const idx = new Array<number>(dims.length).fill(0);
  for (let k = 0; k < data.length; k++) {
    let off = 0;
    for (let a = 0; a < dims.length; a++) off += (idx[a]! % x.dims[a]!) * st[a]!;
    data[k] = x.data[off]!;
    for (let a = dims.length - 1; a >= 0; a--) {
      if (++idx[a]! < dims[a]!) break;
      idx[a] = 0;
    }
  }
  return [{ dims, data, dtype: x.dtype }];
}

function concat(ctx: OpContext): Arr[] {
  const xs = ctx.inputs.filter((x): x is Arr => x !== undefined);
  const first = xs[0]!;
  const axis = normAxis(ctx.node.getInt('axis', 0), first.dims.length);
  const dims = [...first.dims];
  dims[axis] = xs.reduce((s, x) => s + x.dims[axis]!, 0);
  const outer = sizeOf(dims.slice(0, axis));
  const inner = sizeOf(dims.slice(axis + 1));
  const data = new Float64Array(sizeOf(dims));
  const dtype = xs.some((x) => x.dtype === 'float64') ? 'float64' : first.dtype;
  let pos = 0;
  for (let o = 0; o < outer; o++) {
    for (const x of xs) {
      const block = x.dims[axis]! * inner;
      data.set(x.data.subarray(o * block, (o + 1) * block), pos);
      pos += block;
    }
  }
  return [{ dims, data, dtype }];
}

/** Copies the slab [begin, begin + len) along `axis`. */
function sliceAxis(x: Arr, axis: number, begin: number, len: number): Arr {
  const dims = [...x.dims];
  dims[axis] = len;
  const outer = sizeOf(x.dims.slice(0, axis));
  const inner = sizeOf(x.dims.slice(axis + 1));
  const data = new Float64Array(sizeOf(dims));
  for (let o = 0; o < outer; o++) {
    const src = (o * x.dims[axis]! + begin) * inner;
    data.set(x.data.subarray(src, src + len * inner), o * len * inner);
  }
  return { dims, data, dtype: x.dtype };
}

function split(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const axis = normAxis(ctx.node.getInt('axis', 0), x.dims.length);
  const n = ctx.node.outputs.length;
  const dim = x.dims[axis]!;
  let sizes = intsFrom(ctx, 1, 'split');
  if (!sizes) {
    const numOutputs = ctx.node.getInt('num_outputs');
    // num_outputs (opset 18) allows a smaller last chunk; older opsets need equal parts.
    const chunk = numOutputs !== undefined ? Math.ceil(dim / numOutputs) : dim / n;
    if (!Number.isInteger(chunk)) throw opError(ctx, `axis of size ${dim} does not split into ${n} equal parts`);
    sizes = Array.from({ length: n }, (_, i) => Math.max(0, Math.min(chunk, dim - i * chunk)));
  }
  if (sizes.reduce((a, b) => a + b, 0) !== dim) throw opError(ctx, `split sizes [${sizes.join(', ')}] do not add up to ${dim}`);
  let begin = 0;
  return sizes.map((len) => {
    const part = sliceAxis(x, axis, begin, len);
    begin += len;
    return part;
  });
}

/** Gathers the elements whose index on each axis is given by `picks[axis]` (a list per axis). */
function pickAlongAxes(x: Arr, picks: number[][]): Arr {
  const dims = picks.map((p) => p.length);
  const st = stridesOf(x.dims);
  const data = new Float64Array(sizeOf(dims));
  const idx = new Array<number>(dims.length).fill(0);
  for (let k = 0; k < data.length; k++) {
    let off = 0;
    for (let a = 0; a < dims.length; a++) off += picks[a]![idx[a]!]! * st[a]!;
    data[k] = x.data[off]!;
    for (let a = dims.length - 1; a >= 0; a--) {
      if (++idx[a]! < dims[a]!) break;
      idx[a] = 0;
    }
  }
  return { dims, data, dtype: x.dtype };
}

function slice(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const r = x.dims.length;
  const starts = intsFrom(ctx, 1, 'starts');
  const ends = intsFrom(ctx, 2, 'ends');
  if (!starts || !ends) throw opError(ctx, 'needs starts and ends');
  const axes = (intsFrom(ctx, 3, 'axes') ?? starts.map((_, i) => i)).map((a) => normAxis(a, r));
  const steps = ctx.inputs[4] ? toInts(ctx.inputs[4]) : starts.map(() => 1);
  const picks = x.dims.map((d) => Array.from({ length: d }, (_, i) => i));
  axes.forEach((axis, i) => {
    const d = x.dims[axis]!;
    const step = steps[i]!;
    if (step === 0) throw opError(ctx, 'slice step cannot be 0');
    let s = starts[i]!;
    let e = ends[i]!;
    if (s < 0) s += d;
    if (e < 0) e += d;
    // Clamping (ONNX Slice): forward steps stay in [0, d]; backward steps in [-1, d - 1].
    if (step > 0) {
      s = Math.min(Math.max(s, 0), d);
      e = Math.min(Math.max(e, 0), d);
    } else {
      s = Math.min(Math.max(s, 0), d - 1);
      e = Math.min(Math.max(e, -1), d - 1);
    }
    const list: number[] = [];
    for (let k = s; step > 0 ? k < e : k > e; k += step) list.push(k);
    picks[axis] = list;
  });
  return [pickAlongAxes(x, picks)];
}

/** Source index along an axis of length n for padded position i, or -1 for the constant. */
function padSource(mode: string, i: number, n: number): number {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case 'edge':
      return i < 0 ? 0 : n - 1;
    case 'reflect': {
      if (n === 1) return 0;
      const period = 2 * (n - 1);
      const m = ((i % period) + period) % period;
      return m < n ? m : period - m;
    }
    case 'wrap':
      return ((i % n) + n) % n;
    default:
      return -1;
  }
}

function pad(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const r = x.dims.length;
  const mode = ctx.node.getString('mode', 'constant');
  const raw = intsFrom(ctx, 1, 'pads') ?? intsFrom(ctx, 1, 'paddings');
  if (!raw) throw opError(ctx, 'needs pads');
  const value = ctx.inputs[2] ? ctx.inputs[2].data[0]! : ctx.node.getFloat('value', 0);
  const axes = (ctx.inputs[3] ? toInts(ctx.inputs[3]) : x.dims.map((_, i) => i)).map((a) => normAxis(a, r));
  const before = new Array<number>(r).fill(0);
  const after = new Array<number>(r).fill(0);
  axes.forEach((a, i) => {
    before[a] = raw[i]!;
    after[a] = raw[i + axes.length]!;
  });
  const dims = x.dims.map((d, a) => d + before[a]! + after[a]!);
  // Negative pads crop: position o reads source o - before, which then starts inside the input.
  const src = dims.map((d, a) => Array.from({ length: d }, (_, o) => padSource(mode, o - before[a]!, x.dims[a]!)));
  const st = stridesOf(x.dims);
  const data = new Float64Array(sizeOf(dims));
  const idx = new Array<number>(r).fill(0);
  for (let k = 0; k < data.length; k++) {
    let off = 0;
    for (let a = 0; a < r; a++) {
      const s = src[a]![idx[a]!]!;
      if (s < 0) {
        off = -1;
        break;
      }
      off += s * st[a]!;
    }
    data[k] = off < 0 ? value : x.data[off]!;
    for (let a = r - 1; a >= 0; a--) {
      if (++idx[a]! < dims[a]!) break;
      idx[a] = 0;
    }
  }
  return [{ dims, data, dtype: x.dtype }];
}

function shape(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const r = x.dims.length;
  const clampIdx = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
  const start = clampIdx(ctx.node.getInt('start', 0));
  const end = clampIdx(ctx.node.getInt('end', r));
  const dims = x.dims.slice(start, Math.max(start, end));
  return [{ dims: [dims.length], data: Float64Array.from(dims), dtype: 'int64' }];
}

function depthToSpace(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const b = ctx.node.getInt('blocksize', 0);
  const [n, c, h, w] = x.dims as [number, number, number, number];
  const cb = c / (b * b);
  const crd = ctx.node.getString('mode', 'DCR') === 'CRD';
  const t = crd
    ? transpose(reshaped(x, [n, cb, b, b, h, w]), [0, 1, 4, 2, 5, 3])
    : transpose(reshaped(x, [n, b, b, cb, h, w]), [0, 3, 4, 1, 5, 2]);
  return [reshaped(t, [n, cb, h * b, w * b])];
}

function spaceToDepth(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const b = ctx.node.getInt('blocksize', 0);
  const [n, c, h, w] = x.dims as [number, number, number, number];
  const t = transpose(reshaped(x, [n, c, h / b, b, w / b, b]), [0, 3, 5, 1, 2, 4]);
  return [reshaped(t, [n, c * b * b, h / b, w / b])];
}

function trilu(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const k = ctx.inputs[1] ? ctx.inputs[1].data[0]! : 0;
  const upper = ctx.node.getInt('upper', 1) !== 0;
  const r = x.dims.length;
  const rows = x.dims[r - 2]!;
  const cols = x.dims[r - 1]!;
  const data = Float64Array.from(x.data);
  for (let m = 0; m < data.length; m += rows * cols) {
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const keep = upper ? j - i >= k : j - i <= k;
        if (!keep) data[m + i * cols + j] = 0;
      }
    }
  }
  return [{ dims: [...x.dims], data, dtype: x.dtype }];
}

export const shapeOps: OpTable = {
  Reshape: reshape,
  Flatten: flatten,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Transpose: transposeOp,
  Expand: expand,
  Tile: tile,
  Concat: concat,
  Split: split,
  Slice: slice,
  Pad: pad,
  Shape: shape,
  Size: (ctx) => [{ dims: [], data: Float64Array.of(input(ctx, 0).data.length), dtype: 'int64' }],
  Identity: (ctx) => [input(ctx, 0)],
  DepthToSpace: depthToSpace,
  SpaceToDepth: spaceToDepth,
  Trilu: trilu,
};
