/**
 * Per-example parameter gradients for DP-SGD, computed inside the training graph (no B separate
 * backward passes). For a node that consumes a parameter directly, a per-example rule gives the
 * gradient of that parameter with the batch axis kept: [N, ...paramShape], the contribution of
 * each example's loss alone. The ordinary rule still computes the data gradients that flow on.
 *
 * Rules, one per op family (the batch axis is axis 0 of the data):
 * - Conv:    W: per-offset strided slices times dY without the batch sum (conv.ts); B: dY summed
 *            over spatial axes.
 * - Gemm:    B: alpha * a_n (outer) dy_n per example (transB: dy_n (outer) a_n); C: beta * dY.
 * - MatMul:  x [N, ..., K] @ W [K, M]: x_n^T dy_n, summed over the middle axes of each example.
 * - Add/Sub/Mul/Div with a broadcast parameter operand: the elementwise partial derivative,
 *   summed over the broadcast axes except the batch axis.
 * Anything else that consumes a parameter makes the engine stop with an error naming the op.
 */
import type { GradContext } from './rule.js';
import type { Dim } from '../../graph/ir.js';
import { RpOnnxError } from '../../errors.js';
import { reduceSum, unsqueeze } from './rules/emit.js';
import { convGeometry, convWeightGrad } from './rules/conv.js';

/** Returns the per-example gradient [N, ...shape] of the parameter at input `slot`. */
export type PerExampleRule = (ctx: GradContext, slot: number) => string | undefined;

const rules = new Map<string, PerExampleRule>();

export function registerPerExample(ops: string[], rule: PerExampleRule): void {
  for (const op of ops) rules.set(op, rule);
}
export function perExampleRule(opType: string): PerExampleRule | undefined {
  return rules.get(opType);
}

/** `grad` (shape gShape, batch axis 0) summed to the parameter's shape, keeping the batch axis. */
export function perExampleUnbroadcast(ctx: GradContext, grad: string, gShape: readonly Dim[] | null, param: string): string {
  const pShape = ctx.shapeOf(param);
  if (!gShape || !pShape || pShape.some((d) => typeof d !== 'number')) {
    throw new RpOnnxError(`per-example gradient of '${param}' at node '${ctx.node.name}': static shapes are needed`);
  }
  const lead = gShape.length - pShape.length;
  if (lead < 0) throw new RpOnnxError(`per-example gradient of '${param}' at node '${ctx.node.name}': the parameter has a higher rank than the activation`);
  const axes: number[] = [];
  for (let i = 1; i < gShape.length; i++) {
    const pd = i - lead >= 0 ? pShape[i - lead] : undefined;
    if (pd === undefined || (pd === 1 && gShape[i] !== 1)) axes.push(i);
  }
  const summed = axes.length > 0 ? reduceSum(ctx, grad, axes, true) : grad;
  return ctx.b.op1('Reshape', [summed, ctx.b.int64s('shape', [-1, ...(pShape as number[])])]);
}

const out0 = (ctx: GradContext) => ctx.shapeOf(ctx.node.outputs[0]!);

registerPerExample(['Conv'], (ctx, slot) => {
  const dY = ctx.gradOutputs[0];
  if (!dY) return undefined;
  const g = convGeometry(ctx);
  if (slot === 1) return convWeightGrad(ctx, ctx.node.inputs[0]!, dY, g, true);
  if (slot === 2) return reduceSum(ctx, dY, g.win.kernel.map((_, i) => i + 2), false);
  return undefined;
});

registerPerExample(['Gemm'], (ctx, slot) => {
  const dY = ctx.gradOutputs[0];
  if (!dY) return undefined;
  const { node, b } = ctx;
  const [a] = node.inputs as [string];
  const alpha = node.getFloat('alpha', 1);
  const beta = node.getFloat('beta', 1);
  const scale = (v: string, s: number) => (s === 1 ? v : b.op1('Mul', [v, b.scalar('scale', s)]));
  if (slot === 1) {
    if (node.getInt('transA', 0) !== 0) throw new RpOnnxError(`per-example gradient through Gemm '${node.name}' with transA: the batch must be axis 0 of A`);
    // y_n = a_n B' (+ c): dB'_n = a_n^T dy_n, an outer product per example.
    const outer = node.getInt('transB', 0) !== 0
      ? b.op1('MatMul', [unsqueeze(ctx, dY, [2]), unsqueeze(ctx, a, [1])])
      : b.op1('MatMul', [unsqueeze(ctx, a, [2]), unsqueeze(ctx, dY, [1])]);
    return scale(outer, alpha);
  }
  if (slot === 2) return perExampleUnbroadcast(ctx, scale(dY, beta), out0(ctx), node.inputs[2]!);
  return undefined;
});

registerPerExample(['MatMul'], (ctx, slot) => {
  const dY = ctx.gradOutputs[0];
  if (!dY) return undefined;
  const { node, b } = ctx;
  const [x, w] = node.inputs as [string, string];
  const xs = ctx.shapeOf(x);
  const ws = ctx.shapeOf(w);
  if (slot !== 1 || !xs || !ws || ws.length !== 2 || xs.length < 2) {
    throw new RpOnnxError(`per-example gradient through MatMul '${node.name}': only data [N, ..., K] @ weight [K, M] is supported`);
  }
  const K = ws[0] as number;
  const M = ws[1] as number;
  // [N, T, K]^T @ [N, T, M] -> [N, K, M], the middle axes folded into T.
  const x3 = b.op1('Reshape', [x, b.int64s('shape', [0, -1, K])]);
  const d3 = b.op1('Reshape', [dY, b.int64s('shape', [0, -1, M])]);
  return b.op1('MatMul', [b.op1('Transpose', [x3], { perm: [0, 2, 1] }), d3]);
});

registerPerExample(['Add', 'Sub', 'Mul', 'Div'], (ctx, slot) => {
  const dY = ctx.gradOutputs[0];
  if (!dY) return undefined;
  const { node, b } = ctx;
  const [a, c] = node.inputs as [string, string];
  const other = slot === 0 ? c : a;
  let partial: string;
  switch (node.opType) {
    case 'Add': partial = dY; break;
    case 'Sub': partial = slot === 0 ? dY : b.op1('Neg', [dY]); break;
    case 'Mul': partial = b.op1('Mul', [dY, other]); break;
    default: // Div: a / c
      partial = slot === 0 ? b.op1('Div', [dY, c]) : b.op1('Neg', [b.op1('Div', [b.op1('Mul', [dY, a]), b.op1('Mul', [c, c])])]);
  }
  return perExampleUnbroadcast(ctx, partial, out0(ctx), node.inputs[slot]!);
});

/**
 * BatchNormalization with running statistics (frozen: a per-channel affine map, so examples do
 * not mix): d scale_n = sum over spatial axes of dY * xhat, d bias_n = sum of dY, with
 * xhat = (x - mean) / sqrt(var + eps) from the node's own statistics.
 */
registerPerExample(['BatchNormalization'], (ctx, slot) => {
  const dY = ctx.gradOutputs[0];
  if (!dY || (slot !== 1 && slot !== 2)) return undefined;
  const { node, b } = ctx;
  const [x, , , mean, variance] = node.inputs as [string, string, string, string, string];
  const rank = ctx.shapeOf(x)?.length;
  if (!rank) throw new RpOnnxError(`per-example gradient through BatchNormalization '${node.name}': the input rank is unknown`);
  const spatial = Array.from({ length: rank - 2 }, (_, i) => i + 2);
  if (slot === 2) return reduceSum(ctx, dY, spatial, false);
  const col = (v: string) => b.op1('Reshape', [v, b.int64s('shape', [-1, ...spatial.map(() => 1)])]);
  const eps = b.scalar('bn_eps', node.getFloat('epsilon', 1e-5));
  const xhat = b.op1('Div', [b.op1('Sub', [x, col(mean)]), b.op1('Sqrt', [b.op1('Add', [col(variance), eps])])]);
  return reduceSum(ctx, b.op1('Mul', [dY, xhat]), spatial, false);
});
