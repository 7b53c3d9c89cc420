/** Reductions (Reduce*, ArgMax/ArgMin) and TopK. */
import type { Dim } from '../ir.js';
import { registerShapeRule } from './registry.js';
import { allKnown, dimProduct, isKnown, normAxis, tensor } from './dims.js';

const REDUCE_OPS = [
  'ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2',
  'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare',
];

/** Reduce-all folds used by exported shape code (e.g. ReduceProd of a Shape). */
const REDUCE_FOLD: Record<string, (v: number[]) => number> = {
  ReduceSum: (v) => v.reduce((a, b) => a + b, 0),
  ReduceProd: (v) => v.reduce((a, b) => a * b, 1),
  ReduceMax: (v) => Math.max(...v),
  ReduceMin: (v) => Math.min(...v),
};

registerShapeRule(REDUCE_OPS, (ctx) => {
  const x = ctx.shape(0);
  const node = ctx.node;
  const keep = node.getInt('keepdims', 1) === 1;
  const attr = node.getInts('axes');
  const axes = attr ?? (ctx.hasInput(1) ? ctx.ints(1) : undefined);
  if (!x) return [tensor(ctx.dtype(0), null)];
  if (axes === null) return [tensor(ctx.dtype(0), keep ? x.map(() => null) : null)];
  let reduced: Set<number>;
  if (axes === undefined || axes.length === 0) {
    if (node.getInt('noop_with_empty_axes', 0) === 1) return [tensor(ctx.dtype(0), [...x])];
    reduced = new Set(x.map((_, i) => i));
    const v = ctx.value(0);
    const fold = REDUCE_FOLD[node.opType];
    if (fold && v && allKnown(v) && v.length > 0) ctx.setValue(0, [fold(v)]);
    else if (node.opType === 'ReduceProd' && v) ctx.setValue(0, [dimProduct(v)]);
  } else reduced = new Set(axes.map((a) => normAxis(a, x.length)));
  const out: Dim[] = [];
  x.forEach((d, i) => {
    if (!reduced.has(i)) out.push(d);
    else if (keep) out.push(1);
  });
  return [tensor(ctx.dtype(0), out)];
});

registerShapeRule(['ArgMax', 'ArgMin'], (ctx) => {
  const x = ctx.shape(0);
  if (!x) return [tensor('int64', null)];
  const axis = normAxis(ctx.node.getInt('axis', 0), x.length);
  const keep = ctx.node.getInt('keepdims', 1) === 1;
  const out: Dim[] = [];
  x.forEach((d, i) => {
    if (i !== axis) out.push(d);
    else if (keep) out.push(1);
  });
  return [tensor('int64', out)];
});

registerShapeRule('TopK', (ctx) => {
  const x = ctx.shape(0);
  if (!x) return [tensor(ctx.dtype(0), null), tensor('int64', null)];
  const axis = normAxis(ctx.node.getInt('axis', -1), x.length);
  const kAttr = ctx.node.getInt('k');
  const kIn = ctx.hasInput(1) ? ctx.ints(1) : null;
  const k: Dim = kAttr ?? (kIn && isKnown(kIn[0] ?? null) ? kIn[0]! : null);
  const out = x.map((d, i) => (i === axis ? k : d));
  return [tensor(ctx.dtype(0), out), tensor('int64', [...out])];
});
