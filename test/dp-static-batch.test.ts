/**
 * The static-batch DP training graph (the trainer's full physical chunks) computes the same
 * per-example gradients, norms and clipped sums as the symbolic-batch one. The two use different
 * formulations of a 1-channel conv's per-example weight gradient (a grouped Conv vs per-offset
 * slices and batched MatMuls, rules/conv.ts), and the slice formulation is the one the
 * finite-difference tests of test/dp-per-example.test.ts check; so this is a second-method check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildModel as buildBuiltin } from '../models/index.js';
import { buildModel } from './helpers/gradcheck.js';
import { Trainer } from '../src/train/trainer.js';
import { Random } from '../src/random.js';
import type { Model } from '../src/graph/ir.js';
import { buildTrainingGraph } from '../src/passes/autodiff/training-graph.js';

/** The static-batch graph really takes the grouped-Conv path (a Conv with group = N). */
function usesGroupedConv(model: Model, n: number): boolean {
  const tg = buildTrainingGraph(model, { loss: 'cross-entropy', batchNorm: 'frozen', dp: { mode: 'clip' }, batchSize: n });
  return tg.model.graph.nodes.some((node) => node.opType === 'Conv' && node.getInt('group', 1) === n);
}

function close(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, what);
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-4 * scale + 1e-7, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

async function compare(model: Model, shape: number[], n: number, mode: 'clip' | 'per-example'): Promise<void> {
  const rng = new Random(3);
  const per = shape.reduce((a, c) => a * c, 1);
  const x = Float32Array.from({ length: n * per }, () => rng.normal());
  const y = Int32Array.from({ length: n }, () => rng.int(4));
  const t = await Trainer.create(model, { optimizer: 'sgd', threads: 1, dp: { mode } });
  try {
    const dynamic = await t.dpGradients(x, y, n, 0.05);
    const copy = { norms: Float32Array.from(dynamic.norms), grads: new Map([...dynamic.grads].map(([k, g]) => [k, Float32Array.from(g)])) };
    const fixed = await t.dpGradients(x, y, n, 0.05, n); // physical batch = n: the static-batch graph
    close(fixed.norms, copy.norms, `${mode} norms`);
    for (const [k, g] of copy.grads) close(fixed.grads.get(k)!, g, `${mode} ${k}`);
    // Chunks of 3 of 7: two static runs and one symbolic one, summed or concatenated.
    if (n === 7) {
      const chunked = await t.dpGradients(x, y, n, 0.05, 3);
      close(chunked.norms, copy.norms, `${mode} chunked norms`);
      for (const [k, g] of copy.grads) close(chunked.grads.get(k)!, g, `${mode} chunked ${k}`);
    }
  } finally {
    await t.release();
  }
}

test('dp-cnn: static-batch graph (grouped-Conv conv1) = symbolic-batch graph, clip and per-example modes', { timeout: 120_000 }, async () => {
  const m = buildBuiltin('dp-cnn', { inChannels: 1, imageSize: 28, classes: 4 });
  assert.ok(usesGroupedConv(m, 7));
  await compare(m, [1, 28, 28], 7, 'clip');
  await compare(m, [1, 28, 28], 5, 'per-example');
});

test('grouped-Conv per-example weight gradient: strides 2x3, dilation 2, asymmetric pads, taps past the kernel sliced', { timeout: 120_000 }, async () => {
  const r = new Random(5);
  const m = buildModel({
    opset: 17, inputs: [{ name: 'input', dims: ['N', 1, 11, 10] }], outputs: ['logits'],
    build: (b) => {
      // 4x3 kernel (12 offsets: the grouped formulation is used above 9).
      const w = b.initializer('c.w', [3, 1, 4, 3], Float32Array.from({ length: 36 }, () => 0.5 * r.normal()));
      const bias = b.initializer('c.b', [3], Float32Array.from({ length: 3 }, () => 0.1 * r.normal()));
      const c = b.op1('Conv', ['input', w, bias], { strides: [2, 3], dilations: [2, 1], pads: [1, 0, 0, 3], kernel_shape: [4, 3] });
      const flat = b.op1('Flatten', [b.op1('Tanh', [c])], { axis: 1 });
      // Conv output 3x4 (rows: (11+1-7)/2+1 = 3; cols: (10+3-3)/3+1 = 4); 4 column taps, 3 kept.
      const fw = b.initializer('fc.w', [4, 36], Float32Array.from({ length: 144 }, () => 0.2 * r.normal()));
      b.op('Gemm', [flat, fw], { transB: 1 }, { outputs: ['logits'] });
    },
  });
  assert.ok(usesGroupedConv(m, 7));
  await compare(m, [1, 11, 10], 7, 'clip');
  await compare(m, [1, 11, 10], 5, 'per-example');
});
