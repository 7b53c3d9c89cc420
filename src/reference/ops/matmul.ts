/** Matrix products: MatMul (numpy matmul rules), Gemm and Einsum. */
import { input, opError, type OpContext, type OpTable } from '../op.js';
import { broadcastShapes, broadcastStrides, broadcastTo, offsets, sizeOf, stridesOf, type Arr } from '../tensor.js';

/**
 * numpy.matmul: 1-D operands gain a unit axis (prepended for A, appended for B) that is removed
 * from the result; leading (batch) axes broadcast.
 */
export function matmul(a: Arr, b: Arr): Arr {
  const ad = a.dims.length === 1 ? [1, a.dims[0]!] : a.dims;
  const bd = b.dims.length === 1 ? [b.dims[0]!, 1] : b.dims;
  const m = ad[ad.length - 2]!;
  const k = ad[ad.length - 1]!;
  const n = bd[bd.length - 1]!;
  if (bd[bd.length - 2] !== k) {
    throw new Error(`MatMul: inner dimensions differ ([${a.dims.join(', ')}] x [${b.dims.join(', ')}])`);
  }
  const batchA = ad.slice(0, -2);
  const batchB = bd.slice(0, -2);
  const batch = broadcastShapes(batchA, batchB);
  const aOff = offsets(batch, broadcastStrides(batchA, batch));
  const bOff = offsets(batch, broadcastStrides(batchB, batch));
  const data = new Float64Array(sizeOf(batch) * m * n);
  for (let t = 0; t < aOff.length; t++) {
    const a0 = aOff[t]! * m * k;
    const b0 = bOff[t]! * k * n;
    const y0 = t * m * n;
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        const av = a.data[a0 + i * k + p]!;
        const brow = b0 + p * n;
        const yrow = y0 + i * n;
        for (let j = 0; j < n; j++) data[yrow + j] += av * b.data[brow + j]!;
      }
    }
  }
  const dims = [...batch, ...(a.dims.length === 1 ? [] : [m]), ...(b.dims.length === 1 ? [] : [n])];
  return { dims, data, dtype: a.dtype === 'float64' || b.dtype === 'float64' ? 'float64' : 'int64' };
}

function matmulOp(ctx: OpContext): Arr[] {
  try {
    return [matmul(input(ctx, 0), input(ctx, 1))];
  } catch (e) {
    throw opError(ctx, (e as Error).message);
  }
}

function transpose2d(x: Arr): Arr {
  const [r, c] = x.dims as [number, number];
  const data = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) data[j * r + i] = x.data[i * c + j]!;
  return { dims: [c, r], data, dtype: x.dtype };
}

function gemm(ctx: OpContext): Arr[] {
  const n = ctx.node;
  let a = input(ctx, 0);
  let b = input(ctx, 1);
  if (n.getInt('transA', 0)) a = transpose2d(a);
  if (n.getInt('transB', 0)) b = transpose2d(b);
  const alpha = n.getFloat('alpha', 1);
  const beta = n.getFloat('beta', 1);
  const y = matmul(a, b);
  for (let i = 0; i < y.data.length; i++) y.data[i] = alpha * y.data[i]!;
  const c = ctx.inputs[2];
  if (c && beta !== 0) {
    const cd = broadcastTo(c, y.dims);
    for (let i = 0; i < y.data.length; i++) y.data[i] = y.data[i]! + beta * cd[i]!;
  }
  return [y];
}

/**
 * Einsum by direct summation over every label assignment: clear and general (repeated labels
 * take diagonals, '...' broadcasts), and fast enough for the small operands tests use.
 */
function einsum(ctx: OpContext): Arr[] {
  const xs = ctx.inputs.filter((x): x is Arr => x !== undefined);
  const eq = ctx.node.getString('equation', '').replace(/\s+/g, '');
  const [lhs, rhs] = eq.split('->') as [string, string | undefined];
  const terms = lhs.split(',');
  if (terms.length !== xs.length) throw opError(ctx, `equation '${eq}' has ${terms.length} operands, the node ${xs.length}`);
  // Expand '...' into labels '0', '1', ... aligned on the right across operands.
  const ellipsisRank = Math.max(0, ...terms.map((t, i) => (t.includes('...') ? xs[i]!.dims.length - (t.length - 3) : 0)));
  const ellipsis = (count: number) => Array.from({ length: count }, (_, j) => String(ellipsisRank - count + j));
  const opLabels = terms.map((t, i) => {
    if (!t.includes('...')) return [...t];
    const [pre, post] = t.split('...') as [string, string];
    return [...pre, ...ellipsis(xs[i]!.dims.length - pre.length - post.length), ...post];
  });
  const sizes = new Map<string, number>();
  opLabels.forEach((labels, i) => labels.forEach((l, ax) => {
    const d = xs[i]!.dims[ax]!;
    const prev = sizes.get(l);
    if (prev === undefined || prev === 1) sizes.set(l, d);
    else if (d !== 1 && d !== prev) throw opError(ctx, `label '${l}' has sizes ${prev} and ${d}`);
  }));
  let outLabels: string[];
  if (rhs !== undefined) {
    outLabels = rhs.includes('...') ? (() => {
      const [pre, post] = rhs.split('...') as [string, string];
      return [...pre, ...ellipsis(ellipsisRank), ...post];
    })() : [...rhs];
  } else {
    const counts = new Map<string, number>();
    for (const ls of opLabels) for (const l of ls) counts.set(l, (counts.get(l) ?? 0) + 1);
    const letters = [...counts].filter(([l, c]) => c === 1 && !/^[0-9]+$/.test(l)).map(([l]) => l).sort();
    outLabels = [...ellipsis(ellipsisRank), ...letters];
  }
  const all = [...new Set([...outLabels, ...opLabels.flat()])];
  const allDims = all.map((l) => sizes.get(l)!);
  // Per operand: its stride for each label (summed when a label repeats: a diagonal).
  const opStrides = xs.map((x, i) => {
    const st = stridesOf(x.dims);
    return all.map((l) => opLabels[i]!.reduce((s, ol, ax) => (ol === l && x.dims[ax] !== 1 ? s + st[ax]! : s), 0));
  });
  const outDims = outLabels.map((l) => sizes.get(l)!);
  const outSt = stridesOf(outDims);
  const outStrides = all.map((l) => {
    const ax = outLabels.indexOf(l);
    return ax >= 0 ? outSt[ax]! : 0;
  });
  const outOff = offsets(allDims, outStrides);
  const opOff = opStrides.map((st) => offsets(allDims, st));
  const data = new Float64Array(sizeOf(outDims));
  for (let k = 0; k < outOff.length; k++) {
    let p = 1;
    for (let i = 0; i < xs.length; i++) p *= xs[i]!.data[opOff[i]![k]!]!;
    data[outOff[k]!] += p;
  }
  return [{ dims: outDims, data, dtype: xs[0]!.dtype }];
}

export const matmulOps: OpTable = {
  MatMul: matmulOp,
  Gemm: gemm,
  Einsum: einsum,
};
