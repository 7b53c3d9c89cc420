/**
 * Classification losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (which is NLL
 * of the log-softmax over axis 1), with optional class weights, ignore_index and reduction
 * none/sum/mean. "mean" divides by the summed weights of the non-ignored targets (their count
 * without weights), as the spec defines it.
 */
import { input, opError, wantsOutput, type OpContext, type OpTable } from '../op.js';
import { sizeOf, type Arr } from '../tensor.js';
import { logSumExp } from './softmax.js';

/** NLL of log-probabilities `logp` [N, C, d...] against integer targets [N, d...]. */
function nll(ctx: OpContext, logp: Arr, target: Arr, weights: Arr | undefined): Arr {
  const [n, c] = logp.dims as [number, number];
  const inner = sizeOf(logp.dims.slice(2));
  const ignore = ctx.node.getInt('ignore_index');
  const reduction = ctx.node.getString('reduction', 'mean');
  const loss = new Float64Array(n * inner);
  let weightSum = 0;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < inner; i++) {
      const t = target.data[b * inner + i]!;
      if (t === ignore) continue;
      if (t < 0 || t >= c) throw opError(ctx, `target ${t} is outside [0, ${c})`);
      const w = weights ? weights.data[t]! : 1;
      loss[b * inner + i] = -logp.data[(b * c + t) * inner + i]! * w;
      weightSum += w;
    }
  }
  const total = loss.reduce((a, v) => a + v, 0);
  switch (reduction) {
    case 'none': return { dims: [...target.dims], data: loss, dtype: 'float64' };
    case 'sum': return { dims: [], data: Float64Array.of(total), dtype: 'float64' };
    case 'mean': return { dims: [], data: Float64Array.of(total / weightSum), dtype: 'float64' };
    default: throw opError(ctx, `unknown reduction '${reduction}'`);
  }
}

function logSoftmaxAxis1(x: Arr): Arr {
  const [n, c] = x.dims as [number, number];
  const inner = sizeOf(x.dims.slice(2));
  const y = new Float64Array(x.data.length);
  const row = new Float64Array(c);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < inner; i++) {
      for (let k = 0; k < c; k++) row[k] = x.data[(b * c + k) * inner + i]!;
      const lse = logSumExp(row);
      for (let k = 0; k < c; k++) y[(b * c + k) * inner + i] = row[k]! - lse;
    }
  }
  return { dims: [...x.dims], data: y, dtype: 'float64' };
}

export const lossOps: OpTable = {
  NegativeLogLikelihoodLoss: (ctx) => [nll(ctx, input(ctx, 0), input(ctx, 1), ctx.inputs[2])],
  SoftmaxCrossEntropyLoss: (ctx) => {
    const logp = logSoftmaxAxis1(input(ctx, 0));
    const loss = nll(ctx, logp, input(ctx, 1), ctx.inputs[2]);
    return wantsOutput(ctx, 1) ? [loss, logp] : [loss];
  },
};
