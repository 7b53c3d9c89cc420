/**
 * The one clipping formula (src/clipping.ts) against closed forms, and each place that applies
 * it: the training graph's clipped sum, the DP step of the gradient-leakage attacks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIP_EPSILON, clipFactor } from '../src/clipping.js';
import { Trainer } from '../src/train/trainer.js';
import { privatizeGradient } from '../src/audit/gradient-leakage.js';
import { Random } from '../src/random.js';
import { buildModel } from './helpers/gradcheck.js';

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('clipFactor: a 3-4-5 gradient is clipped to (0.6, 0.8) at C 1; below C, at 0 and at C exactly it behaves as DP-SGD needs', () => {
  const f = clipFactor(5, 1);
  close(3 * f, 0.6, 1e-6, 'x');
  close(4 * f, 0.8, 1e-6, 'y');
  assert.ok(5 * f <= 1, 'never above C');
  assert.equal(clipFactor(0.5, 1), 1, 'a gradient inside the ball is unchanged');
  assert.equal(clipFactor(0, 1), 1, 'a zero gradient: factor 1, not NaN');
  assert.ok(clipFactor(2, 2) < 1 && 2 * clipFactor(2, 2) <= 2, 'norm exactly C: scaled just below C');
  close(1 - 2 * clipFactor(2, 2) / 2, CLIP_EPSILON / 2, 1e-12, 'the epsilon is the only slack');
});

test('the training graph clips with the same formula: closed-form per-example gradients of softmax regression at W = 0', async () => {
  // logits = W x + b with W = 0, b = 0: p = (1/2, 1/2), so example (x, y) has db = p - e_y = (+-1/2, -+1/2)
  // and dW = db x^T, of norm sqrt((||x||^2 + 1) / 2).
  const model = buildModel({
    opset: 17, inputs: [{ name: 'input', dims: ['N', 2] }], outputs: ['logits'],
    build: (b) => {
      b.op('Gemm', ['input', b.initializer('w', [2, 2], new Float32Array(4)), b.initializer('b', [2], new Float32Array(2))], { transB: 1 }, { outputs: ['logits'] });
    },
  });
  const xs = [[3, 4], [0.1, 0.2]];
  const ys = [0, 1];
  const C = 1;
  const t = await Trainer.create(model, { optimizer: 'sgd', dp: { mode: 'clip' }, noiseSeed: 1 });
  try {
    const r = await t.dpGradients(Float32Array.from(xs.flat()), Int32Array.from(ys), 2, C);
    const expectedW = [0, 0, 0, 0];
    const expectedB = [0, 0];
    xs.forEach((x, i) => {
      const n = Math.sqrt((x[0]! ** 2 + x[1]! ** 2 + 1) / 2);
      close(r.norms[i]!, n, 1e-5, `norm ${i}`);
      const f = Math.min(1, C / (n + 1e-6));
      const db = ys[i] === 0 ? [-0.5, 0.5] : [0.5, -0.5];
      for (let c = 0; c < 2; c++) {
        expectedB[c]! += f * db[c]!;
        for (let j = 0; j < 2; j++) expectedW[c * 2 + j]! += f * db[c]! * x[j]!;
      }
    });
    assert.ok(r.norms[0]! > C && r.norms[1]! < C, 'one example clipped, one not');
    Array.from(r.grads.get('w')!).forEach((v, k) => close(v, expectedW[k]!, 1e-6, `w[${k}]`));
    Array.from(r.grads.get('b')!).forEach((v, k) => close(v, expectedB[k]!, 1e-6, `b[${k}]`));
  } finally {
    await t.release();
  }
});

test('the attacks\' DP step clips a 3-4-5 gradient to (0.6, 0.8) without noise, and leaves one inside the ball as it is', () => {
  const dp = { maxGradNorm: 1, noiseMultiplier: 0 };
  const [leak] = privatizeGradient([{ dw: Float64Array.of(3), db: Float64Array.of(4) }], dp, new Random(1));
  close(leak!.dw[0]!, 0.6, 1e-6, 'dw');
  close(leak!.db![0]!, 0.8, 1e-6, 'db');
  const [inside] = privatizeGradient([{ dw: Float64Array.of(0.3), db: Float64Array.of(0.4) }], dp, new Random(1));
  assert.deepEqual([inside!.dw[0], inside!.db![0]], [0.3, 0.4]);
});
