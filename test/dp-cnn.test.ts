/**
 * The built-in dp-cnn (the tanh CNN of Papernot et al. 2021 / Tramer & Boneh 2021): parameter
 * counts against the closed form written from the papers' layer list, the forward pass in
 * onnxruntime against an independent float64 implementation of that layer list, PyTorch-default
 * initialisation bounds, option errors, and that its gradients train (plain and DP per-example).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { buildModel, findModel, countParameters } from '../models/index.js';
import { encodeModel } from '../src/graph/io.js';
import { tensorToFloat32, tensorDims } from '../src/graph/tensor.js';
import { tensorTypeOf, type Model } from '../src/graph/ir.js';
import { Trainer } from '../src/train/trainer.js';
import { Random } from '../src/random.js';

/** conv 16 8x8/2 pad 3, pool 2/1, conv 32 4x4/2, pool 2/1, fc 32, fc k, each with a bias. */
function closedForm(c: number, k: number, s: number): number {
  const o = (n: number, kern: number, stride: number, pad: number) => Math.floor((n + 2 * pad - kern) / stride) + 1;
  const side = o(o(o(o(s, 8, 2, 3), 2, 1, 0), 4, 2, 0), 2, 1, 0);
  return (16 * c * 64 + 16) + (32 * 16 * 16 + 32) + (32 * side * side * 32 + 32) + (32 * k + k);
}

test('parameter count: 26,010 for 1x28x28 (the papers\' figure) and the closed form for other shapes', () => {
  assert.equal(findModel('dp-cnn').parameters().trainable, 26_010);
  assert.equal(closedForm(1, 10, 28), 26_010);
  for (const [c, k, s] of [[1, 10, 28], [3, 7, 32], [1, 2, 14], [2, 10, 40]] as const) {
    const want = closedForm(c, k, s);
    assert.equal(findModel('dp-cnn').parameters({ inChannels: c, classes: k, imageSize: s }).trainable, want, `${c}x${s}x${s}, ${k} classes`);
    assert.equal(countParameters(buildModel('dp-cnn', { inChannels: c, classes: k, imageSize: s })).trainable, want);
  }
  assert.equal(findModel('dp-cnn').parameters().buffers, 0);
});

test('options: defaults 1x28x28, 10 classes; normalisation and too-small images refused', () => {
  const o = findModel('dp-cnn').resolve();
  assert.deepEqual([o.inChannels, o.imageSize, o.classes, o.norm], [1, 28, 10, 'none']);
  assert.throws(() => buildModel('dp-cnn', { norm: 'batch' }), /norm batch: dp-cnn has no normalisation/);
  assert.throws(() => buildModel('dp-cnn', { imageSize: 13 }), /imageSize 13 is too small for dp-cnn/);
  assert.doesNotThrow(() => buildModel('dp-cnn', { imageSize: 14 }));
});

// ---------------------------------------------------------------------------------------------
// An independent float64 forward pass, written from the layer list (NCHW, one example).

type W = (name: string) => { data: Float32Array; dims: number[] };

function conv(x: Float64Array, c: number, h: number, w: Float32Array, bias: Float32Array, cout: number, k: number, stride: number, pad: number) {
  const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
  const y = new Float64Array(cout * oh * oh);
  for (let o = 0; o < cout; o++) for (let i = 0; i < oh; i++) for (let j = 0; j < oh; j++) {
    let s = bias[o]!;
    for (let ci = 0; ci < c; ci++) for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) {
      const r = i * stride + a - pad, q = j * stride + b - pad;
      if (r >= 0 && r < h && q >= 0 && q < h) s += w[((o * c + ci) * k + a) * k + b]! * x[(ci * h + r) * h + q]!;
    }
    y[(o * oh + i) * oh + j] = s;
  }
  return { y, h: oh };
}

function pool2s1(x: Float64Array, c: number, h: number) {
  const oh = h - 1;
  const y = new Float64Array(c * oh * oh);
  for (let ci = 0; ci < c; ci++) for (let i = 0; i < oh; i++) for (let j = 0; j < oh; j++) {
    const at = (r: number, q: number) => x[(ci * h + r) * h + q]!;
    y[(ci * oh + i) * oh + j] = Math.max(at(i, j), at(i + 1, j), at(i, j + 1), at(i + 1, j + 1));
  }
  return { y, h: oh };
}

function linear(x: Float64Array, w: Float32Array, b: Float32Array, out: number): Float64Array {
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b[o]!;
    for (let i = 0; i < x.length; i++) s += w[o * x.length + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

function reference(get: W, x: Float64Array, c: number, s: number, classes: number): Float64Array {
  let a = conv(x, c, s, get('conv1.weight').data, get('conv1.bias').data, 16, 8, 2, 3);
  a = pool2s1(a.y.map(Math.tanh), 16, a.h);
  a = conv(a.y, 16, a.h, get('conv2.weight').data, get('conv2.bias').data, 32, 4, 2, 0);
  a = pool2s1(a.y.map(Math.tanh), 32, a.h);
  const h = linear(a.y, get('fc1.weight').data, get('fc1.bias').data, 32).map(Math.tanh);
  return linear(h, get('fc2.weight').data, get('fc2.bias').data, classes);
}

test('onnxruntime runs it, and its logits equal a float64 implementation of the layer list', async () => {
  for (const [c, k, s] of [[1, 10, 28], [3, 5, 20]] as const) {
    const m = buildModel('dp-cnn', { inChannels: c, classes: k, imageSize: s, seed: 5 });
    assert.deepEqual(tensorTypeOf(m.graph.inputs[0]!.type), { dtype: 'float32', shape: ['N', c, s, s] });
    const get: W = (name) => {
      const t = m.graph.initializers.get(name);
      assert.ok(t, name);
      return { data: tensorToFloat32(t), dims: tensorDims(t) };
    };
    const n = 3;
    const rng = new Random(2);
    const x = Float32Array.from({ length: n * c * s * s }, () => rng.uniform());
    const session = await ort.InferenceSession.create(encodeModel(m.toProto()), { intraOpNumThreads: 1, logSeverityLevel: 3 });
    const out = (await session.run({ input: new ort.Tensor('float32', x, [n, c, s, s]) })).logits!;
    await session.release();
    assert.deepEqual(out.dims, [n, k]);
    const y = out.data as Float32Array;
    for (let e = 0; e < n; e++) {
      const want = reference(get, Float64Array.from(x.subarray(e * c * s * s, (e + 1) * c * s * s)), c, s, k);
      for (let j = 0; j < k; j++) assert.ok(Math.abs(y[e * k + j]! - want[j]!) < 1e-5, `example ${e} logit ${j}: ${y[e * k + j]} vs ${want[j]}`);
    }
  }
});

test('PyTorch-default initialisation: every weight and bias within +-1/sqrt(fan_in), spread over it; seeded', () => {
  const m = buildModel('dp-cnn', { seed: 9 });
  const fanIn: Record<string, number> = { conv1: 64, conv2: 256, fc1: 512, fc2: 32 };
  for (const [layer, f] of Object.entries(fanIn)) {
    for (const part of ['weight', 'bias']) {
      const v = tensorToFloat32(m.graph.initializers.get(`${layer}.${part}`)!);
      const bound = 1 / Math.sqrt(f);
      const maxAbs = v.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
      assert.ok(maxAbs <= bound, `${layer}.${part} within bound`);
      if (v.length >= 256) assert.ok(maxAbs > 0.9 * bound, `${layer}.${part} fills the interval`);
    }
  }
  const again = buildModel('dp-cnn', { seed: 9 });
  assert.deepEqual(encodeModel(m.toProto()), encodeModel(again.toProto()));
});

/** Two classes told apart by which half of the image is bright. */
function halves(n: number, seed: number) {
  const rng = new Random(seed);
  const images = new Float32Array(n * 784);
  const labels = new Int32Array(n);
  for (let e = 0; e < n; e++) {
    labels[e] = e % 2;
    for (let p = 0; p < 784; p++) {
      const top = p < 392;
      images[e * 784 + p] = 0.3 * rng.uniform() + ((top ? labels[e] === 0 : labels[e] === 1) ? 0.7 : 0);
    }
  }
  return { images, labels };
}

test('its gradients train it: plain SGD and DP-SGD per-example clipping both fit a separable task', async () => {
  const { images, labels } = halves(32, 3);
  const lossOf = async (model: Model) => {
    const t = await Trainer.create(model, { optimizer: 'sgd', threads: 1 });
    const r = await t.forwardBackward(images, labels, 32);
    await t.release();
    return Number((r[t.training.outputs.loss]!.data as Float32Array)[0]);
  };
  const m = buildModel('dp-cnn', { seed: 1 });
  const before = await lossOf(m);
  const plain = await Trainer.create(m, { optimizer: 'sgd', momentum: 0.9, threads: 1 });
  for (let i = 0; i < 30; i++) await plain.step(images, labels, 32, 0.1);
  const afterPlain = await lossOf(plain.exportModel());
  await plain.release();
  assert.ok(afterPlain < 0.5 * before, `plain: ${before} -> ${afterPlain}`);

  const dp = await Trainer.create(m, { optimizer: 'sgd', momentum: 0.9, threads: 1, dp: { mode: 'clip' } });
  for (let i = 0; i < 30; i++) {
    const r = await dp.dpGradients(images, labels, 32, 1);
    assert.equal(r.norms.length, 32);
    for (const g of r.grads.values()) for (let j = 0; j < g.length; j++) g[j]! /= 32;
    dp.applyUpdate(new Map([...r.grads].map(([k, g]) => [k, Float32Array.from(g)])), 0.5);
  }
  const afterDp = await lossOf(dp.exportModel());
  await dp.release();
  assert.ok(afterDp < 0.5 * before, `DP clip: ${before} -> ${afterDp}`);
});
