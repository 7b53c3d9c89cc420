/**
 * LayerNormalization, GroupNormalization, InstanceNormalization: normalizations whose
 * statistics belong to one example, so their gradient is the same per-row formula. With
 * xhat = (x - mean) invstd over a row and g = dY * scale,
 *
 *   dx = invstd (g - mean(g) - xhat mean(g xhat)),  dscale = sum(dY xhat),  dB = sum(dY)
 *
 * where the means run over the row and the sums over everything the parameter is shared by.
 * LayerNormalization gets mean/invstd from the forward node's optional Mean and InvStdDev
 * outputs (added to the node when absent); Group/Instance normalization recompute them from
 * x viewed as [N, groups, -1].
 *
 * Per example (DP-SGD): the statistics are per example already, so dscale_n and dB_n are the
 * same sums taken over every axis but the batch axis.
 */
import { registerGradient } from '../registry.js';
import type { GradContext } from '../rule.js';
import { RpOnnxError } from '../../../errors.js';
import { unbroadcast } from '../unbroadcast.js';
import { reduceSum, scalarLike } from '../emit.js';
import { noPerExample, perExampleReshape, perExampleUnbroadcast, requireBatchAxis } from '../per-example.js';

/** ReduceMean over `axes`, with axes as an input from opset 18. */
export function reduceMean(ctx: GradContext, x: string, axes: readonly number[], keepdims: boolean): string {
  const keep = keepdims ? 1 : 0;
  if (ctx.opset >= 18) return ctx.b.op1('ReduceMean', [x, ctx.b.int64s('axes', axes)], { keepdims: keep });
  return ctx.b.op1('ReduceMean', [x], { keepdims: keep, axes: [...axes] });
}

/** invstd (g - mean(g) - xhat mean(g xhat)) over `axes`. */
function rowBackward(ctx: GradContext, g: string, xhat: string, invstd: string, axes: number[]): string {
  const b = ctx.b;
  const m1 = reduceMean(ctx, g, axes, true);
  const m2 = reduceMean(ctx, b.op1('Mul', [g, xhat]), axes, true);
  return b.op1('Mul', [invstd, b.op1('Sub', [b.op1('Sub', [g, m1]), b.op1('Mul', [xhat, m2])])]);
}

function rankOrThrow(ctx: GradContext, x: string): number {
  const r = ctx.shapeOf(x)?.length;
  if (r === undefined) throw new RpOnnxError(`gradient of ${ctx.node.opType} node '${ctx.node.name}': the rank of '${x}' is unknown`);
  return r;
}

registerGradient('LayerNormalization', (ctx) => {
  const { b, node } = ctx;
  if (ctx.gradOutputs.slice(1).some((g) => g !== undefined)) {
    throw new RpOnnxError(`gradient of LayerNormalization node '${node.name}': gradients through its Mean/InvStdDev outputs are not supported`);
  }
  const dY = ctx.gradOutputs[0];
  if (!dY) return [];
  const [x, scale, bias] = node.inputs as [string, string, string | undefined];
  const rank = rankOrThrow(ctx, x);
  let axis = node.getInt('axis', -1);
  if (axis < 0) axis += rank;
  const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
  // The forward node's own statistics (shape [d0..d(axis-1), 1, ...]).
  for (const i of [1, 2]) {
    if (!node.outputs[i]) {
      while (node.outputs.length < i) node.outputs.push('');
      node.outputs[i] = b.graph.uniqueName(`${node.outputs[0]}_${i === 1 ? 'mean' : 'invstd'}`);
    }
  }
  b.graph.invalidate();
  const [, mean, invstd] = node.outputs as [string, string, string];
  const xhat = b.op1('Mul', [b.op1('Sub', [x, mean]), invstd]);
  const grads: (string | undefined)[] = [undefined, undefined, undefined];
  if (ctx.needsGrad[0]) grads[0] = rowBackward(ctx, b.op1('Mul', [dY, scale]), xhat, invstd, axes);
  if ((ctx.perExample[1] || ctx.perExample[2]) && axis === 0) noPerExample(ctx, ctx.perExample[1] ? 1 : 2, 'axis 0 normalizes over the batch, mixing examples');
  const toParam = (g: string, p: string, i: number) => (ctx.perExample[i] ? perExampleUnbroadcast(ctx, g, p, ctx.shapeOf(x)) : unbroadcast(ctx, g, p, ctx.shapeOf(x)));
  if (ctx.needsGrad[1]) grads[1] = toParam(b.op1('Mul', [dY, xhat]), scale, 1);
  if (bias && ctx.needsGrad[2]) grads[2] = toParam(dY, bias, 2);
  return grads;
}, { perExample: true });

/**
 * Shared by GroupNormalization and InstanceNormalization: x [N, C, ...] normalized per
 * (example, group) with `groups` groups (0: one group per channel). `perChannel` says whether
 * scale and bias have one entry per channel (else one per group, GroupNormalization-18).
 */
function groupedBackward(ctx: GradContext, groups: number, perChannel: boolean): (string | undefined)[] {
  const { b, node } = ctx;
  const dY = ctx.gradOutputs[0];
  if (!dY) return [];
  const [x, scale, bias] = node.inputs as [string, string, string];
  const rank = rankOrThrow(ctx, x);
  const eps = node.getFloat('epsilon', 1e-5);
  const rows = (v: string) => b.op1('Reshape', [v, b.int64s('rows', [0, groups, -1])]);
  const xr = rows(x);
  const mean = reduceMean(ctx, xr, [2], true);
  const xc = b.op1('Sub', [xr, mean]);
  const variance = reduceMean(ctx, b.op1('Mul', [xc, xc]), [2], true);
  const invstd = b.op1('Reciprocal', [b.op1('Sqrt', [b.op1('Add', [variance, scalarLike(ctx, eps, variance)])])]);
  const xhat = b.op1('Mul', [xc, invstd]);
  const shape = b.op1('Shape', [x]);
  const grads: (string | undefined)[] = [undefined, undefined, undefined];
  if (ctx.perExample[1] || ctx.perExample[2]) requireBatchAxis(ctx, x);
  // Parameter gradients sum over the batch too, except per example (DP-SGD).
  const paramSum = (v: string, axes: number[], i: number) => (ctx.perExample[i]
    ? perExampleReshape(ctx, axes.length > 0 ? reduceSum(ctx, v, axes, false) : v, node.inputs[i]!)
    : reduceSum(ctx, v, [0, ...axes], false));
  if (perChannel) {
    const spatial = Array.from({ length: rank - 2 }, (_, i) => i + 2);
    const ch = (v: string) => b.op1('Reshape', [v, b.int64s('shape', [1, -1, ...spatial.map(() => 1)])]);
    if (ctx.needsGrad[0]) grads[0] = b.op1('Reshape', [rowBackward(ctx, rows(b.op1('Mul', [dY, ch(scale)])), xhat, invstd, [2]), shape]);
    if (ctx.needsGrad[1]) grads[1] = paramSum(b.op1('Mul', [dY, b.op1('Reshape', [xhat, shape])]), spatial, 1);
    if (ctx.needsGrad[2]) grads[2] = paramSum(dY, spatial, 2);
  } else {
    const dYr = rows(dY);
    const perGroup = (v: string) => b.op1('Reshape', [v, b.int64s('shape', [1, -1, 1])]);
    if (ctx.needsGrad[0]) grads[0] = b.op1('Reshape', [rowBackward(ctx, b.op1('Mul', [dYr, perGroup(scale)]), xhat, invstd, [2]), shape]);
    if (ctx.needsGrad[1]) grads[1] = paramSum(b.op1('Mul', [dYr, xhat]), [2], 1);
    if (ctx.needsGrad[2]) grads[2] = paramSum(dYr, [2], 2);
  }
  return grads;
}

registerGradient('GroupNormalization', (ctx) =>
  groupedBackward(ctx, ctx.node.getInt('num_groups', 0), ctx.opset >= 21), { perExample: true });

registerGradient('InstanceNormalization', (ctx) => groupedBackward(ctx, 0, true), { perExample: true });
