/**
 * Normalizations: BatchNormalization (inference and training_mode), InstanceNormalization,
 * GroupNormalization (opset 18: scale/bias per group; opset 21: per channel),
 * LayerNormalization (with its Mean/InvStdDev outputs), MeanVarianceNormalization,
 * LpNormalization and LRN. Variances are population variances (divide by the count), as the
 * spec's ReduceMean-based definitions give. stash_type is moot: everything is float64.
 */
import { input, opError, wantsOutput, type OpContext, type OpTable } from '../op.js';
import { broadcastTo, normAxis, sizeOf, type Arr } from '../tensor.js';
import { planReduction } from './reduce.js';

/** Mean and population variance of each contiguous block of `size` values. */
function blockStats(data: Float64Array, blocks: number, size: number): { mean: Float64Array; variance: Float64Array } {
  const mean = new Float64Array(blocks);
  const variance = new Float64Array(blocks);
  for (let b = 0; b < blocks; b++) {
    let s = 0;
    for (let i = 0; i < size; i++) s += data[b * size + i]!;
    const m = s / size;
    let v = 0;
    for (let i = 0; i < size; i++) {
      const d = data[b * size + i]! - m;
      v += d * d;
    }
    mean[b] = m;
    variance[b] = v / size;
  }
  return { mean, variance };
}

/** Per-channel mean and variance of x [N, C, ...] over N and the spatial axes. */
function channelStats(x: Arr): { mean: Float64Array; variance: Float64Array } {
  const [n, c] = x.dims as [number, number];
  const inner = sizeOf(x.dims.slice(2));
  const count = n * inner;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let b = 0; b < n; b++) for (let i = 0; i < inner; i++) s += x.data[(b * c + ch) * inner + i]!;
    const m = s / count;
    let v = 0;
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < inner; i++) {
        const d = x.data[(b * c + ch) * inner + i]! - m;
        v += d * d;
      }
    }
    mean[ch] = m;
    variance[ch] = v / count;
  }
  return { mean, variance };
}

function batchNormalization(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const scale = input(ctx, 1);
  const bias = input(ctx, 2);
  const runMean = input(ctx, 3);
  const runVar = input(ctx, 4);
  const eps = ctx.node.getFloat('epsilon', 1e-5);
  const momentum = ctx.node.getFloat('momentum', 0.9);
  const training = ctx.node.getInt('training_mode', 0) !== 0;
  const [n, c] = x.dims as [number, number];
  const inner = sizeOf(x.dims.slice(2));
  const stats = training ? channelStats(x) : { mean: runMean.data, variance: runVar.data };
  const y = new Float64Array(x.data.length);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const k = scale.data[ch]! / Math.sqrt(stats.variance[ch]! + eps);
      const m = stats.mean[ch]!;
      const base = (b * c + ch) * inner;
      for (let i = 0; i < inner; i++) y[base + i] = (x.data[base + i]! - m) * k + bias.data[ch]!;
    }
  }
  const out: Arr[] = [{ dims: [...x.dims], data: y, dtype: 'float64' }];
  if (training) {
    const blend = (running: Float64Array, current: Float64Array) => Float64Array.from(running, (r, ch) => r * momentum + current[ch]! * (1 - momentum));
    out.push({ dims: [c], data: blend(runMean.data, stats.mean), dtype: 'float64' });
    out.push({ dims: [c], data: blend(runVar.data, stats.variance), dtype: 'float64' });
  }
  return out;
}

/**
 * Normalizes x [N, C, ...] over blocks of `channelsPerGroup` channels, then applies
 * `scale[ch] * v + bias[ch]` per channel (`affine` gives those per channel).
 */
function groupNormalize(x: Arr, groups: number, eps: number, affine: (ch: number) => [number, number]): Float64Array {
  const [n, c] = x.dims as [number, number];
  const inner = sizeOf(x.dims.slice(2));
  const perGroup = c / groups;
  const size = perGroup * inner;
  const { mean, variance } = blockStats(x.data, n * groups, size);
  const y = new Float64Array(x.data.length);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const gi = b * groups + Math.floor(ch / perGroup);
      const inv = 1 / Math.sqrt(variance[gi]! + eps);
      const [s, t] = affine(ch);
      const base = (b * c + ch) * inner;
      for (let i = 0; i < inner; i++) y[base + i] = (x.data[base + i]! - mean[gi]!) * inv * s + t;
    }
  }
  return y;
}

function instanceNormalization(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const scale = input(ctx, 1);
  const bias = input(ctx, 2);
  const eps = ctx.node.getFloat('epsilon', 1e-5);
  const y = groupNormalize(x, x.dims[1]!, eps, (ch) => [scale.data[ch]!, bias.data[ch]!]);
  return [{ dims: [...x.dims], data: y, dtype: 'float64' }];
}

function groupNormalization(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const scale = input(ctx, 1);
  const bias = input(ctx, 2);
  const eps = ctx.node.getFloat('epsilon', 1e-5);
  const groups = ctx.node.getInt('num_groups', 0);
  const c = x.dims[1]!;
  if (groups <= 0 || c % groups !== 0) throw opError(ctx, `num_groups ${groups} does not divide ${c} channels`);
  // Opset 21 made scale/bias per channel; opset 18 had them per group. A node whose scale
  // length only fits the other reading is read that way.
  let perChannel = ctx.opset >= 21;
  if (scale.data.length !== (perChannel ? c : groups)) perChannel = !perChannel;
  if (scale.data.length !== (perChannel ? c : groups)) throw opError(ctx, `scale has ${scale.data.length} values for ${c} channels in ${groups} groups`);
  const perGroup = c / groups;
  const at = (ch: number) => (perChannel ? ch : Math.floor(ch / perGroup));
  const y = groupNormalize(x, groups, eps, (ch) => [scale.data[at(ch)]!, bias.data[at(ch)]!]);
  return [{ dims: [...x.dims], data: y, dtype: 'float64' }];
}

function layerNormalization(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const r = x.dims.length;
  const axis = normAxis(ctx.node.getInt('axis', -1), r);
  const eps = ctx.node.getFloat('epsilon', 1e-5);
  const outer = sizeOf(x.dims.slice(0, axis));
  const inner = sizeOf(x.dims.slice(axis));
  const scale = broadcastTo(input(ctx, 1), x.dims);
  const bias = ctx.inputs[2] ? broadcastTo(ctx.inputs[2], x.dims) : undefined;
  const { mean, variance } = blockStats(x.data, outer, inner);
  const invStd = Float64Array.from(variance, (v) => 1 / Math.sqrt(v + eps));
  const y = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const k = o * inner + i;
      y[k] = (x.data[k]! - mean[o]!) * invStd[o]! * scale[k]! + (bias ? bias[k]! : 0);
    }
  }
  const statDims = x.dims.map((d, i) => (i < axis ? d : 1));
  const out: Arr[] = [{ dims: [...x.dims], data: y, dtype: 'float64' }];
  if (wantsOutput(ctx, 1) || wantsOutput(ctx, 2)) {
    out.push({ dims: statDims, data: mean, dtype: 'float64' });
    out.push({ dims: [...statDims], data: invStd, dtype: 'float64' });
  }
  return out;
}

function meanVarianceNormalization(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const plan = planReduction(x.dims, ctx.node.getInts('axes', [0, 2, 3]));
  const sum = new Float64Array(plan.outSize);
  for (let k = 0; k < x.data.length; k++) sum[plan.slot[k]!] += x.data[k]!;
  const mean = sum.map((s) => s / plan.count);
  const sq = new Float64Array(plan.outSize);
  for (let k = 0; k < x.data.length; k++) {
    const d = x.data[k]! - mean[plan.slot[k]!]!;
    sq[plan.slot[k]!] += d * d;
  }
  // The spec's function body divides by sqrt(variance) + 1e-9.
  const denom = sq.map((s) => Math.sqrt(s / plan.count) + 1e-9);
  const y = Float64Array.from(x.data, (v, k) => (v - mean[plan.slot[k]!]!) / denom[plan.slot[k]!]!);
  return [{ dims: [...x.dims], data: y, dtype: 'float64' }];
}

function lpNormalization(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const p = ctx.node.getInt('p', 2);
  const plan = planReduction(x.dims, [ctx.node.getInt('axis', -1)]);
  const norm = new Float64Array(plan.outSize);
  for (let k = 0; k < x.data.length; k++) norm[plan.slot[k]!] += p === 1 ? Math.abs(x.data[k]!) : x.data[k]! ** 2;
  if (p !== 1) for (let j = 0; j < norm.length; j++) norm[j] = Math.sqrt(norm[j]!);
  const y = Float64Array.from(x.data, (v, k) => v / norm[plan.slot[k]!]!);
  return [{ dims: [...x.dims], data: y, dtype: 'float64' }];
}

function lrn(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const size = ctx.node.getInt('size', 1);
  const alpha = ctx.node.getFloat('alpha', 1e-4);
  const beta = ctx.node.getFloat('beta', 0.75);
  const bias = ctx.node.getFloat('bias', 1);
  const [n, c] = x.dims as [number, number];
  const inner = sizeOf(x.dims.slice(2));
  const lo = Math.floor((size - 1) / 2);
  const hi = Math.ceil((size - 1) / 2);
  const y = new Float64Array(x.data.length);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < inner; i++) {
        let s = 0;
        for (let j = Math.max(0, ch - lo); j <= Math.min(c - 1, ch + hi); j++) s += x.data[(b * c + j) * inner + i]! ** 2;
        const k = (b * c + ch) * inner + i;
        y[k] = x.data[k]! / (bias + (alpha / size) * s) ** beta;
      }
    }
  }
  return [{ dims: [...x.dims], data: y, dtype: 'float64' }];
}

export const normOps: OpTable = {
  BatchNormalization: batchNormalization,
  InstanceNormalization: instanceNormalization,
  GroupNormalization: groupNormalization,
  LayerNormalization: layerNormalization,
  MeanVarianceNormalization: meanVarianceNormalization,
  LpNormalization: lpNormalization,
  LRN: lrn,
};
