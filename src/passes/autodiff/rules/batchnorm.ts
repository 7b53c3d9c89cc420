/**
 * BatchNormalization, in both of its semantics.
 *
 * Inference (training_mode 0, the "frozen" BN of a training graph): Y = k (X - mean) + B with
 * k = scale / sqrt(var + eps) per channel, an affine map:
 *   dX = k dY,  dscale = invstd sum(dY (X - mean)),  dB = sum(dY)
 * (and, when mean/var are themselves computed, their gradients too).
 *
 * Training (training_mode 1): Y normalizes with the batch's own mean and biased variance over
 * every axis but the channel (M = N*H*W values per channel). The dedicated rule is
 *   dX = (k / M) (M dY - sum(dY) - xhat sum(dY xhat)),  dscale = sum(dY xhat),  dB = sum(dY)
 * with xhat = (X - mean) invstd, evaluated as dX = a dY + b X + c with per-channel a, b, c so
 * the full-size tensors are read only a few times. sum(dY xhat) = invstd (sum(dY X) - mean
 * sum(dY)) avoids materializing xhat. The batch statistics come from the forward node's own
 * outputs when it runs with momentum 0 (then its "running" outputs are exactly the batch mean
 * and biased variance; the training-graph builder sets this up), else they are recomputed.
 *
 * Per example (DP-SGD) only the inference form has gradients: dscale_n = invstd (sum(dY_n X_n)
 * - mean sum(dY_n)), dB_n = sum(dY_n), the sums over the spatial axes. With batch statistics
 * every example's output depends on the whole batch, so per-example gradients do not exist.
 */
import { registerGradient } from '../registry.js';
import type { GradContext } from '../rule.js';
import { float } from '../../../graph/builder.js';
import { RpOnnxError } from '../../../errors.js';
import { castLike, reduceSum, scalarLike } from '../emit.js';
import { noPerExample, requireBatchAxis } from '../per-example.js';
import { reduceMean } from './normalization.js';

/** [C] -> [1, C, 1, ...] for broadcasting against an input of rank `rank`. */
function perChannel(ctx: GradContext, v: string, rank: number): string {
  return ctx.b.op1('Reshape', [v, ctx.b.int64s('shape', [1, -1, ...new Array<number>(rank - 2).fill(1)])]);
}
function flat(ctx: GradContext, v: string): string {
  return ctx.b.op1('Reshape', [v, ctx.b.int64s('flat', [-1])]);
}

export interface BatchStats {
  /** Batch mean and biased variance, [C]. */
  mean: string;
  variance: string;
}

/** Batch mean and biased variance over every axis but 1, as [C] values. */
export function batchStatistics(ctx: GradContext, x: string, rank: number): BatchStats {
  const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
  const mean4 = reduceMean(ctx, x, axes, true);
  const xc = ctx.b.op1('Sub', [x, mean4]);
  const var4 = reduceMean(ctx, ctx.b.op1('Mul', [xc, xc]), axes, true);
  return { mean: flat(ctx, mean4), variance: flat(ctx, var4) };
}

registerGradient('BatchNormalization', (ctx) => {
  const dY = ctx.gradOutputs[0];
  const { b, node } = ctx;
  if (ctx.gradOutputs.slice(1).some((g) => g !== undefined)) {
    throw new RpOnnxError(`gradient of BatchNormalization node '${node.name}': its running-statistics outputs are not differentiable`);
  }
  if (!dY) return [];
  const [x, scale, , inMean, inVar] = node.inputs as [string, string, string, string, string];
  const rank = ctx.shapeOf(x)?.length;
  if (rank === undefined) throw new RpOnnxError(`gradient of BatchNormalization node '${node.name}': the rank of '${x}' is unknown`);
  const eps = node.getFloat('epsilon', 1e-5);
  const training = node.getInt('training_mode', 0) !== 0;
  const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
  const ch = (v: string) => perChannel(ctx, v, rank);

  let mean = inMean;
  let variance = inVar;
  if (training) {
    const [, outMean, outVar] = node.outputs;
    if (node.getFloat('momentum', 0.9) === 0 && outMean && outVar) {
      mean = outMean;
      variance = outVar;
    } else ({ mean, variance } = batchStatistics(ctx, x, rank));
  }
  const invstd = b.op1('Reciprocal', [b.op1('Sqrt', [b.op1('Add', [variance, scalarLike(ctx, eps, variance)])])]);
  const sumDy = reduceSum(ctx, dY, axes, false);
  const needStats = ctx.needsGrad[1] || training || ctx.needsGrad[3] || ctx.needsGrad[4];
  // sum(dY (X - mean)) = sum(dY X) - mean sum(dY), per channel.
  const sumDyXc = needStats ? b.op1('Sub', [reduceSum(ctx, b.op1('Mul', [dY, x]), axes, false), b.op1('Mul', [mean, sumDy])]) : undefined;
  const k = b.op1('Mul', [scale, invstd]);

  const grads: (string | undefined)[] = new Array<string | undefined>(node.inputs.length).fill(undefined);
  if (ctx.perExample.some(Boolean)) {
    const slot = ctx.perExample.indexOf(true);
    if (training) noPerExample(ctx, slot, 'BatchNormalization with batch statistics mixes the examples of a batch; use --norm-fix freeze, group or public-batch');
    if (slot !== 1 && slot !== 2) noPerExample(ctx, slot, 'only scale and bias have per-example gradients');
    requireBatchAxis(ctx, x);
    // Per-example sums over the spatial axes, [N, C].
    const spatialSum = (v: string) => (rank > 2 ? reduceSum(ctx, v, axes.slice(1), false) : v);
    const sumDyN = spatialSum(dY);
    if (ctx.perExample[1]) {
      const dyXc = b.op1('Sub', [spatialSum(b.op1('Mul', [dY, x])), b.op1('Mul', [mean, sumDyN])]);
      grads[1] = b.op1('Mul', [dyXc, invstd]);
    }
    if (ctx.perExample[2]) grads[2] = sumDyN;
  }
  if (ctx.needsGrad[1] && !ctx.perExample[1]) grads[1] = b.op1('Mul', [sumDyXc!, invstd]);
  if (ctx.needsGrad[2] && !ctx.perExample[2]) grads[2] = sumDy;
  if (ctx.needsGrad[0]) {
    if (!training) grads[0] = b.op1('Mul', [dY, ch(k)]);
    else {
      // dX = k dY - (k/M) sum(dY) - (k/M) invstd^2 sum(dY (X - mean)) (X - mean)
      //    = a dY + bc X + c,  a = k,  bc = -(k/M) invstd^2 sumDyXc,  c = -(k/M) sumDy - bc mean
      const count = castLike(ctx, b.op1('Div', [b.op1('Size', [x]), b.op1('Size', [scale])]), dY);
      const kOverM = b.op1('Div', [k, count]);
      const bc = b.op1('Neg', [b.op1('Mul', [kOverM, b.op1('Mul', [b.op1('Mul', [invstd, invstd]), sumDyXc!])])]);
      const c = b.op1('Sub', [b.op1('Neg', [b.op1('Mul', [kOverM, sumDy])]), b.op1('Mul', [bc, mean])]);
      // bc X + c in one pass: an inference BatchNormalization with mean 0 and variance 1 - eps.
      const zero = b.op1('Mul', [mean, scalarLike(ctx, 0, mean)]);
      const unit = b.op1('Add', [zero, scalarLike(ctx, 1 - eps, mean)]);
      const affine = b.op1('BatchNormalization', [x, bc, c, zero, unit], { epsilon: float(eps) });
      grads[0] = b.op1('Add', [b.op1('Mul', [dY, ch(k)]), affine]);
    }
  }
  if (!training && ctx.needsGrad[3]) grads[3] = b.op1('Neg', [b.op1('Mul', [k, sumDy])]);
  if (!training && ctx.needsGrad[4]) {
    // d/dvar of k (X - mean) = -1/2 scale invstd^3 (X - mean)
    const inv3 = b.op1('Mul', [invstd, b.op1('Mul', [invstd, invstd])]);
    grads[4] = b.op1('Mul', [b.op1('Mul', [scalarLike(ctx, -0.5, scale), b.op1('Mul', [scale, inv3])]), sumDyXc!]);
  }
  return grads;
}, { perExample: true });
