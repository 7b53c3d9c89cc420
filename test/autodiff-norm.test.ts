/**
 * Gradient rules of BatchNormalization (inference and training semantics), LayerNormalization,
 * GroupNormalization and InstanceNormalization against central finite differences.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { float } from '../src/graph/builder.js';
import { makeTensor } from '../src/graph/tensor.js';
import { Random } from '../src/random.js';
import { buildModel, gradcheck, randn, type Feed } from './helpers/gradcheck.js';

const rng = new Random(5);
const feed = (dims: number[], shift = 0): Feed => {
  const d = randn(rng, dims);
  for (let i = 0; i < d.length; i++) d[i] = d[i]! * 1.5 + shift;
  return { dims, data: d };
};
const positive = (n: number) => Float32Array.from(randn(rng, [n]), (v) => 0.5 + Math.abs(v));

for (const training of [false, true]) {
  for (const momentum of training ? [0, 0.9] : [0.9]) {
    test(`BatchNormalization ${training ? `training mode, momentum ${momentum}` : 'inference mode'}`, async () => {
      const x = [3, 4, 3, 2];
      const model = buildModel({
        opset: 15,
        inputs: [{ name: 'X', dims: x }],
        outputs: ['Y'],
        build: (b) => {
          b.graph.addInitializer(makeTensor('scale', [4], randn(rng, [4])));
          b.graph.addInitializer(makeTensor('B', [4], randn(rng, [4])));
          b.graph.addInitializer(makeTensor('mean', [4], randn(rng, [4])));
          b.graph.addInitializer(makeTensor('var', [4], positive(4)));
          const attrs = { epsilon: float(1e-3), momentum: float(momentum), training_mode: training ? 1 : undefined };
          b.op('BatchNormalization', ['X', 'scale', 'B', 'mean', 'var'], attrs, { outputs: training ? ['Y', 'rm', 'rv'] : ['Y'] });
        },
      });
      const wrt = training ? ['X', 'scale', 'B'] : ['X', 'scale', 'B', 'mean', 'var'];
      const r = await gradcheck({ model, wrt, inputs: { X: feed(x, 2) }, probes: 12 });
      assert.equal(r.mode, 'float64');
      assert.ok(r.ok, r.report);
    });
  }
}

test('BatchNormalization on 2-D input (BatchNorm1d)', async () => {
  const model = buildModel({
    opset: 15,
    inputs: [{ name: 'X', dims: [5, 3] }],
    outputs: ['Y'],
    build: (b) => {
      for (const n of ['scale', 'B', 'mean']) b.graph.addInitializer(makeTensor(n, [3], randn(rng, [3])));
      b.graph.addInitializer(makeTensor('var', [3], positive(3)));
      b.op('BatchNormalization', ['X', 'scale', 'B', 'mean', 'var'], { training_mode: 1, momentum: float(0) }, { outputs: ['Y', 'rm', 'rv'] });
    },
  });
  const r = await gradcheck({ model, wrt: ['X', 'scale', 'B'], inputs: { X: feed([5, 3]) } });
  assert.ok(r.ok, r.report);
});

for (const [name, x, axis, scaleDims] of [
  ['last axis', [2, 3, 5], -1, [5]],
  ['axis 1 of 4-D', [2, 3, 2, 2], 1, [3, 2, 2]],
  ['broadcast scale', [2, 3, 4], 1, [1, 4]],
] as [string, number[], number, number[]][]) {
  test(`LayerNormalization ${name}`, async () => {
    const model = buildModel({
      opset: 17,
      inputs: [{ name: 'X', dims: x }],
      outputs: ['Y'],
      build: (b) => {
        b.graph.addInitializer(makeTensor('scale', scaleDims, randn(rng, scaleDims)));
        b.graph.addInitializer(makeTensor('B', scaleDims, randn(rng, scaleDims)));
        b.op('LayerNormalization', ['X', 'scale', 'B'], { axis, epsilon: float(1e-4) }, { outputs: ['Y'] });
      },
    });
    const r = await gradcheck({ model, wrt: ['X', 'scale', 'B'], inputs: { X: feed(x, 1) }, probes: 12 });
    assert.equal(r.mode, 'float64');
    assert.ok(r.ok, r.report);
  });
}

for (const opset of [18, 21]) {
  test(`GroupNormalization opset ${opset} (${opset >= 21 ? 'per-channel' : 'per-group'} scale)`, async () => {
    const x = [2, 6, 3, 2];
    const p = opset >= 21 ? 6 : 3;
    const model = buildModel({
      opset,
      inputs: [{ name: 'X', dims: x }],
      outputs: ['Y'],
      build: (b) => {
        b.graph.addInitializer(makeTensor('scale', [p], randn(rng, [p])));
        b.graph.addInitializer(makeTensor('B', [p], randn(rng, [p])));
        b.op('GroupNormalization', ['X', 'scale', 'B'], { num_groups: 3, epsilon: float(1e-4) }, { outputs: ['Y'] });
      },
    });
    const r = await gradcheck({ model, wrt: ['X', 'scale', 'B'], inputs: { X: feed(x, -1) }, probes: 12 });
    assert.equal(r.mode, 'float64');
    assert.ok(r.ok, r.report);
  });
}

test('InstanceNormalization', async () => {
  const x = [2, 3, 4, 3];
  const model = buildModel({
    opset: 17,
    inputs: [{ name: 'X', dims: x }],
    outputs: ['Y'],
    build: (b) => {
      b.graph.addInitializer(makeTensor('scale', [3], randn(rng, [3])));
      b.graph.addInitializer(makeTensor('B', [3], randn(rng, [3])));
      b.op('InstanceNormalization', ['X', 'scale', 'B'], { epsilon: float(1e-4) }, { outputs: ['Y'] });
    },
  });
  const r = await gradcheck({ model, wrt: ['X', 'scale', 'B'], inputs: { X: feed(x, 3) }, probes: 12 });
  assert.equal(r.mode, 'float64');
  assert.ok(r.ok, r.report);
});
