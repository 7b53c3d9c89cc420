/**
 * Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp, ArgMax/ArgMin,
 * TopK and CumSum.
 *
 * Axes come from the `axes` input (ReduceSum from opset 13, the others from 18) or from the
 * attribute (earlier opsets): whichever the node has. With no axes every axis is reduced,
 * unless noop_with_empty_axes=1, which makes the op an identity.
 */
import { input, type OpContext, type OpImpl, type OpTable } from '../op.js';
import { normAxis, offsets, sizeOf, stridesOf, toInts, type Arr } from '../tensor.js';

interface Reduction {
  /** Maps every input element to its output slot. */
  slot: Int32Array;
  /** Output shape with reduced axes kept as 1 and with them dropped. */
  keptDims: number[];
  droppedDims: number[];
  outSize: number;
  /** Elements per output slot. */
  count: number;
}

/** Index bookkeeping for reducing `dims` over `axes`. */
export function planReduction(dims: readonly number[], axes: readonly number[]): Reduction {
  const r = dims.length;
  const reduced = new Set(axes.map((a) => normAxis(a, r)));
  const keptDims = dims.map((d, i) => (reduced.has(i) ? 1 : d));
  const outStrides = stridesOf(keptDims).map((s, i) => (reduced.has(i) ? 0 : s));
  return {
    slot: offsets(dims, outStrides),
    keptDims,
    droppedDims: dims.filter((_, i) => !reduced.has(i)),
    outSize: sizeOf(keptDims),
    count: sizeOf(dims.filter((_, i) => reduced.has(i))),
  };
}

interface Reducer {
  init: number;
  /** Transform applied to each element before accumulation (e.g. squaring). */
  map?: (v: number) => number;
  combine: (acc: number, v: number) => number;
  finish?: (acc: number, count: number) => number;
  /** Subtract the slot maximum before mapping (LogSumExp stability). */
  shiftByMax?: boolean;
}

const add = (a: number, b: number) => a + b;
const nanMax = (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b));
const nanMin = (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b));

const REDUCERS: Record<string, Reducer> = {
  ReduceSum: { init: 0, combine: add },
  ReduceMean: { init: 0, combine: add, finish: (s, n) => s / n },
  ReduceMax: { init: -Infinity, combine: nanMax },
  ReduceMin: { init: Infinity, combine: nanMin },
  ReduceProd: { init: 1, combine: (a, b) => a * b },
  ReduceL1: { init: 0, map: Math.abs, combine: add },
  ReduceL2: { init: 0, map: (v) => v * v, combine: add, finish: Math.sqrt },
  ReduceSumSquare: { init: 0, map: (v) => v * v, combine: add },
  ReduceLogSum: { init: 0, combine: add, finish: Math.log },
  ReduceLogSumExp: { init: 0, map: Math.exp, combine: add, finish: Math.log, shiftByMax: true },
};

function reduceOp(red: Reducer): OpImpl {
  return (ctx: OpContext) => {
    const x = input(ctx, 0);
    const axesInput = ctx.inputs[1];
    const axes = axesInput ? toInts(axesInput) : ctx.node.getInts('axes', []);
    const keep = ctx.node.getInt('keepdims', 1) !== 0;
    if (axes.length === 0 && ctx.node.getInt('noop_with_empty_axes', 0) !== 0) return [x];
    const plan = planReduction(x.dims, axes.length > 0 ? axes : x.dims.map((_, i) => i));
    const shift = new Float64Array(plan.outSize);
    if (red.shiftByMax) {
      shift.fill(-Infinity);
      for (let k = 0; k < x.data.length; k++) shift[plan.slot[k]!] = Math.max(shift[plan.slot[k]!]!, x.data[k]!);
      for (let j = 0; j < shift.length; j++) if (!Number.isFinite(shift[j]!)) shift[j] = 0;
    }
    const acc = new Float64Array(plan.outSize).fill(red.init);
    for (let k = 0; k < x.data.length; k++) {
      const j = plan.slot[k]!;
      const v = red.shiftByMax ? x.data[k]! - shift[j]! : x.data[k]!;
      acc[j] = red.combine(acc[j]!, red.map ? red.map(v) : v);
    }
    if (red.finish) for (let j = 0; j < acc.length; j++) acc[j] = red.finish(acc[j]!, plan.count);
    if (red.shiftByMax) for (let j = 0; j < acc.length; j++) acc[j] = acc[j]! + shift[j]!;
    // Reductions keep the input type; integer results truncate (ReduceMean of int64 divides).
    if (x.dtype !== 'float64') for (let j = 0; j < acc.length; j++) acc[j] = Math.trunc(acc[j]!);
    return [{ dims: keep ? plan.keptDims : plan.droppedDims, data: acc, dtype: x.dtype === 'bool' ? 'int64' : x.dtype }];
  };
}

function argReduce(better: (a: number, b: number) => boolean): OpImpl {
  return (ctx) => {
    const x = input(ctx, 0);
    const axis = normAxis(ctx.node.getInt('axis', 0), x.dims.length);
    const keep = ctx.node.getInt('keepdims', 1) !== 0;
    const last = ctx.node.getInt('select_last_index', 0) !== 0;
    const n = x.dims[axis]!;
    const outer = sizeOf(x.dims.slice(0, axis));
    const inner = sizeOf(x.dims.slice(axis + 1));
    const data = new Float64Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let best = 0;
        for (let k = 1; k < n; k++) {
          const v = x.data[(o * n + k) * inner + i]!;
          const b = x.data[(o * n + best) * inner + i]!;
          if (better(v, b) || (last && v === b)) best = k;
        }
        data[o * inner + i] = best;
      }
    }
    const dims = keep ? x.dims.map((d, i) => (i === axis ? 1 : d)) : x.dims.filter((_, i) => i !== axis);
    return [{ dims, data, dtype: 'int64' }];
  };
}

function topK(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const k = ctx.inputs[1] ? ctx.inputs[1].data[0]! : ctx.node.getInt('k', 0);
  const axis = normAxis(ctx.node.getInt('axis', -1), x.dims.length);
  const largest = ctx.node.getInt('largest', 1) !== 0;
  const n = x.dims[axis]!;
  const outer = sizeOf(x.dims.slice(0, axis));
  const inner = sizeOf(x.dims.slice(axis + 1));
  const dims = x.dims.map((d, i) => (i === axis ? k : d));
  const values = new Float64Array(sizeOf(dims));
  const indices = new Float64Array(sizeOf(dims));
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (j: number) => x.data[(o * n + j) * inner + i]!;
      // Equal values keep the lower index first (a stable order), as the spec requires.
      const order = Array.from({ length: n }, (_, j) => j).sort((a, b) => (largest ? at(b) - at(a) : at(a) - at(b)) || a - b);
      for (let j = 0; j < k; j++) {
        values[(o * k + j) * inner + i] = at(order[j]!);
        indices[(o * k + j) * inner + i] = order[j]!;
      }
    }
  }
  return [{ dims, data: values, dtype: x.dtype }, { dims: [...dims], data: indices, dtype: 'int64' }];
}

function cumSum(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const axis = normAxis(input(ctx, 1).data[0]!, x.dims.length);
  const exclusive = ctx.node.getInt('exclusive', 0) !== 0;
  const reverse = ctx.node.getInt('reverse', 0) !== 0;
  const n = x.dims[axis]!;
  const outer = sizeOf(x.dims.slice(0, axis));
  const inner = sizeOf(x.dims.slice(axis + 1));
  const data = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let sum = 0;
      for (let s = 0; s < n; s++) {
        const j = reverse ? n - 1 - s : s;
        const at = (o * n + j) * inner + i;
        if (exclusive) {
          data[at] = sum;
          sum += x.data[at]!;
        } else {
          sum += x.data[at]!;
          data[at] = sum;
        }
      }
    }
  }
  return [{ dims: [...x.dims], data, dtype: x.dtype }];
}

export const reduceOps: OpTable = {
  ...Object.fromEntries(Object.entries(REDUCERS).map(([name, red]) => [name, reduceOp(red)])),
  ArgMax: argReduce((a, b) => a > b),
  ArgMin: argReduce((a, b) => a < b),
  TopK: topK,
  CumSum: cumSum,
};
