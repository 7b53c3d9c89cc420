/**
 * Pooling: MaxPool (with its optional Indices output), AveragePool, LpPool and the global
 * variants, with strides, pads, auto_pad, dilations and ceil_mode.
 *
 * MaxPool's Indices are flat indices into X (padding excluded), row-major over N, C and the
 * spatial axes; storage_order=1 numbers the spatial part column-major instead (first spatial
 * axis fastest), keeping the N*C block offset.
 */
import { input, wantsOutput, type OpContext, type OpTable } from '../op.js';
import { sizeOf, stridesOf, type Arr } from '../tensor.js';
import { windowGeometry, windowTable, type WindowGeometry } from './window.js';

interface Pooling {
  x: Arr;
  channels: number;
  inSp: number[];
  inSize: number;
  g: WindowGeometry;
  table: Int32Array;
  taps: number;
  outSize: number;
}

function setupPooling(ctx: OpContext): Pooling {
  const x = input(ctx, 0);
  const inSp = x.dims.slice(2);
  const kernel = ctx.node.getInts('kernel_shape') ?? [];
  const g = windowGeometry(ctx.node, inSp, kernel, { ceil: ctx.node.getInt('ceil_mode', 0) !== 0 });
  return {
    x, channels: x.dims[0]! * x.dims[1]!, inSp, inSize: sizeOf(inSp), g,
    table: windowTable(inSp, g), taps: sizeOf(kernel), outSize: sizeOf(g.outDims),
  };
}

/** Column-major spatial index of a row-major spatial offset. */
function columnMajor(off: number, inSp: number[]): number {
  const rowStrides = stridesOf(inSp);
  let idx = 0;
  let colStride = 1;
  for (let a = 0; a < inSp.length; a++) {
    idx += (Math.floor(off / rowStrides[a]!) % inSp[a]!) * colStride;
    colStride *= inSp[a]!;
  }
  return idx;
}

function maxPool(ctx: OpContext): Arr[] {
  const P = setupPooling(ctx);
  const columnOrder = ctx.node.getInt('storage_order', 0) === 1;
  const y = new Float64Array(P.channels * P.outSize);
  const ind = new Float64Array(P.channels * P.outSize);
  for (let ch = 0; ch < P.channels; ch++) {
    const xBase = ch * P.inSize;
    for (let p = 0; p < P.outSize; p++) {
      // The first maximum in window order wins ties.
      let best = -Infinity;
      let at = -1;
      for (let q = 0; q < P.taps; q++) {
        const off = P.table[p * P.taps + q]!;
        if (off >= 0 && (at < 0 || P.x.data[xBase + off]! > best)) {
          best = P.x.data[xBase + off]!;
          at = off;
        }
      }
      y[ch * P.outSize + p] = best;
      ind[ch * P.outSize + p] = at < 0 ? -1 : xBase + (columnOrder ? columnMajor(at, P.inSp) : at);
    }
  }
  const dims = [P.x.dims[0]!, P.x.dims[1]!, ...P.g.outDims];
  const out: Arr[] = [{ dims, data: y, dtype: P.x.dtype }];
  if (wantsOutput(ctx, 1)) out.push({ dims: [...dims], data: ind, dtype: 'int64' });
  return out;
}

/**
 * Taps of the window at output position p that lie inside the padded input [-begin, n + end):
 * AveragePool's divisor with count_include_pad (a ceil_mode overhang past the end padding is
 * not counted).
 */
function paddedTapCount(p: number, inSp: number[], g: WindowGeometry): number {
  const outStrides = stridesOf(g.outDims);
  let count = 1;
  for (let a = 0; a < inSp.length; a++) {
    const o = Math.floor(p / outStrides[a]!) % g.outDims[a]!;
    let n = 0;
    for (let k = 0; k < g.kernel[a]!; k++) {
      const i = o * g.strides[a]! - g.padsBegin[a]! + k * g.dilations[a]!;
      if (i >= -g.padsBegin[a]! && i < inSp[a]! + g.padsEnd[a]!) n++;
    }
    count *= n;
  }
  return count;
}

function averagePool(ctx: OpContext): Arr[] {
  const P = setupPooling(ctx);
  const includePad = ctx.node.getInt('count_include_pad', 0) !== 0;
  const divisors = new Float64Array(P.outSize);
  for (let p = 0; p < P.outSize; p++) {
    if (includePad) divisors[p] = paddedTapCount(p, P.inSp, P.g);
    else for (let q = 0; q < P.taps; q++) if (P.table[p * P.taps + q]! >= 0) divisors[p]++;
  }
  const y = new Float64Array(P.channels * P.outSize);
  for (let ch = 0; ch < P.channels; ch++) {
    const xBase = ch * P.inSize;
    for (let p = 0; p < P.outSize; p++) {
      let s = 0;
      for (let q = 0; q < P.taps; q++) {
        const off = P.table[p * P.taps + q]!;
        if (off >= 0) s += P.x.data[xBase + off]!;
      }
      y[ch * P.outSize + p] = s / divisors[p]!;
    }
  }
  return [{ dims: [P.x.dims[0]!, P.x.dims[1]!, ...P.g.outDims], data: y, dtype: 'float64' }];
}

function lpPool(ctx: OpContext): Arr[] {
  const P = setupPooling(ctx);
  const pw = ctx.node.getInt('p', 2);
  const y = new Float64Array(P.channels * P.outSize);
  for (let ch = 0; ch < P.channels; ch++) {
    for (let p = 0; p < P.outSize; p++) {
      let s = 0;
      for (let q = 0; q < P.taps; q++) {
        const off = P.table[p * P.taps + q]!;
        if (off >= 0) s += Math.abs(P.x.data[ch * P.inSize + off]!) ** pw;
      }
      y[ch * P.outSize + p] = s ** (1 / pw);
    }
  }
  return [{ dims: [P.x.dims[0]!, P.x.dims[1]!, ...P.g.outDims], data: y, dtype: 'float64' }];
}

/** Global pooling: every spatial position of each (n, c) reduces to one value. */
function globalPool(reduce: (values: Float64Array) => number) {
  return (ctx: OpContext): Arr[] => {
    const x = input(ctx, 0);
    const inSize = sizeOf(x.dims.slice(2));
    const channels = x.dims[0]! * x.dims[1]!;
    const y = new Float64Array(channels);
    for (let ch = 0; ch < channels; ch++) y[ch] = reduce(x.data.subarray(ch * inSize, (ch + 1) * inSize));
    return [{ dims: [x.dims[0]!, x.dims[1]!, ...x.dims.slice(2).map(() => 1)], data: y, dtype: x.dtype }];
  };
}

export const poolOps: OpTable = {
  MaxPool: maxPool,
  AveragePool: averagePool,
  LpPool: lpPool,
  GlobalAveragePool: globalPool((v) => v.reduce((a, b) => a + b, 0) / v.length),
  GlobalMaxPool: globalPool((v) => v.reduce((a, b) => Math.max(a, b), -Infinity)),
  GlobalLpPool: (ctx) => {
    const p = ctx.node.getInt('p', 2);
    return globalPool((v) => v.reduce((a, b) => a + Math.abs(b) ** p, 0) ** (1 / p))(ctx);
  },
};
