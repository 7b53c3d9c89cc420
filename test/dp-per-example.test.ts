/**
 * Per-example gradients inside the training graph equal a microbatch-of-one reference (the
 * ordinary training graph run on each example alone), and in-graph clipping computes
 * sum_i g_i * min(1, C / ||g_i||).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Trainer } from '../src/train/trainer.js';
import { buildResNet } from '../models/index.js';
import { Model, makeTensorTypeProto, Graph } from '../src/graph/ir.js';
import { GraphBuilder } from '../src/graph/builder.js';
import { onnx } from '../src/graph/onnx.js';
import { Random } from '../src/random.js';
import { buildTrainingGraph } from '../src/passes/autodiff/training-graph.js';

const N = 3;

function mlp(seed: number): Model {
  const g = new Graph({ name: 'mlp' });
  g.inputs.push({ name: 'input', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', 1, 6, 6] }) });
  const b = new GraphBuilder(g);
  const r = new Random(seed);
  const w = (dims: number[]) => b.initializer('w', dims, Float32Array.from({ length: dims.reduce((a, c) => a * c, 1) }, () => r.normal() * 0.3));
  const flat = b.op1('Flatten', ['input'], { axis: 1 });
  const h = b.op1('Relu', [b.op1('Add', [b.op1('MatMul', [flat, w([36, 8])]), w([8])])]);
  const logits = b.op1('Gemm', [h, w([10, 8]), w([10])], { transB: 1 }, { name: 'head' });
  g.outputs.push({ name: logits, type: null });
  return new Model(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }] }), g);
}

function data(shape: number[], n: number, seed: number) {
  const r = new Random(seed);
  const per = shape.reduce((a, c) => a * c, 1);
  return { images: Float32Array.from({ length: n * per }, () => r.uniform()), labels: Int32Array.from({ length: n }, () => r.int(10)), per };
}

async function reference(model: Model, batchNorm: 'train' | 'frozen', d: ReturnType<typeof data>): Promise<Map<string, Float32Array>[]> {
  const t = await Trainer.create(model, { optimizer: 'sgd', batchNorm, noiseSeed: 1 });
  const out: Map<string, Float32Array>[] = [];
  for (let i = 0; i < N; i++) {
    const r = await t.forwardBackward(d.images.slice(i * d.per, (i + 1) * d.per), d.labels.slice(i, i + 1), 1);
    out.push(new Map(t.training.params.map((p) => [p.name, Float32Array.from(r[p.gradient]!.data as Float32Array)])));
  }
  await t.release();
  return out;
}

function assertClose(a: Float32Array, b: Float32Array, what: string, tol = 1e-4): void {
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i]! - b[i]!) <= tol * Math.max(scale, 1e-6), `${what}[${i}]: ${a[i]} vs ${b[i]} (scale ${scale})`);
  }
}

const cases: [string, () => Model, number[], 'train' | 'frozen'][] = [
  ['resnet8 GroupNorm', () => buildResNet('resnet8', { inChannels: 1, imageSize: 12, norm: 'group', seed: 1 }), [1, 12, 12], 'train'],
  ['resnet8 without norm', () => buildResNet('resnet8', { inChannels: 1, imageSize: 12, norm: 'none', seed: 2 }), [1, 12, 12], 'train'],
  ['resnet8 frozen BatchNorm', () => buildResNet('resnet8', { inChannels: 1, imageSize: 12, norm: 'batch', seed: 3 }), [1, 12, 12], 'frozen'],
  ['MLP (MatMul + Add, Gemm transB)', () => mlp(4), [1, 6, 6], 'train'],
];

for (const [name, make, shape, bn] of cases) {
  test(`per-example gradients equal microbatch-of-one gradients: ${name}`, async () => {
    const model = make();
    const d = data(shape, N, 5);
    const refs = await reference(model, bn, d);
    const t = await Trainer.create(model, { optimizer: 'sgd', batchNorm: bn, dp: { mode: 'per-example' }, noiseSeed: 1 });
    const r = await t.dpGradients(d.images, d.labels, N, 1);
    for (const [param, flat] of r.grads) {
      const size = flat.length / N;
      for (let i = 0; i < N; i++) assertClose(flat.subarray(i * size, (i + 1) * size), refs[i]!.get(param)!, `${param} example ${i}`);
    }
    // Norms: of each example's whole gradient.
    for (let i = 0; i < N; i++) {
      let sq = 0;
      for (const g of refs[i]!.values()) for (const v of g) sq += v * v;
      assert.ok(Math.abs(r.norms[i]! - Math.sqrt(sq)) < 1e-4 * Math.sqrt(sq), `norm ${i}`);
    }
    await t.release();

    // Clip mode with C between the norms: some examples clipped, some not.
    const sorted = [...r.norms].sort((a, b) => a - b);
    const C = (sorted[0]! + sorted[1]!) / 2;
    const tc = await Trainer.create(model, { optimizer: 'sgd', batchNorm: bn, dp: { mode: 'clip' }, noiseSeed: 1 });
    const rc = await tc.dpGradients(d.images, d.labels, N, C);
    for (const [param, sum] of rc.grads) {
      const expected = new Float32Array(sum.length);
      for (let i = 0; i < N; i++) {
        const f = Math.min(1, C / (r.norms[i]! + 1e-6));
        refs[i]!.get(param)!.forEach((v, j) => { expected[j]! += f * v; });
      }
      assertClose(sum, expected, `clipped sum ${param}`);
    }
    // N = 1 runs.
    const one = await tc.dpGradients(d.images.subarray(0, d.per), d.labels.subarray(0, 1), 1, C);
    assert.equal(one.norms.length, 1);
    await tc.release();
  });
}

test('DP training refuses BatchNorm with batch statistics, naming the fixes', () => {
  const model = buildResNet('resnet8', { inChannels: 1, imageSize: 12, norm: 'batch', seed: 3 });
  assert.throws(() => buildTrainingGraph(model, { loss: 'cross-entropy', batchNorm: 'train', dp: { mode: 'clip' } }), /--norm-fix freeze or --norm-fix group/);
});
