/**
 * The autodiff engine and the training-graph builder: whole-loss gradients of a small CNN with
 * BatchNormalization in training mode against finite differences, losses against closed forms,
 * running-statistics updates against a hand computation, dynamic batch sizes, pruning and
 * error messages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { float } from '../src/graph/builder.js';
import { makeTensor } from '../src/graph/tensor.js';
import { encodeModel } from '../src/graph/io.js';
import { Random } from '../src/random.js';
import { RpOnnxError } from '../src/errors.js';
import { buildTrainingGraph, globToRegExp, type TrainingGraph } from '../src/passes/autodiff/training-graph.js';
import { differentiate } from '../src/passes/autodiff/engine.js';
import { evaluate, type RefTensor } from '../src/reference/interpreter.js';
import { buildModel, randn } from './helpers/gradcheck.js';
import type { Model } from '../src/graph/ir.js';

const K = 3; // classes

/** Conv-BN-Relu-MaxPool-Conv(stride 2)-BN-Relu-GAP-Flatten-Gemm on [N, 1, 8, 8]. */
function smallCnn(rng: Random, opset = 17): Model {
  return buildModel({
    opset,
    inputs: [{ name: 'input', dims: ['batch', 1, 8, 8] }],
    outputs: ['logits'],
    build: (b) => {
      const init = (name: string, dims: number[], data?: Float32Array) => b.graph.addInitializer(makeTensor(name, dims, data ?? randn(rng, dims, 0.5)));
      const bn = (x: string, c: number, p: string) => {
        init(`${p}.weight`, [c], Float32Array.from(randn(rng, [c], 0.2), (v) => 1 + v));
        init(`${p}.bias`, [c], randn(rng, [c], 0.2));
        init(`${p}.running_mean`, [c], randn(rng, [c], 0.1));
        init(`${p}.running_var`, [c], Float32Array.from(randn(rng, [c], 0.1), (v) => 1 + Math.abs(v)));
        return b.op1('BatchNormalization', [x, `${p}.weight`, `${p}.bias`, `${p}.running_mean`, `${p}.running_var`], { epsilon: float(1e-5), momentum: float(0.9) });
      };
      init('conv1.weight', [4, 1, 3, 3]);
      init('conv1.bias', [4]);
      let h = b.op1('Conv', ['input', 'conv1.weight', 'conv1.bias'], { pads: [1, 1, 1, 1] });
      h = b.op1('Relu', [bn(h, 4, 'bn1')]);
      h = b.op1('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] });
      init('conv2.weight', [6, 4, 3, 3]);
      h = b.op1('Conv', [h, 'conv2.weight'], { pads: [1, 1, 1, 1], strides: [2, 2] });
      h = b.op1('Relu', [bn(h, 6, 'bn2')]);
      h = b.op1('Flatten', [b.op1('GlobalAveragePool', [h])], { axis: 1 });
      init('fc.weight', [K, 6]);
      init('fc.bias', [K]);
      b.op('Gemm', [h, 'fc.weight', 'fc.bias'], { transB: 1 }, { outputs: ['logits'] });
    },
  });
}

function initialFeeds(model: Model, tg: TrainingGraph): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  const g = model.graph;
  for (const p of tg.params) out.set(p.name, Float32Array.from(new Float32Array(g.initializers.get(p.name)!.rawData.slice().buffer)));
  for (const s of tg.outputs.bnStats ?? []) out.set(s.running, Float32Array.from(new Float32Array(g.initializers.get(s.running)!.rawData.slice().buffer)));
  return out;
}

async function session(tg: TrainingGraph): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(encodeModel(tg.model.toProto()), { intraOpNumThreads: 1 });
}

async function step(s: ort.InferenceSession, tg: TrainingGraph, x: Float32Array, dims: number[], labels: number[], params: Map<string, Float32Array>) {
  const feeds: Record<string, ort.Tensor> = {
    [tg.inputs.data[0]!]: new ort.Tensor('float32', x, dims),
    [tg.inputs.labels]: new ort.Tensor('int64', BigInt64Array.from(labels.map(BigInt)), [labels.length]),
  };
  const shapeOf = (name: string) => tg.model.graph.inputs.find((i) => i.name === name)!.type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue));
  for (const [k, v] of params) feeds[k] = new ort.Tensor('float32', v, shapeOf(k));
  return s.run(feeds);
}

test('small CNN with BatchNorm in train mode: every parameter gradient matches finite differences of the loss', async () => {
  const rng = new Random(21);
  const model = smallCnn(rng);
  const tg = buildTrainingGraph(model, { loss: 'cross-entropy', batchNorm: 'train' });
  assert.deepEqual(tg.params.map((p) => p.name).sort(), ['bn1.bias', 'bn1.weight', 'bn2.bias', 'bn2.weight', 'conv1.bias', 'conv1.weight', 'conv2.weight', 'fc.bias', 'fc.weight']);
  assert.equal(tg.outputs.bnStats?.length, 4);
  const N = 4;
  const x = randn(rng, [N, 1, 8, 8]);
  const labels = [0, 2, 1, 2];
  const params = initialFeeds(model, tg);
  const s = await session(tg);
  const out = await step(s, tg, x, [N, 1, 8, 8], labels, params);

  // Finite differences of the training graph's own loss, in float64 with the reference interpreter.
  const lossAt = (overrides: Map<string, Float64Array>) => {
    const feeds: Record<string, RefTensor> = {
      [tg.inputs.data[0]!]: { dims: [N, 1, 8, 8], data: Float64Array.from(x), dtype: 'float64' },
      [tg.inputs.labels]: { dims: [N], data: BigInt64Array.from(labels.map(BigInt)), dtype: 'int64' },
    };
    for (const [k, v] of params) {
      const dims = tg.params.find((p) => p.name === k)?.shape ?? [v.length];
      feeds[k] = { dims, data: overrides.get(k) ?? Float64Array.from(v), dtype: 'float64' };
    }
    const r = evaluate(tg.model.graph, feeds, { outputs: [tg.outputs.loss], opset: tg.model.opset('') });
    return (r[tg.outputs.loss]!.data as Float64Array)[0]!;
  };
  const loss64 = lossAt(new Map());
  assert.ok(Math.abs(loss64 - (out[tg.outputs.loss]!.data as Float32Array)[0]!) < 1e-5 * Math.max(1, Math.abs(loss64)));
  let worst = 0;
  for (const p of tg.params) {
    const analytic = out[p.gradient]!.data as Float32Array;
    assert.equal(analytic.length, p.shape.reduce((a, d) => a * d, 1));
    let scale = 0;
    for (const v of analytic) scale = Math.max(scale, Math.abs(v));
    const base = Float64Array.from(params.get(p.name)!);
    for (const idx of [...rng.permutation(base.length).slice(0, 6)]) {
      const h = 1e-6;
      const plus = Float64Array.from(base);
      plus[idx] = base[idx]! + h;
      const minus = Float64Array.from(base);
      minus[idx] = base[idx]! - h;
      const numeric = (lossAt(new Map([[p.name, plus]])) - lossAt(new Map([[p.name, minus]]))) / (2 * h);
      const err = Math.abs(numeric - analytic[idx]!) / Math.max(Math.abs(numeric), 0.1 * scale, 1e-5);
      worst = Math.max(worst, err);
      assert.ok(err < 2e-3, `${p.name}[${idx}]: analytic ${analytic[idx]} numeric ${numeric}`);
    }
  }
  await s.release();
});

test('cross-entropy loss and its logits gradient match the closed form; MSE too', async () => {
  const logits = [[2, 0.5, -1], [0, 0, 0], [-3, 1, 4]];
  const labels = [0, 2, 1];
  const N = 3;
  const model = buildModel({
    inputs: [{ name: 'x', dims: ['N', K] }],
    outputs: ['y'],
    build: (b) => {
      b.graph.addInitializer(makeTensor('w', [K], Float32Array.of(1, 1, 1)));
      b.op('Mul', ['x', 'w'], {}, { outputs: ['y'] });
    },
  });
  const x = Float32Array.from(logits.flat());
  // Closed form: loss = -mean log softmax[label]; dL/dw_k = mean_n (p_nk - onehot_nk) x_nk.
  let loss = 0;
  const dw = [0, 0, 0];
  logits.forEach((row, n) => {
    const z = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
    loss -= (row[labels[n]!]! - z) / N;
    row.forEach((v, k) => (dw[k]! += ((Math.exp(v - z) - (k === labels[n] ? 1 : 0)) * v) / N));
  });
  const tg = buildTrainingGraph(model, { loss: 'cross-entropy' });
  const s = await session(tg);
  const out = await step(s, tg, x, [N, K], labels, new Map([['w', Float32Array.of(1, 1, 1)]]));
  assert.ok(Math.abs((out[tg.outputs.loss]!.data as Float32Array)[0]! - loss) < 1e-6, `loss ${out[tg.outputs.loss]!.data[0]} vs ${loss}`);
  const g = out[tg.params[0]!.gradient]!.data as Float32Array;
  dw.forEach((v, k) => assert.ok(Math.abs(g[k]! - v) < 1e-6, `dw[${k}] ${g[k]} vs ${v}`));
  assert.deepEqual(Array.from(out[tg.outputs.logits]!.data as Float32Array), Array.from(x));

  // MSE: loss = mean((y - t)^2) over all elements, dL/dw_k = sum_n 2 (x w - t) x / numel.
  const t = Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  const tm = buildTrainingGraph(model, { loss: 'mse' });
  assert.equal(tm.inputs.labels, 'targets');
  const sm = await session(tm);
  const om = await sm.run({ x: new ort.Tensor('float32', x, [N, K]), targets: new ort.Tensor('float32', t, [N, K]), w: new ort.Tensor('float32', Float32Array.of(1, 1, 1), [K]) });
  let mse = 0;
  const dwm = [0, 0, 0];
  x.forEach((v, i) => {
    mse += (v - t[i]!) ** 2 / x.length;
    dwm[i % K]! += (2 * (v - t[i]!) * v) / x.length;
  });
  assert.ok(Math.abs((om[tm.outputs.loss]!.data as Float32Array)[0]! - mse) < 1e-5);
  const gm = om[tm.params[0]!.gradient]!.data as Float32Array;
  dwm.forEach((v, k) => assert.ok(Math.abs(gm[k]! - v) < 1e-5, `mse dw[${k}] ${gm[k]} vs ${v}`));
  await s.release();
  await sm.release();
});

test('BatchNorm running statistics: momentum blend with the unbiased batch variance', async () => {
  const rng = new Random(4);
  const C = 2;
  const model = buildModel({
    opset: 15,
    inputs: [{ name: 'x', dims: ['N', C, 2, 3] }],
    outputs: ['logits'],
    build: (b) => {
      b.graph.addInitializer(makeTensor('s', [C], Float32Array.of(1, 1)));
      b.graph.addInitializer(makeTensor('bb', [C], Float32Array.of(0, 0)));
      b.graph.addInitializer(makeTensor('rm', [C], Float32Array.of(0.5, -0.5)));
      b.graph.addInitializer(makeTensor('rv', [C], Float32Array.of(2, 3)));
      const y = b.op1('BatchNormalization', ['x', 's', 'bb', 'rm', 'rv'], { momentum: float(0.8) });
      b.graph.addInitializer(makeTensor('w', [K, C * 6], randn(rng, [K, C * 6])));
      b.op('Gemm', [b.op1('Flatten', [y]), 'w'], { transB: 1 }, { outputs: ['logits'] });
    },
  });
  const tg = buildTrainingGraph(model, { loss: 'cross-entropy', batchNorm: 'train' });
  assert.deepEqual(tg.outputs.bnStats!.map((s) => s.running), ['rm', 'rv']);
  const N = 3;
  const x = randn(rng, [N, C, 2, 3], 2);
  const s = await session(tg);
  const out = await step(s, tg, x, [N, C, 2, 3], [0, 1, 2], initialFeeds(model, tg));
  const M = N * 6;
  for (let c = 0; c < C; c++) {
    const vals: number[] = [];
    for (let n = 0; n < N; n++) for (let i = 0; i < 6; i++) vals.push(x[(n * C + c) * 6 + i]!);
    const mean = vals.reduce((a, v) => a + v, 0) / M;
    const unbiased = vals.reduce((a, v) => a + (v - mean) ** 2, 0) / (M - 1);
    const rm = [0.5, -0.5][c]! * 0.8 + mean * 0.2;
    const rv = [2, 3][c]! * 0.8 + unbiased * 0.2;
    const gotM = (out[tg.outputs.bnStats![0]!.updated]!.data as Float32Array)[c]!;
    const gotV = (out[tg.outputs.bnStats![1]!.updated]!.data as Float32Array)[c]!;
    assert.ok(Math.abs(gotM - rm) < 1e-5, `running mean[${c}] ${gotM} vs ${rm}`);
    assert.ok(Math.abs(gotV - rv) < 1e-5, `running var[${c}] ${gotV} vs ${rv}`);
  }
  await s.release();
});

test('one training graph runs any batch size: N=5 = weighted N=3 and N=2 (frozen BN)', async () => {
  const rng = new Random(8);
  const model = smallCnn(rng);
  const tg = buildTrainingGraph(model, { loss: 'cross-entropy', batchNorm: 'frozen' });
  assert.equal(tg.outputs.bnStats, undefined);
  assert.ok(!tg.params.some((p) => p.name.includes('running')));
  const params = initialFeeds(model, tg);
  const x = randn(rng, [5, 1, 8, 8]);
  const labels = [0, 1, 2, 1, 0];
  const s = await session(tg);
  const all = await step(s, tg, x, [5, 1, 8, 8], labels, params);
  const a = await step(s, tg, x.slice(0, 3 * 64), [3, 1, 8, 8], labels.slice(0, 3), params);
  const b = await step(s, tg, x.slice(3 * 64), [2, 1, 8, 8], labels.slice(3), params);
  const l = (o: typeof all) => (o[tg.outputs.loss]!.data as Float32Array)[0]!;
  assert.ok(Math.abs(l(all) - (3 * l(a) + 2 * l(b)) / 5) < 1e-5);
  for (const p of tg.params) {
    const ga = all[p.gradient]!.data as Float32Array;
    const g3 = a[p.gradient]!.data as Float32Array;
    const g2 = b[p.gradient]!.data as Float32Array;
    for (let i = 0; i < ga.length; i++) {
      const want = (3 * g3[i]! + 2 * g2[i]!) / 5;
      assert.ok(Math.abs(ga[i]! - want) < 1e-5 * (1 + Math.abs(want)), `${p.name}[${i}] ${ga[i]} vs ${want}`);
    }
  }
  await s.release();
});

test('opset 13 model (BatchNorm statistics by ReduceMean) trains and matches the opset 17 graph', async () => {
  const m17 = smallCnn(new Random(30), 17);
  const m13 = smallCnn(new Random(30), 13);
  const t17 = buildTrainingGraph(m17, { loss: 'cross-entropy' });
  const t13 = buildTrainingGraph(m13, { loss: 'cross-entropy' });
  const rng = new Random(2);
  const x = randn(rng, [3, 1, 8, 8]);
  const o17 = await step(await session(t17), t17, x, [3, 1, 8, 8], [1, 2, 0], initialFeeds(m17, t17));
  const o13 = await step(await session(t13), t13, x, [3, 1, 8, 8], [1, 2, 0], initialFeeds(m13, t13));
  for (const p of t17.params) {
    const g17 = o17[p.gradient]!.data as Float32Array;
    const g13 = o13[t13.params.find((q) => q.name === p.name)!.gradient]!.data as Float32Array;
    for (let i = 0; i < g17.length; i++) assert.ok(Math.abs(g17[i]! - g13[i]!) < 1e-4 * (1 + Math.abs(g17[i]!)), `${p.name}[${i}]`);
  }
  for (let i = 0; i < 4; i++) {
    const u17 = o17[t17.outputs.bnStats![i]!.updated]!.data as Float32Array;
    const u13 = o13[t13.outputs.bnStats![i]!.updated]!.data as Float32Array;
    u17.forEach((v, k) => assert.ok(Math.abs(v - u13[k]!) < 1e-5));
  }
});

test('freeze patterns, explicit trainable lists and their errors', () => {
  const model = smallCnn(new Random(1));
  const tg = buildTrainingGraph(model, { loss: 'cross-entropy', freeze: ['conv*', 'bn?.bias'] });
  assert.deepEqual(tg.params.map((p) => p.name).sort(), ['bn1.weight', 'bn2.weight', 'fc.bias', 'fc.weight']);
  // Frozen parameters stay initializers; trainable ones are inputs.
  assert.ok(tg.model.graph.initializers.has('conv1.weight'));
  assert.ok(tg.model.graph.inputs.some((i) => i.name === 'fc.weight'));
  const only = buildTrainingGraph(model, { loss: 'cross-entropy', trainable: ['fc.weight'] });
  assert.deepEqual(only.params.map((p) => p.name), ['fc.weight']);
  assert.throws(() => buildTrainingGraph(model, { loss: 'cross-entropy', trainable: ['nope'] }), /trainable names 'nope'/);
  assert.ok(globToRegExp('layer?.*').test('layer1.conv.weight'));
  assert.ok(!globToRegExp('fc').test('fc.weight'));
});

test('engine: pruning, no gradient through random noise, and a clear error for an op without a rule', () => {
  const model = buildModel({
    inputs: [{ name: 'x', dims: [2, 3] }],
    outputs: ['y'],
    build: (b) => {
      b.graph.addInitializer(makeTensor('w', [3], Float32Array.of(1, 2, 3)));
      const wx = b.op1('Mul', ['x', 'w']);
      const noise = b.op1('RandomNormalLike', [wx]);
      // Hardmax has no gradient rule but depends on no parameter: it must not be visited.
      const side = b.op1('Hardmax', ['x']);
      b.op('Sum', [wx, noise, side], {}, { outputs: ['y'] });
    },
  });
  const g = model.clone().graph;
  const grads = differentiate(g, { wrt: ['w'], seeds: new Map([['y', 'dy']]) });
  assert.deepEqual([...grads.keys()], ['w']);
  const emitted = g.nodes.filter((n) => n.name.startsWith('grad/'));
  // Only the Sum's gradient reaches Mul: nothing flows back through the noise into Mul's output
  // (which would need an accumulation of two contributions), and Hardmax is never visited.
  assert.ok(emitted.length > 0);
  assert.ok(!emitted.some((n) => n.name.includes('AccumulateGrad')));
  assert.ok(!emitted.some((n) => n.inputs.includes(g.nodes.find((x) => x.opType === 'Hardmax')!.outputs[0]!)));

  const bad = buildModel({
    inputs: [{ name: 'x', dims: [2, 3] }],
    outputs: ['y'],
    build: (b) => {
      b.graph.addInitializer(makeTensor('w', [3], Float32Array.of(1, 2, 3)));
      b.op('Hardmax', [b.op1('Mul', ['x', 'w'])], {}, { outputs: ['y'] });
    },
  });
  assert.throws(
    () => differentiate(bad.clone().graph, { wrt: ['w'], seeds: new Map([['y', 'dy']]) }),
    (e: unknown) => e instanceof RpOnnxError && /no gradient rule for op Hardmax \(node '.*'\); supported: .*Conv/.test(e.message),
  );
});
