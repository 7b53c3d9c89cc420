/**
 * Conv and ConvTranspose over any number of spatial axes, with strides, pads, auto_pad,
 * dilations and groups (ConvTranspose also output_padding and output_shape), following the
 * ONNX operator spec's shape and padding equations.
 */
import { input, opError, type OpContext, type OpTable } from '../op.js';
import { sizeOf, stridesOf, type Arr } from '../tensor.js';
import { windowGeometry, windowTable } from './window.js';

function conv(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const w = input(ctx, 1);
  const b = ctx.inputs[2];
  const group = ctx.node.getInt('group', 1);
  const [n, c] = x.dims as [number, number];
  const m = w.dims[0]!;
  const cg = c / group;
  const mg = m / group;
  if (w.dims[1] !== cg || !Number.isInteger(mg)) {
    throw opError(ctx, `weights [${w.dims.join(', ')}] do not match ${c} input channels in ${group} group(s)`);
  }
  const inSp = x.dims.slice(2);
  const g = windowGeometry(ctx.node, inSp, ctx.node.getInts('kernel_shape') ?? w.dims.slice(2));
  const table = windowTable(inSp, g);
  const taps = sizeOf(g.kernel);
  const inSize = sizeOf(inSp);
  const outSize = sizeOf(g.outDims);
  const rows = cg * taps;
  const y = new Float64Array(n * m * outSize);
  // im2col: row (ic, q) of `cols` holds, for every output position, the input value tap q
  // reads from channel ic (0 in padding). Each output channel is then a weighted sum of rows.
  const cols = new Float64Array(rows * outSize);
  for (let bi = 0; bi < n; bi++) {
    for (let grp = 0; grp < group; grp++) {
      for (let ic = 0; ic < cg; ic++) {
        const xBase = (bi * c + grp * cg + ic) * inSize;
        for (let q = 0; q < taps; q++) {
          const row = (ic * taps + q) * outSize;
          for (let p = 0; p < outSize; p++) {
            const off = table[p * taps + q]!;
            cols[row + p] = off >= 0 ? x.data[xBase + off]! : 0;
          }
        }
      }
      for (let oc = grp * mg; oc < (grp + 1) * mg; oc++) {
        const yBase = (bi * m + oc) * outSize;
        if (b) y.fill(b.data[oc]!, yBase, yBase + outSize);
        for (let r = 0; r < rows; r++) {
          const wv = w.data[oc * rows + r]!;
          const row = r * outSize;
          for (let p = 0; p < outSize; p++) y[yBase + p] += wv * cols[row + p]!;
        }
      }
    }
  }
  return [{ dims: [n, m, ...g.outDims], data: y, dtype: 'float64' }];
}

interface TransposeGeometry {
  padsBegin: number[];
  outDims: number[];
}

/** Output size and begin pads of ConvTranspose (see the ONNX ConvTranspose equations). */
function convTransposeGeometry(ctx: OpContext, inSp: number[], kernel: number[]): TransposeGeometry {
  const node = ctx.node;
  const r = inSp.length;
  const strides = node.getInts('strides') ?? new Array<number>(r).fill(1);
  const dilations = node.getInts('dilations') ?? new Array<number>(r).fill(1);
  const outPad = node.getInts('output_padding') ?? new Array<number>(r).fill(0);
  const autoPad = node.getString('auto_pad', 'NOTSET');
  let outputShape = node.getInts('output_shape');
  // Some exporters include N and C in output_shape; the spec lists spatial dims only.
  if (outputShape && outputShape.length === r + 2) outputShape = outputShape.slice(2);
  const full = (i: number) => strides[i]! * (inSp[i]! - 1) + outPad[i]! + (kernel[i]! - 1) * dilations[i]! + 1;
  if (outputShape || autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const outDims = outputShape ?? inSp.map((d, i) => d * strides[i]!);
    const padsBegin = outDims.map((o, i) => {
      const total = full(i) - o;
      // SAME_UPPER puts the odd pixel at the end; NOTSET and SAME_LOWER at the beginning.
      return autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : total - Math.floor(total / 2);
    });
    return { padsBegin, outDims };
  }
  const pads = autoPad === 'VALID' ? new Array<number>(2 * r).fill(0) : node.getInts('pads') ?? new Array<number>(2 * r).fill(0);
  return { padsBegin: pads.slice(0, r), outDims: inSp.map((_, i) => full(i) - pads[i]! - pads[i + r]!) };
}

function convTranspose(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const w = input(ctx, 1);
  const b = ctx.inputs[2];
  const group = ctx.node.getInt('group', 1);
  const [n, c] = x.dims as [number, number];
  const cg = c / group;
  const mg = w.dims[1]!;
  const m = mg * group;
  if (w.dims[0] !== c) throw opError(ctx, `weights [${w.dims.join(', ')}] do not match ${c} input channels`);
  const inSp = x.dims.slice(2);
  const r = inSp.length;
  const kernel = ctx.node.getInts('kernel_shape') ?? w.dims.slice(2);
  const strides = ctx.node.getInts('strides') ?? new Array<number>(r).fill(1);
  const dilations = ctx.node.getInts('dilations') ?? new Array<number>(r).fill(1);
  const { padsBegin, outDims } = convTransposeGeometry(ctx, inSp, kernel);
  const taps = sizeOf(kernel);
  const inSize = sizeOf(inSp);
  const outSize = sizeOf(outDims);
  // Scatter table: input position p and tap q add into output offset o = p*s - pad + q*d.
  const inStrides = stridesOf(inSp);
  const kStrides = stridesOf(kernel);
  const outStrides = stridesOf(outDims);
  const table = new Int32Array(inSize * taps);
  for (let p = 0; p < inSize; p++) {
    for (let q = 0; q < taps; q++) {
      let off = 0;
      for (let a = 0; a < r; a++) {
        const i = Math.floor(p / inStrides[a]!) % inSp[a]!;
        const k = Math.floor(q / kStrides[a]!) % kernel[a]!;
        const o = i * strides[a]! - padsBegin[a]! + k * dilations[a]!;
        if (o < 0 || o >= outDims[a]!) {
          off = -1;
          break;
        }
        off += o * outStrides[a]!;
      }
      table[p * taps + q] = off;
    }
  }
  const y = new Float64Array(n * m * outSize);
  // For each output channel and tap: the tap's contribution at every input position (a sum
  // over the group's input channels), then scattered to the output positions it lands on.
  const contrib = new Float64Array(inSize);
  for (let bi = 0; bi < n; bi++) {
    for (let oc = 0; oc < m; oc++) {
      const grp = Math.floor(oc / mg);
      const yBase = (bi * m + oc) * outSize;
      if (b) y.fill(b.data[oc]!, yBase, yBase + outSize);
      for (let q = 0; q < taps; q++) {
        contrib.fill(0);
        for (let ic = 0; ic < cg; ic++) {
          const cin = grp * cg + ic;
          const wv = w.data[(cin * mg + (oc - grp * mg)) * taps + q]!;
          const xBase = (bi * c + cin) * inSize;
          for (let p = 0; p < inSize; p++) contrib[p] += wv * x.data[xBase + p]!;
        }
        for (let p = 0; p < inSize; p++) {
          const off = table[p * taps + q]!;
          if (off >= 0) y[yBase + off] += contrib[p]!;
        }
      }
    }
  }
  return [{ dims: [n, m, ...outDims], data: y, dtype: 'float64' }];
}

export const convOps: OpTable = {
  Conv: conv,
  ConvTranspose: convTranspose,
};
