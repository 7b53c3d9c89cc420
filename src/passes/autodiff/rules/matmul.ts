/**
 * MatMul with numpy semantics: Y[..., M, N] = A[..., M, K] B[..., K, N], batch dimensions
 * broadcast, and a 1-D operand promoted to a matrix (A: [K] -> [1, K], B: [K] -> [K, 1]) whose
 * added axis is dropped from Y.
 *
 *   dA = dY B^T,  dB = A^T dY   (then summed over broadcast batch dimensions)
 *
 * The common case of a 2-D weight B behind batched activations gets dB as one Gemm over the
 * flattened batch (Flatten + Gemm transA), never a batched product followed by a sum.
 *
 * Per example (DP-SGD, a weight on either side, the examples on axis 0 of the data operand):
 * the batched product without the batch sum. x [N, ..., K] @ W [K, M]: x_n^T dy_n with the
 * middle axes folded, Transpose(x)[N, K, T] @ dY[N, T, M] (x [N, K]: an outer product per
 * example); W [M, K] @ x [N, ..., K, T]: dY x^T summed over the middle axes; weights with batch
 * axes of their own: the product reduced over the axes they were broadcast along, axis 0 kept.
 */
import type { Dim } from '../../../graph/ir.js';
import { registerGradient } from '../registry.js';
import type { GradContext } from '../rule.js';
import { unbroadcast } from '../unbroadcast.js';
import { squeeze, unsqueeze } from '../emit.js';
import { noPerExample, perExampleReduce, perExampleReshape, requireBatchAxis } from '../per-example.js';
import { RpOnnxError } from '../../../errors.js';

/** Broadcast of two batch shapes (numpy rules); unknown where undecidable statically. */
function broadcastDims(x: readonly Dim[], y: readonly Dim[]): Dim[] {
  const r = Math.max(x.length, y.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const a = x[i - (r - x.length)] ?? 1;
    const c = y[i - (r - y.length)] ?? 1;
    out.push(a === 1 ? c : c === 1 ? a : a === c ? a : typeof a === 'number' ? a : typeof c === 'number' ? c : null);
  }
  return out;
}

function swapLast(ctx: GradContext, x: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return ctx.b.op1('Transpose', [x], { perm });
}

/** The operands as matrices (1-D ones promoted) and the dims of the product. */
interface Promoted {
  a: string; b: string; sa: readonly Dim[]; sb: readonly Dim[];
  a2: string; b2: string; sa2: Dim[]; sb2: Dim[]; dY2: string;
  batch: Dim[]; M: Dim; K: Dim; N: Dim; yRank: number;
}

function promote(ctx: GradContext, dY: string, sa: readonly Dim[], sb: readonly Dim[]): Promoted {
  const [a, bm] = ctx.node.inputs as [string, string];
  const a2 = sa.length === 1 ? unsqueeze(ctx, a, [0]) : a;
  const b2 = sb.length === 1 ? unsqueeze(ctx, bm, [1]) : bm;
  const sa2: Dim[] = sa.length === 1 ? [1, sa[0]!] : [...sa];
  const sb2: Dim[] = sb.length === 1 ? [sb[0]!, 1] : [...sb];
  let dY2 = dY;
  if (sb.length === 1) dY2 = unsqueeze(ctx, dY2, [-1]);
  if (sa.length === 1) dY2 = unsqueeze(ctx, dY2, [-2]);
  const batch = broadcastDims(sa2.slice(0, -2), sb2.slice(0, -2));
  return {
    a, b: bm, sa, sb, a2, b2, sa2, sb2, dY2, batch,
    M: sa2[sa2.length - 2]!, K: sa2[sa2.length - 1]!, N: sb2[sb2.length - 1]!, yRank: batch.length + 2,
  };
}

/** dA = dY B^T, summed over A's broadcast batch axes. */
function gradA(ctx: GradContext, p: Promoted): string {
  const { b } = ctx;
  const full = p.yRank === 2 ? b.op1('Gemm', [p.dY2, p.b2], { transB: 1 }) : b.op1('MatMul', [p.dY2, swapLast(ctx, p.b2, p.sb2.length)]);
  const gShape = [...p.batch, p.M, p.K];
  const g = p.a2 === p.a ? unbroadcast(ctx, full, p.a, gShape) : unbroadcastTo(ctx, full, gShape, p.sa2, p.a2);
  return p.sa.length === 1 ? squeeze(ctx, g, [0]) : g;
}

/** dB = A^T dY, summed over B's broadcast batch axes (a 2-D B: one Gemm over all rows). */
function gradB(ctx: GradContext, p: Promoted): string {
  const { b } = ctx;
  let g: string;
  if (p.sb2.length === 2) {
    // Sum over every batch row at once: [rows, K]^T [rows, N].
    const rows = (x: string, rank: number) => (rank === 2 ? x : b.op1('Flatten', [x], { axis: rank - 1 }));
    g = b.op1('Gemm', [rows(p.a2, p.sa2.length), rows(p.dY2, p.yRank)], { transA: 1 });
  } else {
    const full = b.op1('MatMul', [swapLast(ctx, p.a2, p.sa2.length), p.dY2]);
    const gShape = [...p.batch, p.K, p.N];
    g = p.b2 === p.b ? unbroadcast(ctx, full, p.b, gShape) : unbroadcastTo(ctx, full, gShape, p.sb2, p.b2);
  }
  return p.sb.length === 1 ? squeeze(ctx, g, [1]) : g;
}

/** Per-example gradient [N, ...shape] of the weight operand `slot` (the other is the data). */
function perExampleGrad(ctx: GradContext, p: Promoted, slot: 0 | 1): string {
  const { b } = ctx;
  const w = slot === 0 ? p.a : p.b;
  let g: string;
  if (p.yRank === 2) {
    // x [N, K] @ W [K, M]: dW_n = x_n^T dy_n, an outer product per example.
    if (slot === 0) noPerExample(ctx, 0, 'the examples must be on axis 0 of the product');
    requireBatchAxis(ctx, p.a, 0);
    g = b.op1('MatMul', [unsqueeze(ctx, p.a2, [2]), unsqueeze(ctx, p.dY2, [1])]);
  } else if (slot === 1 && p.sb2.length === 2) {
    // x [N, ..., K] @ W [K, M]: fold the middle axes, [N, T, K]^T @ [N, T, M] -> [N, K, M].
    if (typeof p.K !== 'number' || typeof p.N !== 'number') noPerExample(ctx, 1, 'the weight shape must be static');
    requireBatchAxis(ctx, p.a, 0);
    const fold = (v: string, last: number) => b.op1('Reshape', [v, b.int64s('shape', [0, -1, last])]);
    g = b.op1('MatMul', [b.op1('Transpose', [fold(p.a2, p.K as number)], { perm: [0, 2, 1] }), fold(p.dY2, p.N as number)]);
  } else {
    // The batched product without the batch sum, reduced over the weight's broadcast axes.
    const full = slot === 1
      ? b.op1('MatMul', [swapLast(ctx, p.a2, p.sa2.length), p.dY2])
      : b.op1('MatMul', [p.dY2, swapLast(ctx, p.b2, p.sb2.length)]);
    g = slot === 1
      ? perExampleReduce(ctx, full, [...p.batch, p.K, p.N], p.sb2, w)
      : perExampleReduce(ctx, full, [...p.batch, p.M, p.K], p.sa2, w);
  }
  return perExampleReshape(ctx, g, w);
}

registerGradient('MatMul', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY) return [];
  const { b, node } = ctx;
  const [a, bm] = node.inputs as [string, string];
  const sa = ctx.shapeOf(a);
  const sb = ctx.shapeOf(bm);
  if (!sa || !sb) throw new RpOnnxError(`gradient of MatMul node '${node.name}': the ranks of its operands are unknown; run shape inference`);
  if (ctx.perExample[0] && ctx.perExample[1]) noPerExample(ctx, 1, 'both operands are parameters');

  if (sa.length === 1 && sb.length === 1) {
    // Dot product: Y is a scalar (never per example: no batch axis).
    if (ctx.perExample[0] || ctx.perExample[1]) noPerExample(ctx, ctx.perExample[0] ? 0 : 1, 'a dot product has no batch axis');
    return [ctx.needsGrad[0] ? b.op1('Mul', [dY, bm]) : undefined, ctx.needsGrad[1] ? b.op1('Mul', [dY, a]) : undefined];
  }
  const p = promote(ctx, dY, sa, sb);
  return [0, 1].map((slot) => {
    if (!ctx.needsGrad[slot]) return undefined;
    if (ctx.perExample[slot]) return perExampleGrad(ctx, p, slot as 0 | 1);
    return slot === 0 ? gradA(ctx, p) : gradB(ctx, p);
  });
}, { perExample: true });

/** unbroadcast towards a promoted operand whose static shape the context does not know. */
function unbroadcastTo(ctx: GradContext, grad: string, gShape: Dim[], target: Dim[], targetValue: string): string {
  const shapeOf = (v: string) => (v === targetValue ? target : ctx.shapeOf(v));
  return unbroadcast({ ...ctx, shapeOf }, grad, targetValue, gShape);
}
