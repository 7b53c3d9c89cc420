/**
 * Indexing ops: Gather, GatherElements, GatherND, ScatterElements (and its deprecated alias
 * Scatter), ScatterND, OneHot, NonZero. Negative indices count from the end of their axis.
 */
import { input, opError, type OpContext, type OpTable } from '../op.js';
import { normAxis, sizeOf, stridesOf, type Arr } from '../tensor.js';

function wrapIndex(ctx: OpContext, i: number, n: number): number {
  const j = i < 0 ? i + n : i;
  if (j < 0 || j >= n) throw opError(ctx, `index ${i} is out of range for an axis of size ${n}`);
  return j;
}

function gather(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const ind = input(ctx, 1);
  const axis = normAxis(ctx.node.getInt('axis', 0), x.dims.length);
  const n = x.dims[axis]!;
  const dims = [...x.dims.slice(0, axis), ...ind.dims, ...x.dims.slice(axis + 1)];
  const outer = sizeOf(x.dims.slice(0, axis));
  const inner = sizeOf(x.dims.slice(axis + 1));
  const data = new Float64Array(sizeOf(dims));
  let pos = 0;
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < ind.data.length; j++) {
      const src = (o * n + wrapIndex(ctx, ind.data[j]!, n)) * inner;
      data.set(x.data.subarray(src, src + inner), pos);
      pos += inner;
    }
  }
  return [{ dims, data, dtype: x.dtype }];
}

/**
 * Visits every position of `ind` (shape dims) with the offset into a tensor of shape `target`
 * where the index on `axis` is replaced by the index value. Used by GatherElements and
 * ScatterElements.
 */
function forEachElementIndex(ctx: OpContext, ind: Arr, target: number[], axis: number, visit: (k: number, off: number) => void): void {
  const st = stridesOf(target);
  const r = ind.dims.length;
  const idx = new Array<number>(r).fill(0);
  for (let k = 0; k < ind.data.length; k++) {
    let off = 0;
    for (let a = 0; a < r; a++) off += (a === axis ? wrapIndex(ctx, ind.data[k]!, target[axis]!) : idx[a]!) * st[a]!;
    visit(k, off);
    for (let a = r - 1; a >= 0; a--) {
      if (++idx[a]! < ind.dims[a]!) break;
      idx[a] = 0;
    }
  }
}

function gatherElements(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const ind = input(ctx, 1);
  const axis = normAxis(ctx.node.getInt('axis', 0), x.dims.length);
  const data = new Float64Array(ind.data.length);
  forEachElementIndex(ctx, ind, x.dims, axis, (k, off) => {
    data[k] = x.data[off]!;
  });
  return [{ dims: [...ind.dims], data, dtype: x.dtype }];
}

type Reduce = (old: number, update: number) => number;
function reduction(ctx: OpContext): Reduce {
  const r = ctx.node.getString('reduction', 'none');
  switch (r) {
    case 'none': return (_, u) => u;
    case 'add': return (o, u) => o + u;
    case 'mul': return (o, u) => o * u;
    case 'max': return (o, u) => Math.max(o, u);
    case 'min': return (o, u) => Math.min(o, u);
    default: throw opError(ctx, `unknown reduction '${r}'`);
  }
}

function scatterElements(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const ind = input(ctx, 1);
  const upd = input(ctx, 2);
  const axis = normAxis(ctx.node.getInt('axis', 0), x.dims.length);
  const f = reduction(ctx);
  const data = Float64Array.from(x.data);
  forEachElementIndex(ctx, ind, x.dims, axis, (k, off) => {
    data[off] = f(data[off]!, upd.data[k]!);
  });
  return [{ dims: [...x.dims], data, dtype: x.dtype }];
}

/** Offsets of the slabs addressed by the last axis of `ind` (GatherND/ScatterND), per batch. */
function ndOffsets(ctx: OpContext, x: Arr, ind: Arr, batchDims: number): { offsets: number[]; block: number; slab: number } {
  const k = ind.dims[ind.dims.length - 1]!;
  const inner = x.dims.slice(batchDims);
  const st = stridesOf(inner);
  const slab = sizeOf(inner);
  const block = sizeOf(inner.slice(k));
  const tuples = ind.data.length / k;
  const perBatch = tuples / sizeOf(ind.dims.slice(0, batchDims));
  const offsets: number[] = [];
  for (let t = 0; t < tuples; t++) {
    let off = Math.floor(t / perBatch) * slab;
    for (let a = 0; a < k; a++) off += wrapIndex(ctx, ind.data[t * k + a]!, inner[a]!) * st[a]!;
    offsets.push(off);
  }
  return { offsets, block, slab };
}

function gatherND(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const ind = input(ctx, 1);
  const b = ctx.node.getInt('batch_dims', 0);
  const k = ind.dims[ind.dims.length - 1]!;
  const { offsets, block } = ndOffsets(ctx, x, ind, b);
  const dims = [...ind.dims.slice(0, -1), ...x.dims.slice(b + k)];
  const data = new Float64Array(sizeOf(dims));
  offsets.forEach((off, t) => data.set(x.data.subarray(off, off + block), t * block));
  return [{ dims, data, dtype: x.dtype }];
}

function scatterND(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const ind = input(ctx, 1);
  const upd = input(ctx, 2);
  const f = reduction(ctx);
  const { offsets, block } = ndOffsets(ctx, x, ind, 0);
  const data = Float64Array.from(x.data);
  offsets.forEach((off, t) => {
    for (let j = 0; j < block; j++) data[off + j] = f(data[off + j]!, upd.data[t * block + j]!);
  });
  return [{ dims: [...x.dims], data, dtype: x.dtype }];
}

function oneHot(ctx: OpContext): Arr[] {
  const ind = input(ctx, 0);
  const depth = Math.trunc(input(ctx, 1).data[0]!);
  const values = input(ctx, 2);
  const [off, on] = [values.data[0]!, values.data[1]!];
  const rank = ind.dims.length + 1;
  const axis = normAxis(ctx.node.getInt('axis', -1), rank);
  const dims = [...ind.dims.slice(0, axis), depth, ...ind.dims.slice(axis)];
  const outer = sizeOf(ind.dims.slice(0, axis));
  const inner = sizeOf(ind.dims.slice(axis));
  const data = new Float64Array(sizeOf(dims)).fill(off);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let v = Math.trunc(ind.data[o * inner + i]!);
      if (v < 0) v += depth;
      // Out-of-range indices give an all-`off` row.
      if (v >= 0 && v < depth) data[(o * depth + v) * inner + i] = on;
    }
  }
  return [{ dims, data, dtype: values.dtype }];
}

function nonZero(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const r = x.dims.length;
  const st = stridesOf(x.dims);
  const hits: number[] = [];
  for (let k = 0; k < x.data.length; k++) if (x.data[k]) hits.push(k);
  const data = new Float64Array(r * hits.length);
  hits.forEach((k, j) => {
    for (let a = 0; a < r; a++) data[a * hits.length + j] = Math.floor(k / st[a]!) % x.dims[a]!;
  });
  return [{ dims: [r, hits.length], data, dtype: 'int64' }];
}

export const gatherOps: OpTable = {
  Gather: gather,
  GatherElements: gatherElements,
  GatherND: gatherND,
  ScatterElements: scatterElements,
  Scatter: scatterElements,
  ScatterND: scatterND,
  OneHot: oneHot,
  NonZero: nonZero,
};
