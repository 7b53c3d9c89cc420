/**
 * Softmax, LogSoftmax and Hardmax. Before opset 13 the input is coerced to 2-D at `axis`
 * (default 1) and each row [prod(dims[axis:])] is normalized as a whole; from opset 13 the op
 * normalizes along the single axis `axis` (default -1).
 */
import { input, type OpContext, type OpImpl, type OpTable } from '../op.js';
import { normAxis, sizeOf, type Arr } from '../tensor.js';

/** The (outer, n, inner) layout the op normalizes over: n values at stride `inner`. */
function layout(ctx: OpContext, x: Arr): [number, number, number] {
  const r = x.dims.length;
  if (ctx.opset < 13) {
    const axis = normAxis(ctx.node.getInt('axis', 1), Math.max(r, 1));
    return [sizeOf(x.dims.slice(0, axis)), sizeOf(x.dims.slice(axis)), 1];
  }
  const axis = normAxis(ctx.node.getInt('axis', -1), r);
  return [sizeOf(x.dims.slice(0, axis)), x.dims[axis]!, sizeOf(x.dims.slice(axis + 1))];
}

type RowOp = (row: Float64Array) => Float64Array;

function rowwise(f: RowOp): OpImpl {
  return (ctx) => {
    const x = input(ctx, 0);
    const [outer, n, inner] = layout(ctx, x);
    const y = new Float64Array(x.data.length);
    const row = new Float64Array(n);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        for (let k = 0; k < n; k++) row[k] = x.data[(o * n + k) * inner + i]!;
        const r = f(row);
        for (let k = 0; k < n; k++) y[(o * n + k) * inner + i] = r[k]!;
      }
    }
    return [{ dims: [...x.dims], data: y, dtype: 'float64' }];
  };
}

/** log(sum(exp(row))) computed around the row maximum, so large inputs do not overflow. */
export function logSumExp(row: Float64Array): number {
  let m = -Infinity;
  for (const v of row) m = Math.max(m, v);
  if (!Number.isFinite(m)) return m;
  let s = 0;
  for (const v of row) s += Math.exp(v - m);
  return m + Math.log(s);
}

const softmaxRow: RowOp = (row) => {
  const lse = logSumExp(row);
  return row.map((v) => Math.exp(v - lse));
};
const logSoftmaxRow: RowOp = (row) => {
  const lse = logSumExp(row);
  return row.map((v) => v - lse);
};
const hardmaxRow: RowOp = (row) => {
  let best = 0;
  for (let k = 1; k < row.length; k++) if (row[k]! > row[best]!) best = k;
  return row.map((_, k) => (k === best ? 1 : 0));
};

export const softmaxOps: OpTable = {
  Softmax: rowwise(softmaxRow),
  LogSoftmax: rowwise(logSoftmaxRow),
  Hardmax: rowwise(hardmaxRow),
};
