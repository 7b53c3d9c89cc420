/**
 * Gemm: Y = alpha * A' B' + beta * C, with A' = transA ? A^T : A and B' likewise.
 *
 *   dA' = alpha dY B'^T,  dB' = alpha A'^T dY,  dC = unbroadcast(beta dY)
 *
 * Each gradient is itself one Gemm whose trans flags absorb every transpose (no Transpose
 * nodes), e.g. transA = 0, transB = 0: dA = Gemm(dY, B, transB=1), dB = Gemm(A, dY, transA=1).
 *
 * Per example (DP-SGD; the examples are the rows of A' and Y): dB'_n = alpha a_n^T dy_n, one
 * outer product per example as a batched MatMul of [N, K, 1] and [N, 1, M] (for transB the
 * other way round, [N, M, 1] x [N, 1, K]); dC_n = beta dy_n reduced to C's shape.
 */
import { registerGradient } from '../registry.js';
import { float } from '../../../graph/builder.js';
import { unbroadcast } from '../unbroadcast.js';
import { scalarLike, unsqueeze } from '../emit.js';
import { noPerExample, perExampleUnbroadcast, requireBatchAxis } from '../per-example.js';

registerGradient('Gemm', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY) return [];
  const { node, b } = ctx;
  const [a, bm, c] = node.inputs as [string, string, string | undefined];
  const alpha = node.getFloat('alpha', 1);
  const beta = node.getFloat('beta', 1);
  const tA = node.getInt('transA', 0) !== 0;
  const tB = node.getInt('transB', 0) !== 0;
  // Before opset 11 Gemm's C is required: a zero scalar stands in.
  const noC = ctx.opset < 11 ? [scalarLike(ctx, 0, dY)] : [];
  const gemm = (x: string, y: string, transA: boolean, transB: boolean) =>
    b.op1('Gemm', [x, y, ...noC], { alpha: alpha === 1 ? undefined : float(alpha), transA: transA ? 1 : undefined, transB: transB ? 1 : undefined });

  let dA: string | undefined;
  if (ctx.needsGrad[0]) {
    // dA' = dY B'^T; for transA the gradient of A is (dA')^T = B' dY^T.
    dA = tA ? gemm(bm, dY, tB, true) : gemm(dY, bm, false, !tB);
  }
  if (ctx.perExample[0]) noPerExample(ctx, 0, 'the examples must be the rows of A');
  let dB: string | undefined;
  if (ctx.perExample[1]) {
    requireBatchAxis(ctx, a, tA ? 1 : 0);
    const aRows = tA ? b.op1('Transpose', [a], { perm: [1, 0] }) : a;
    const dYs = alpha === 1 ? dY : b.op1('Mul', [dY, scalarLike(ctx, alpha, dY)]);
    dB = tB
      ? b.op1('MatMul', [unsqueeze(ctx, dYs, [2]), unsqueeze(ctx, aRows, [1])])
      : b.op1('MatMul', [unsqueeze(ctx, aRows, [2]), unsqueeze(ctx, dYs, [1])]);
  } else if (ctx.needsGrad[1]) {
    // dB' = A'^T dY; for transB the gradient of B is (dB')^T = dY^T A'.
    dB = tB ? gemm(dY, a, true, tA) : gemm(a, dY, !tA, false);
  }
  let dC: string | undefined;
  if (c && ctx.needsGrad[2]) {
    const scaled = beta === 1 ? dY : b.op1('Mul', [dY, scalarLike(ctx, beta, dY)]);
    dC = ctx.perExample[2] ? perExampleUnbroadcast(ctx, scaled, c) : unbroadcast(ctx, scaled, c);
  }
  return [dA, dB, dC];
}, { perExample: true });
