/**
 * DP-SGD's per-example gradients inside the training graph, against an independent reference:
 * the ordinary training graph run on each example alone (a microbatch of one), whose gradient
 * is that example's loss gradient. Checked on every parameter of CNNs (Conv + bias, decomposed
 * GroupNorm, InstanceNormalization, GroupNormalization-21, Gemm with alpha/beta), the built-in
 * ResNet-8 (GroupNorm, no norm, frozen BatchNorm), an MLP whose parameters reach MatMul/Gemm
 * through Transpose/Reshape/Cast/Unsqueeze (Gemm transA, PRelu), and a transformer-like block
 * (LayerNormalization, decomposed LayerNorm, MatMul with the weight on either side and with a
 * batch axis of its own). Clip mode against sum_i g_i min(1, C / ||g_i||) from the references,
 * N = 1, and the refusals (BatchNorm batch statistics, unsupported ops, merged batch axes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Trainer } from '../src/train/trainer.js';
import { buildResNet } from '../models/index.js';
import type { Model } from '../src/graph/ir.js';
import { float, type GraphBuilder } from '../src/graph/builder.js';
import { Random } from '../src/random.js';
import { buildTrainingGraph } from '../src/passes/autodiff/training-graph.js';
import { emitGroupNorm, groupNormConstants } from '../src/passes/group-norm.js';
import { makeTensor, tensorDims } from '../src/graph/tensor.js';
import { buildModel } from './helpers/gradcheck.js';

const N = 3;

/** Random initializers: mean + std * normal. */
function weights(b: GraphBuilder, seed: number) {
  const r = new Random(seed);
  return (name: string, dims: number[], mean = 0, std = 0.4) =>
    b.initializer(name, dims, Float32Array.from({ length: dims.reduce((a, c) => a * c, 1) }, () => mean + std * r.normal()));
}

const image = (size: number) => ({ name: 'input', dims: ['N', 1, size, size] as (string | number)[] });

/** Conv + bias, decomposed GroupNorm, strided Conv, InstanceNormalization, Gemm (alpha, beta, C [1, 10]). */
function smallCnn(seed: number): Model {
  return buildModel({
    opset: 17, inputs: [image(8)], outputs: ['logits'],
    build: (b) => {
      const w = weights(b, seed);
      const c1 = b.op1('Conv', ['input', w('conv1.w', [4, 1, 3, 3]), w('conv1.b', [4])], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] });
      const gn = emitGroupNorm(b, groupNormConstants(b, 2, 17), 'gn1', c1, w('gn1.weight', [4, 1, 1], 1, 0.3), w('gn1.bias', [4, 1, 1]));
      const c2 = b.op1('Conv', [b.op1('Relu', [gn]), w('conv2.w', [6, 4, 3, 3])], { pads: [1, 1, 1, 1], strides: [2, 2], kernel_shape: [3, 3] });
      const inorm = b.op1('InstanceNormalization', [c2, w('in.scale', [6], 1, 0.3), w('in.bias', [6])]);
      const flat = b.op1('Flatten', [b.op1('Relu', [inorm])], { axis: 1 });
      b.op('Gemm', [flat, w('fc.w', [10, 96]), w('fc.b', [1, 10])], { transB: 1, alpha: float(0.7), beta: float(1.3) }, { outputs: ['logits'] });
    },
  });
}

/**
 * GroupNormalization (opset 21: per-channel scale; opset 18: per-group scale) and a depthwise
 * Conv, global pooling, Gemm.
 */
function groupNormOpCnn(seed: number, opset: 18 | 21): Model {
  return buildModel({
    opset, inputs: [image(6)], outputs: ['logits'],
    build: (b) => {
      const w = weights(b, seed);
      const c1 = b.op1('Conv', ['input', w('conv1.w', [4, 1, 3, 3])], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] });
      const affine = opset === 21 ? 4 : 2;
      const gn = b.op1('GroupNormalization', [c1, w('gn.scale', [affine], 1, 0.3), w('gn.bias', [affine])], { num_groups: 2 });
      const dw = b.op1('Conv', [b.op1('Relu', [gn]), w('dw.w', [4, 1, 3, 3]), w('dw.b', [4])], { pads: [1, 1, 1, 1], kernel_shape: [3, 3], group: 4 });
      const pooled = b.op1('Flatten', [b.op1('GlobalAveragePool', [b.op1('Relu', [dw])])], { axis: 1 });
      b.op('Gemm', [pooled, w('fc.w', [4, 10]), w('fc.b', [10])], {}, { outputs: ['logits'] });
    },
  });
}

/**
 * MatMul + Add with parameters behind layout ops (Transpose, Reshape, Cast, Unsqueeze), PRelu,
 * and a Gemm whose A is transposed activations (transA: the examples are A's columns).
 */
function mlp(seed: number): Model {
  return buildModel({
    opset: 17, inputs: [image(6)], outputs: ['logits'],
    build: (b) => {
      const w = weights(b, seed);
      const flat = b.op1('Flatten', ['input'], { axis: 1 });
      const w1 = b.op1('Transpose', [w('fc1.w_t', [8, 36])], { perm: [1, 0] });
      const b1 = b.op1('Reshape', [w('fc1.b', [1, 8]), b.int64s('shape', [8])]);
      const h = b.op1('Tanh', [b.op1('Add', [b.op1('MatMul', [flat, w1]), b1])]);
      const act = b.op1('PRelu', [b.op1('Sub', [h, b.scalar('shift', 0.3)]), w('prelu.slope', [8], 0.2, 0.1)]);
      const a = b.op1('Transpose', [act], { perm: [1, 0] });
      const w2 = b.op1('Cast', [w('fc2.w', [8, 10])], { to: 1 });
      const c = b.op1('Unsqueeze', [w('fc2.b', [10]), b.int64s('axes', [0])]);
      b.op('Gemm', [a, w2, c], { transA: 1 }, { outputs: ['logits'] });
    },
  });
}

/**
 * A transformer-like block on 6 tokens of 6 features: LayerNormalization, MatMul + bias, an MLP
 * with residual, token mixing by a weight on the left (W [6, 6] @ x [N, 6, 6]), LayerNorm in
 * elementary ops (gamma [6], beta [1, 6]), a weight with a broadcast batch axis [1, 6, 6],
 * mean over tokens, Gemm head.
 */
function transformerBlock(seed: number): Model {
  return buildModel({
    opset: 17, inputs: [image(6)], outputs: ['logits'],
    build: (b) => {
      const w = weights(b, seed);
      const x = b.op1('Reshape', ['input', b.int64s('tokens', [0, 6, 6])]);
      const ln = b.op1('LayerNormalization', [x, w('ln.scale', [6], 1, 0.3), w('ln.bias', [6])], { axis: -1, epsilon: float(1e-5) });
      const up = b.op1('Relu', [b.op1('Add', [b.op1('MatMul', [ln, w('mlp.up', [6, 8])]), w('mlp.up_b', [8])])]);
      const down = b.op1('MatMul', [up, b.op1('Transpose', [w('mlp.down_t', [6, 8])], { perm: [1, 0] })]);
      const res = b.op1('Add', [down, x]);
      const mixed = b.op1('MatMul', [w('mix.w', [6, 6]), res]);
      const mean = b.op1('ReduceMean', [mixed], { axes: [-1], keepdims: 1 });
      const centered = b.op1('Sub', [mixed, mean]);
      const variance = b.op1('ReduceMean', [b.op1('Mul', [centered, centered])], { axes: [-1], keepdims: 1 });
      const normed = b.op1('Div', [centered, b.op1('Sqrt', [b.op1('Add', [variance, b.scalar('eps', 1e-5)])])]);
      const affine = b.op1('Add', [b.op1('Mul', [normed, w('ln2.gamma', [6], 1, 0.3)]), w('ln2.beta', [1, 6])]);
      const proj = b.op1('MatMul', [affine, w('proj.w', [1, 6, 6])]);
      const pooled = b.op1('ReduceMean', [proj], { axes: [1], keepdims: 0 });
      b.op('Gemm', [pooled, w('head.w', [6, 10]), w('head.b', [10])], {}, { outputs: ['logits'] });
    },
  });
}

/** ResNet-8 with BatchNorm whose running statistics and affine parameters are not 0/1. */
function frozenBatchNormResNet(seed: number): Model {
  const m = buildResNet('resnet8', { inChannels: 1, imageSize: 12, norm: 'batch', seed });
  const r = new Random(seed);
  const g = m.graph;
  for (const node of g.nodes.filter((n) => n.opType === 'BatchNormalization')) {
    const [, scale, bias, mean, variance] = node.inputs as [string, string, string, string, string];
    const redraw = (name: string, f: () => number) => {
      const dims = tensorDims(g.initializers.get(name)!);
      g.initializers.set(name, makeTensor(name, dims, Float32Array.from({ length: dims[0]! }, f)));
    };
    redraw(scale, () => 1 + 0.3 * r.normal());
    redraw(bias, () => 0.3 * r.normal());
    redraw(mean, () => 0.3 * r.normal());
    redraw(variance, () => 0.5 + r.uniform());
  }
  return m;
}

function data(shape: number[], n: number, seed: number) {
  const r = new Random(seed);
  const per = shape.reduce((a, c) => a * c, 1);
  return { images: Float32Array.from({ length: n * per }, () => r.uniform()), labels: Int32Array.from({ length: n }, () => r.int(10)), per };
}

type Data = ReturnType<typeof data>;

/** Each example's gradients from the ordinary training graph on that example alone. */
async function microbatchOfOne(model: Model, batchNorm: 'train' | 'frozen', d: Data, n: number): Promise<{ grads: Map<string, Float32Array>[]; losses: number[] }> {
  const t = await Trainer.create(model, { optimizer: 'sgd', batchNorm, noiseSeed: 1 });
  const grads: Map<string, Float32Array>[] = [];
  const losses: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await t.forwardBackward(d.images.slice(i * d.per, (i + 1) * d.per), d.labels.slice(i, i + 1), 1);
    grads.push(new Map(t.training.params.map((p) => [p.name, Float32Array.from(r[p.gradient]!.data as Float32Array)])));
    losses.push((r[t.training.outputs.loss]!.data as Float32Array)[0]!);
  }
  await t.release();
  return { grads, losses };
}

/** |a - b| <= tol * max|b| elementwise (float32 sums in different orders). */
function assertClose(a: Float32Array, b: Float32Array, what: string, tol = 1e-4): void {
  assert.equal(a.length, b.length, `${what}: length`);
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i]! - b[i]!) <= tol * Math.max(scale, 1e-6), `${what}[${i}]: ${a[i]} vs ${b[i]} (scale ${scale})`);
  }
}

const norm = (g: Map<string, Float32Array>) => Math.sqrt([...g.values()].reduce((s, a) => s + a.reduce((t, v) => t + v * v, 0), 0));

/** sum_i g_i min(1, C / (||g_i|| + 1e-6)), from the references. */
function clippedSum(refs: Map<string, Float32Array>[], param: string, C: number): Float32Array {
  const out = new Float32Array(refs[0]!.get(param)!.length);
  for (const r of refs) {
    const f = Math.min(1, C / (norm(r) + 1e-6));
    r.get(param)!.forEach((v, j) => { out[j]! += f * v; });
  }
  return out;
}

const cases: [string, () => Model, number[], 'train' | 'frozen'][] = [
  ['small CNN (Conv + bias, decomposed GroupNorm, InstanceNormalization, Gemm alpha/beta)', () => smallCnn(1), [1, 8, 8], 'train'],
  ['GroupNormalization-21 + depthwise Conv', () => groupNormOpCnn(2, 21), [1, 6, 6], 'train'],
  ['GroupNormalization-18 (per-group scale)', () => groupNormOpCnn(2, 18), [1, 6, 6], 'train'],
  ['MLP (parameters through Transpose/Reshape/Cast/Unsqueeze, PRelu, Gemm transA)', () => mlp(3), [1, 6, 6], 'train'],
  ['transformer-like block (LayerNormalization, MatMul weights left/right/batched)', () => transformerBlock(4), [1, 6, 6], 'train'],
  ['resnet8 GroupNorm', () => buildResNet('resnet8', { inChannels: 1, imageSize: 12, norm: 'group', seed: 1 }), [1, 12, 12], 'train'],
  ['resnet8 without norm', () => buildResNet('resnet8', { inChannels: 1, imageSize: 12, norm: 'none', seed: 2 }), [1, 12, 12], 'train'],
  ['resnet8 frozen BatchNorm', () => frozenBatchNormResNet(3), [1, 12, 12], 'frozen'],
];

for (const [name, make, shape, bn] of cases) {
  test(`per-example gradients and clipping equal the microbatch-of-one reference: ${name}`, async () => {
    const model = make();
    const d = data(shape, N, 5);
    const { grads: refs, losses } = await microbatchOfOne(model, bn, d, N);

    const t = await Trainer.create(model, { optimizer: 'sgd', batchNorm: bn, dp: { mode: 'per-example' }, noiseSeed: 1 });
    assert.equal(t.training.dp?.perParam.length, t.training.params.length);
    const r = await t.dpGradients(d.images, d.labels, N, 1);
    assert.equal(r.grads.size, refs[0]!.size, 'every parameter has a per-example gradient');
    for (const [param, flat] of r.grads) {
      const size = flat.length / N;
      for (let i = 0; i < N; i++) assertClose(flat.subarray(i * size, (i + 1) * size), refs[i]!.get(param)!, `${param} example ${i}`);
    }
    for (let i = 0; i < N; i++) assert.ok(Math.abs(r.norms[i]! - norm(refs[i]!)) <= 1e-4 * norm(refs[i]!), `norm ${i}: ${r.norms[i]} vs ${norm(refs[i]!)}`);
    await t.release();

    // Clip mode, C between the norms: the smallest example is not clipped, the others are.
    const sorted = refs.map(norm).sort((a, b) => a - b);
    const C = (sorted[0]! + sorted[1]!) / 2;
    const tc = await Trainer.create(model, { optimizer: 'sgd', batchNorm: bn, dp: { mode: 'clip' }, noiseSeed: 1 });
    assert.ok(tc.training.dp?.clipInput);
    const rc = await tc.dpGradients(d.images, d.labels, N, C);
    assert.equal(rc.grads.size, refs[0]!.size);
    for (const [param, sum] of rc.grads) assertClose(sum, clippedSum(refs, param, C), `clipped sum ${param}`);
    refs.forEach((ref, i) => assert.ok(Math.abs(rc.norms[i]! - norm(ref)) <= 1e-4 * norm(ref), `clip-mode norm ${i}`));
    // The loss output stays the batch mean (for display).
    const meanLoss = losses.reduce((a, c) => a + c, 0) / N;
    assert.ok(Math.abs(rc.loss - meanLoss) <= 1e-5 * Math.max(1, meanLoss), `loss ${rc.loss} vs ${meanLoss}`);

    // N = 1: the one example clipped to C (its norm is above C when it is not the smallest).
    const big = refs.findIndex((ref) => norm(ref) > C);
    const one = await tc.dpGradients(d.images.slice(big * d.per, (big + 1) * d.per), d.labels.slice(big, big + 1), 1, C);
    assert.equal(one.norms.length, 1);
    for (const [param, sum] of one.grads) assertClose(sum, clippedSum([refs[big]!], param, C), `N = 1 ${param}`);
    await tc.release();
  });
}

test('a DP trainer updates with given gradients, counts steps, and still predicts', async () => {
  const model = smallCnn(1);
  const d = data([1, 8, 8], N, 6);
  const t = await Trainer.create(model, { optimizer: 'sgd', dp: { mode: 'clip' }, noiseSeed: 1 });
  const before = await t.predict(d.images, N);
  const r = await t.dpGradients(d.images, d.labels, N, 0.5);
  const name = t.training.params[0]!.name;
  const p0 = Float32Array.from(t.params.get(name)!);
  t.applyUpdate(r.grads, 0.1);
  assert.equal(t.stepCount, 1);
  const g = r.grads.get(name)!;
  t.params.get(name)!.forEach((v, i) => assert.ok(Math.abs(v - (p0[i]! - 0.1 * g[i]!)) < 1e-6, `sgd step ${i}`));
  const after = await t.predict(d.images, N);
  assert.equal(after.length, N * 10);
  assert.ok(after.some((v, i) => v !== before[i]), 'predictions follow the updated parameters');
  await assert.rejects(() => t.step(d.images, d.labels, N, 0.1), /dpGradients/);
  await t.release();
});

test('DP training refuses BatchNorm with batch statistics, naming --norm-fix', () => {
  const model = buildResNet('resnet8', { inChannels: 1, imageSize: 12, norm: 'batch', seed: 3 });
  assert.throws(() => buildTrainingGraph(model, { loss: 'cross-entropy', batchNorm: 'train', dp: { mode: 'clip' } }), /mix the examples.*--norm-fix freeze, group or public-batch/);
});

test('per-example gradients refuse what they cannot give, naming the op', () => {
  const dp = { loss: 'cross-entropy', dp: { mode: 'clip' } } as const;
  // An embedding lookup: no per-example rule for Gather.
  const embedding = buildModel({
    opset: 17, inputs: [{ name: 'tokens', dims: ['N', 4], dtype: 'int64' }], outputs: ['logits'],
    build: (b) => {
      const w = weights(b, 7);
      const e = b.op1('Gather', [w('emb', [20, 6]), 'tokens'], { axis: 0 });
      b.op('Gemm', [b.op1('ReduceMean', [e], { axes: [1], keepdims: 0 }), w('fc.w', [6, 10])], {}, { outputs: ['logits'] });
    },
  });
  assert.throws(() => buildTrainingGraph(embedding, dp), /per-example gradients \(DP-SGD\) are not available for op Gather .*'emb'/);
  // A parameter transformed by arithmetic before it meets the data (weight standardization).
  const transformed = buildModel({
    opset: 17, inputs: [image(4)], outputs: ['logits'],
    build: (b) => {
      const w = weights(b, 8);
      const flat = b.op1('Flatten', ['input'], { axis: 1 });
      b.op('MatMul', [flat, b.op1('Mul', [w('fc.w', [16, 10]), b.scalar('two', 2)])], {}, { outputs: ['logits'] });
    },
  });
  assert.throws(() => buildTrainingGraph(transformed, dp), /transformed by op Mul .*before it meets the data/);
  // Tokens folded into the batch axis before a MatMul: per-example gradients would be per token.
  const merged = buildModel({
    opset: 17, inputs: [image(4)], outputs: ['logits'],
    build: (b) => {
      const w = weights(b, 9);
      const rows = b.op1('Reshape', ['input', b.int64s('rows', [-1, 4])]);
      const h = b.op1('Relu', [b.op1('MatMul', [rows, w('fc1.w', [4, 4])])]);
      const back = b.op1('Reshape', [h, b.int64s('back', [-1, 16])]);
      b.op('MatMul', [back, w('fc2.w', [16, 10])], {}, { outputs: ['logits'] });
    },
  });
  assert.throws(() => buildTrainingGraph(merged, dp), /keep the batch axis \(N\)/);
});

test('public-batch BatchNorm: statistics fed as inputs; per-example gradients equal microbatch-of-one with the same statistics', async () => {
  const { publicStatisticsModel } = await import('../src/passes/public-statistics.js');
  const { evaluate, f64 } = await import('../src/reference/interpreter.js');
  const model = buildResNet('resnet8', { inChannels: 1, imageSize: 12, norm: 'batch', seed: 6 });
  const rng = new Random(8);
  const d = { images: Float32Array.from({ length: N * 144 }, () => rng.uniform()), labels: Int32Array.from({ length: N }, () => rng.int(10)), per: 144 };
  const t = await Trainer.create(model, { optimizer: 'sgd', batchNorm: 'fed', dp: { mode: 'per-example' }, noiseSeed: 1 });
  assert.ok((t.training.inputs.statistics ?? []).length > 0);
  // Public statistics: the stats model's outputs equal the batch mean/variance of each BN input,
  // checked for the first BN against a direct computation on the public batch.
  const pub = Float32Array.from({ length: 5 * 144 }, () => rng.uniform());
  const { model: sm, outputs } = publicStatisticsModel(model, [...t.params.keys()]);
  const feeds: Record<string, ReturnType<typeof f64>> = { input: f64([5, 1, 12, 12], Float64Array.from(pub)) };
  for (const [k, v] of t.params) feeds[k] = f64(model.graph.initializers.get(k)!.dims.map(Number), Float64Array.from(v));
  const out = evaluate(sm.graph, feeds, { opset: sm.opset() });
  const firstBn = model.graph.nodes.find((n) => n.opType === 'BatchNormalization')!;
  const conv = evaluate(model.graph, { input: f64([5, 1, 12, 12], Float64Array.from(pub)) }, { opset: model.opset(), outputs: [firstBn.inputs[0]!] })[firstBn.inputs[0]!]!;
  const x = conv.data as Float64Array;
  const C = conv.dims[1]!;
  const hw = conv.dims[2]! * conv.dims[3]!;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < 5; n++) for (let i = 0; i < hw; i++) s += x[(n * C + c) * hw + i]!;
    const mean = s / (5 * hw);
    assert.ok(Math.abs((out[outputs.get(firstBn.inputs[3]!)!]!.data as Float64Array)[c]! - mean) < 1e-9, `mean of channel ${c}`);
  }
  for (const [stat, o] of outputs) t.state.set(stat, Float32Array.from(out[o]!.data as Float64Array));
  const r = await t.dpGradients(d.images, d.labels, N, 1);
  const ref = await Trainer.create(model, { optimizer: 'sgd', batchNorm: 'fed', noiseSeed: 1 });
  for (const [k, v] of t.state) ref.state.set(k, v);
  for (let i = 0; i < N; i++) {
    const o = await ref.forwardBackward(d.images.slice(i * d.per, (i + 1) * d.per), d.labels.slice(i, i + 1), 1);
    for (const p of ref.training.params) {
      const flat = r.grads.get(p.name)!;
      const size = flat.length / N;
      assertClose(flat.subarray(i * size, (i + 1) * size), o[p.gradient]!.data as Float32Array, `${p.name} example ${i}`);
    }
  }
  await t.release();
  await ref.release();
});
