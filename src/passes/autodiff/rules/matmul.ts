/**
 * MatMul with numpy semantics: Y[..., M, N] = A[..., M, K] B[..., K, N], batch dimensions
 * broadcast, and a 1-D operand promoted to a matrix (A: [K] -> [1, K], B: [K] -> [K, 1]) whose
 * added axis is dropped from Y.
 *
 *   dA = dY B^T,  dB = A^T dY   (then summed over broadcast batch dimensions)
 *
 * The common case of a 2-D weight B behind batched activations gets dB as one Gemm over the
 * flattened batch (Flatten + Gemm transA), never a batched product followed by a sum.
 */
import type { Dim } from '../../../graph/ir.js';
import { registerGradient } from '../registry.js';
import type { GradContext } from '../rule.js';
import { unbroadcast } from '../unbroadcast.js';
import { squeeze, unsqueeze } from './emit.js';
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

registerGradient('MatMul', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY) return [];
  const { b, node } = ctx;
  const [a, bm] = node.inputs as [string, string];
  const sa = ctx.shapeOf(a);
  const sb = ctx.shapeOf(bm);
  if (!sa || !sb) throw new RpOnnxError(`gradient of MatMul node '${node.name}': the ranks of its operands are unknown; run shape inference`);

  if (sa.length === 1 && sb.length === 1) {
    // Dot product: Y is a scalar.
    return [ctx.needsGrad[0] ? b.op1('Mul', [dY, bm]) : undefined, ctx.needsGrad[1] ? b.op1('Mul', [dY, a]) : undefined];
  }
  // Promote 1-D operands to matrices; dY gets the dropped axes back.
  const a2 = sa.length === 1 ? unsqueeze(ctx, a, [0]) : a;
  const b2 = sb.length === 1 ? unsqueeze(ctx, bm, [1]) : bm;
  const sa2: Dim[] = sa.length === 1 ? [1, sa[0]!] : [...sa];
  const sb2: Dim[] = sb.length === 1 ? [sb[0]!, 1] : [...sb];
  let dY2 = dY;
  if (sb.length === 1) dY2 = unsqueeze(ctx, dY2, [-1]);
  if (sa.length === 1) dY2 = unsqueeze(ctx, dY2, [-2]);
  const batch = broadcastDims(sa2.slice(0, -2), sb2.slice(0, -2));
  const M = sa2[sa2.length - 2]!;
  const K = sa2[sa2.length - 1]!;
  const N = sb2[sb2.length - 1]!;
  const yRank = batch.length + 2;

  let dA: string | undefined;
  if (ctx.needsGrad[0]) {
    let full: string;
    if (yRank === 2) full = b.op1('Gemm', [dY2, b2], { transB: 1 });
    else full = b.op1('MatMul', [dY2, swapLast(ctx, b2, sb2.length)]);
    let g = a2 === a ? unbroadcast(ctx, full, a, [...batch, M, K]) : unbroadcastTo(ctx, full, [...batch, M, K], sa2, a2);
    if (sa.length === 1) g = squeeze(ctx, g, [0]);
    dA = g;
  }
  let dB: string | undefined;
  if (ctx.needsGrad[1]) {
    let g: string;
    if (sb2.length === 2) {
      // Sum over every batch row at once: [rows, K]^T [rows, N].
      const rows = (x: string, rank: number) => (rank === 2 ? x : b.op1('Flatten', [x], { axis: rank - 1 }));
      g = b.op1('Gemm', [rows(a2, sa2.length), rows(dY2, yRank)], { transA: 1 });
    } else {
      const full = b.op1('MatMul', [swapLast(ctx, a2, sa2.length), dY2]);
      g = b2 === bm ? unbroadcast(ctx, full, bm, [...batch, K, N]) : unbroadcastTo(ctx, full, [...batch, K, N], sb2, b2);
    }
    if (sb.length === 1) g = squeeze(ctx, g, [1]);
    dB = g;
  }
  return [dA, dB];
});

/** unbroadcast towards a promoted operand whose static shape the context does not know. */
function unbroadcastTo(ctx: GradContext, grad: string, gShape: Dim[], target: Dim[], targetValue: string): string {
  const shapeOf = (v: string) => (v === targetValue ? target : ctx.shapeOf(v));
  return unbroadcast({ ...ctx, shapeOf }, grad, targetValue, gShape);
}
