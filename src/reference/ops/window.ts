/**
 * Sliding-window geometry shared by Conv and the pooling ops: output sizes and pads from
 * kernel_shape/strides/dilations/pads/auto_pad/ceil_mode, and a table mapping each (output
 * position, kernel tap) pair to the input element it reads.
 */
import type { Node } from '../../graph/ir.js';
import { RpOnnxError } from '../../errors.js';
import { sizeOf, stridesOf } from '../tensor.js';

export interface WindowGeometry {
  kernel: number[];
  strides: number[];
  dilations: number[];
  padsBegin: number[];
  padsEnd: number[];
  outDims: number[];
}

/** Reads the window attributes of `node` for spatial input dims `inDims`. */
export function windowGeometry(node: Node, inDims: readonly number[], kernelShape: readonly number[], opts: { ceil?: boolean } = {}): WindowGeometry {
  const r = inDims.length;
  const kernel = [...kernelShape];
  const strides = node.getInts('strides') ?? new Array<number>(r).fill(1);
  const dilations = node.getInts('dilations') ?? new Array<number>(r).fill(1);
  const pads = node.getInts('pads') ?? new Array<number>(2 * r).fill(0);
  const autoPad = node.getString('auto_pad', 'NOTSET');
  const ceil = opts.ceil ?? false;
  const padsBegin = pads.slice(0, r);
  const padsEnd = pads.slice(r);
  const outDims: number[] = [];
  for (let i = 0; i < r; i++) {
    const n = inDims[i]!;
    const s = strides[i]!;
    const extent = (kernel[i]! - 1) * dilations[i]! + 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      const out = Math.ceil(n / s);
      const total = Math.max(0, (out - 1) * s + extent - n);
      const small = Math.floor(total / 2);
      // An odd total puts the extra pixel at the end (UPPER) or the beginning (LOWER).
      padsBegin[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      padsEnd[i] = total - padsBegin[i]!;
      outDims.push(out);
    } else if (autoPad === 'VALID') {
      padsBegin[i] = 0;
      padsEnd[i] = 0;
      outDims.push(ceil ? Math.ceil((n - extent + 1) / s) : Math.floor((n - extent) / s) + 1);
    } else if (autoPad === 'NOTSET') {
      const span = n + padsBegin[i]! + padsEnd[i]! - extent;
      let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
      // ceil_mode: a window that would start in the end padding is dropped.
      if (ceil && (out - 1) * s >= n + padsBegin[i]!) out--;
      outDims.push(out);
    } else {
      throw new RpOnnxError(`reference interpreter: ${node.opType} node '${node.name}': unknown auto_pad '${autoPad}'`);
    }
    if (outDims[i]! <= 0) {
      throw new RpOnnxError(`reference interpreter: ${node.opType} node '${node.name}': the window does not fit the input (output size ${outDims[i]})`);
    }
  }
  return { kernel, strides, dilations, padsBegin, padsEnd, outDims };
}

/**
 * For each output position p (row-major over outDims) and kernel tap q (row-major over
 * kernel), the flat spatial offset of the input element the window reads, or -1 where the tap
 * falls in padding. Entry [p * taps + q].
 */
export function windowTable(inDims: readonly number[], g: WindowGeometry): Int32Array {
  const r = inDims.length;
  const taps = sizeOf(g.kernel);
  const positions = sizeOf(g.outDims);
  const inStrides = stridesOf(inDims);
  const outStrides = stridesOf(g.outDims);
  const kStrides = stridesOf(g.kernel);
  const table = new Int32Array(positions * taps);
  for (let p = 0; p < positions; p++) {
    for (let q = 0; q < taps; q++) {
      let off = 0;
      for (let a = 0; a < r; a++) {
        const o = Math.floor(p / outStrides[a]!) % g.outDims[a]!;
        const k = Math.floor(q / kStrides[a]!) % g.kernel[a]!;
        const i = o * g.strides[a]! - g.padsBegin[a]! + k * g.dilations[a]!;
        if (i < 0 || i >= inDims[a]!) {
          off = -1;
          break;
        }
        off += i * inStrides[a]!;
      }
      table[p * taps + q] = off;
    }
  }
  return table;
}
