/**
 * The runtime's Gaussian generator (src/runtime/ziggurat.ts, native/ziggurat.c) against closed
 * forms of N(0, 1), the C addon against the TypeScript loop, and the externalization pass that
 * lets sessions feed it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ZigguratNormal, noiseBackend } from '../src/runtime/ziggurat.js';
import { externalizeNoise, simplifyNoiseTerms } from '../src/passes/externalize-noise.js';
import { Graph, Model, makeTensorTypeProto } from '../src/graph/ir.js';
import { onnx } from '../src/graph/onnx.js';
import { GraphBuilder, float } from '../src/graph/builder.js';
import { buildResNet } from '../models/resnet.js';
import { perturbModel } from '../src/passes/perturb.js';
import { createSession, ort } from '../src/runtime/session.js';
import { NoiseFeed } from '../src/runtime/noise-feed.js';

/** erfc with fractional error below 1.2e-7 (Chebyshev fit, Numerical Recipes' erfcc). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}
const normalCdf = (x: number) => 0.5 * erfc(-x / Math.SQRT2);
/** Where the ziggurat's tail sampler takes over. */
const TAIL = 3.6541528853610088;

test('ziggurat: moments, Kolmogorov-Smirnov distance and tail masses of N(0, 1)', () => {
  const n = 2_000_000;
  const z = new Float32Array(n);
  new ZigguratNormal(2024).fill(z);
  let s1 = 0, s2 = 0, s4 = 0, beyondTail = 0, beyond2 = 0;
  for (const v of z) {
    s1 += v; s2 += v * v; s4 += v ** 4;
    if (Math.abs(v) > TAIL) beyondTail++;
    if (Math.abs(v) > 2) beyond2++;
  }
  const mean = s1 / n, second = s2 / n, fourth = s4 / n;
  assert.ok(Math.abs(mean) < 5 / Math.sqrt(n), `mean ${mean}`);
  assert.ok(Math.abs(second - 1) < 5 * Math.sqrt(2 / n), `E[z^2] ${second}`);
  assert.ok(Math.abs(fourth - 3) < 5 * Math.sqrt(96 / n), `E[z^4] ${fourth}`);
  // Binomial counts: the tail sampler (|z| > 3.654) and the wedges around |z| = 2.
  for (const [count, x] of [[beyondTail, TAIL], [beyond2, 2]] as const) {
    const p = 2 * (1 - normalCdf(x));
    const sd = Math.sqrt(n * p * (1 - p));
    assert.ok(Math.abs(count - n * p) < 5 * sd, `P(|z| > ${x}): ${count} of ${n}, expected ${(n * p).toFixed(0)}`);
  }
  const sorted = Float64Array.from(z.subarray(0, 200_000)).sort();
  let d = 0;
  for (let i = 0; i < sorted.length; i++) {
    const f = normalCdf(sorted[i]!);
    d = Math.max(d, Math.abs(f - i / sorted.length), Math.abs(f - (i + 1) / sorted.length));
  }
  // 1.95 / sqrt(n) is the 0.1% critical value of the KS statistic.
  assert.ok(d < 1.95 / Math.sqrt(sorted.length), `KS distance ${d}`);
});

test('ziggurat: mean and scale; equal seeds repeat, secure generators and forks differ', () => {
  const a = new Float64Array(400_000);
  new ZigguratNormal(7).fill(a, 2, 3);
  const m = a.reduce((s, v) => s + v, 0) / a.length;
  const sd = Math.sqrt(a.reduce((s, v) => s + (v - m) ** 2, 0) / a.length);
  assert.ok(Math.abs(m - 2) < 5 * 3 / Math.sqrt(a.length), `mean ${m}`);
  assert.ok(Math.abs(sd - 3) < 5 * 3 / Math.sqrt(2 * a.length), `sd ${sd}`);
  const draw = (g: ZigguratNormal) => { const x = new Float32Array(64); g.fill(x); return x; };
  assert.deepEqual(draw(new ZigguratNormal(11)), draw(new ZigguratNormal(11)));
  assert.notDeepEqual(draw(new ZigguratNormal()), draw(new ZigguratNormal()));
  const root = new ZigguratNormal(11);
  assert.notDeepEqual(draw(root.fork(false)), draw(root.fork(false)));
  const reseeded = new ZigguratNormal(11);
  reseeded.reseed();
  assert.notDeepEqual(draw(reseeded), draw(new ZigguratNormal(11)));
});

test('ziggurat: a stream does not depend on how it is split into fills (both implementations)', () => {
  for (const portable of [false, true]) {
    const whole = new Float32Array(100_003);
    const one = new ZigguratNormal(5);
    if (portable) one.fillPortable(whole); else one.fill(whole);
    const parts = new Float32Array(whole.length);
    const two = new ZigguratNormal(5);
    for (const [from, to] of [[0, 1], [1, 4000], [4000, 4001], [4001, 100_003]] as const) {
      if (portable) two.fillPortable(parts.subarray(from, to)); else two.fill(parts.subarray(from, to));
    }
    assert.deepEqual(parts, whole, portable ? 'TypeScript' : noiseBackend);
  }
});

test('ziggurat: the C addon gives the same values as the TypeScript loop', { skip: noiseBackend !== 'native' && 'the C addon is not built here (npm install builds it where a C compiler exists)' }, () => {
  for (const n of [1, 2, 3, 1000, 1_000_001]) {
    for (const [mean, scale] of [[0, 1], [0.5, 0.25]] as const) {
      const c = new Float32Array(n), ts = new Float32Array(n);
      new ZigguratNormal(n).fill(c, mean, scale);
      new ZigguratNormal(n).fillPortable(ts, mean, scale);
      let diff = 0;
      for (let i = 0; i < n; i++) if (c[i] !== ts[i]) diff++;
      assert.equal(diff, 0, `n ${n}: ${diff} values differ`);
    }
  }
});

test('ziggurat: fillAsync draws the values and leaves the state that fill does (the TypeScript loop as reference); the generator refuses use meanwhile', async () => {
  for (const n of [1, 1000, 300_001]) {
    const gen = new ZigguratNormal(7 + n), ref = new ZigguratNormal(7 + n);
    const a = new Float32Array(n), r = new Float32Array(n);
    const pending = gen.fillAsync(a, 0.5, 2);
    if (noiseBackend === 'native') {
      assert.throws(() => gen.fill(new Float32Array(1)), /while its fillAsync was running/);
      assert.throws(() => gen.reseed(), /while its fillAsync was running/);
    }
    await pending;
    ref.fillPortable(r, 0.5, 2);
    assert.deepEqual(a, r, `n ${n}`);
    // The state was written back: the next values continue the same stream.
    const next = new Float32Array(5), refNext = new Float32Array(5);
    gen.fill(next);
    ref.fillPortable(refNext);
    assert.deepEqual(next, refNext);
  }
});

test('secure noise drawn ahead: every run gets fresh noise of its own shape, buffers in use are never refilled, concurrent runs are served one after another', async () => {
  const spec = [{ input: 'n', shape: ['batch', 1000], mean: 0.25, scale: 0.5 }, { input: 'm', shape: [3], mean: 0, scale: 1 }];
  const feed = new NoiseFeed(spec, new Map([['batch', { input: 'x', axis: 0 }]]), 'secure');
  const x = (b: number) => ({ x: new ort.Tensor('float32', new Float32Array(b), [b, 1]) });
  const r1 = await feed.feeds(x(4));
  const kept = Float32Array.from(r1.tensors.n!.data as Float32Array);
  // Not released yet: the next runs must use other buffers.
  const [r2, r3] = await Promise.all([feed.feeds(x(4)), feed.feeds(x(4))]);
  const r4 = await feed.feeds(x(2)); // another batch size: what was drawn ahead for 4 is dropped
  assert.deepEqual(r1.tensors.n!.data, kept, 'a run\'s noise is not overwritten while it is in use');
  const all = [r1, r2, r3, r4].map((r) => r.tensors.n!.data as Float32Array);
  assert.deepEqual(all.map((d) => d.length), [4000, 4000, 4000, 2000]);
  assert.equal(new Set(all.map((d) => d.buffer)).size, 4, 'four runs in use, four buffers');
  for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++) assert.notDeepEqual(all[i]!.subarray(0, 2000), all[j]!.subarray(0, 2000));
  // Each run's values are N(0.25, 0.5^2) (5 standard errors).
  for (const d of all) {
    const mean = d.reduce((a, v) => a + v, 0) / d.length;
    const sd = Math.sqrt(d.reduce((a, v) => a + (v - mean) ** 2, 0) / d.length);
    assert.ok(Math.abs(mean - 0.25) < 5 * 0.5 / Math.sqrt(d.length), `mean ${mean}`);
    assert.ok(Math.abs(sd - 0.5) < 5 * 0.5 / Math.sqrt(2 * d.length), `sd ${sd}`);
  }
  for (const r of [r1, r2, r3, r4]) r.release();
  // Released buffers are reused and refilled: after release, a run's values change with the next runs.
  const r5 = await feed.feeds(x(4)), r6 = await feed.feeds(x(4));
  assert.notDeepEqual(r5.tensors.n!.data, r6.tensors.n!.data);
  assert.notDeepEqual(r5.tensors.m!.data, r6.tensors.m!.data);
  r5.release();
  r6.release();
  // A batch size that changes at every run (a server) keeps a few buffers per noise op, not one more per run.
  for (let b = 1; b <= 30; b++) (await feed.feeds(x(b))).release();
  const pools = (feed as unknown as { free: Float32Array[][] }).free;
  assert.ok(pools.every((p) => p.length <= 2), `pools hold ${pools.map((p) => p.length).join(', ')} buffers`);
});

test('externalizeNoise: Gaussian ops with shapes known from the inputs become inputs; others stay', () => {
  const g = new Graph({ name: 'g' });
  g.inputs.push({ name: 'x', type: makeTensorTypeProto({ dtype: 'float32', shape: ['batch', 3] }) });
  const b = new GraphBuilder(g);
  b.op('RandomNormalLike', ['x'], { mean: float(1), scale: float(2) }, { outputs: ['n1'] });
  b.op('RandomNormal', [], { shape: [2, 5], dtype: 1 }, { outputs: ['n2'] });
  b.op('RandomNormal', [], { shape: [2, 5], dtype: 11 }, { outputs: ['n3'] }); // float64: stays
  b.op('NonZero', ['x'], {}, { outputs: ['nz'] });
  b.op('RandomNormalLike', ['nz'], { dtype: 1 }, { outputs: ['n4'] }); // data-dependent shape: stays
  for (const o of ['n1', 'n2', 'n3', 'n4']) g.outputs.push({ name: o, type: null });
  const { noise, symbols } = externalizeNoise(g, 17);
  assert.deepEqual(noise, [
    { input: 'n1', shape: ['batch', 3], mean: 1, scale: 2, check: 'n1/shape_check' },
    { input: 'n2', shape: [2, 5], mean: 0, scale: 1 },
  ]);
  assert.deepEqual(symbols.get('batch'), { input: 'x', axis: 0 });
  // A RandomNormalLike leaves Shape(like) as an output, which the runtime checks after each run.
  assert.deepEqual(g.nodes.map((n) => `${n.opType}(${n.inputs.join(',')})`), ['Shape(x)', 'RandomNormal()', 'NonZero(x)', 'RandomNormalLike(nz)']);
  assert.deepEqual(g.inputs.map((i) => i.name), ['x', 'n1', 'n2']);
  assert.ok(g.outputs.some((o) => o.name === 'n1/shape_check'));
});

test('simplifyNoiseTerms: noise times a scalar constant is fed scaled (the Mul goes); the output keeps N(x, gamma^2)', async () => {
  const build = () => {
    const g = new Graph({ name: 'g' });
    g.inputs.push({ name: 'x', type: makeTensorTypeProto({ dtype: 'float32', shape: ['batch', 1000] }) });
    g.outputs.push({ name: 'y', type: makeTensorTypeProto({ dtype: 'float32', shape: ['batch', 1000] }) });
    const b = new GraphBuilder(g);
    const n = b.op1('RandomNormalLike', ['x'], { mean: float(0.5), scale: float(2) });
    b.op('Add', ['x', b.op1('Mul', [n, b.initializer('gamma', [], Float32Array.of(0.25))])], {}, { outputs: ['y'] });
    return g;
  };
  const g = build();
  const { noise } = externalizeNoise(g, 17);
  simplifyNoiseTerms(g, noise);
  assert.deepEqual(g.nodes.map((v) => v.opType), ['Shape', 'Add']);
  assert.equal(noise[0]!.mean, 0.125);
  assert.equal(noise[0]!.scale, 0.5);
  // Through a session (which runs the pass): y - x ~ N(0.125, 0.5^2), every value drawn.
  const model = new Model(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }] }), build());
  const s = await createSession(model, { threads: 1, noiseSeed: 3 });
  assert.equal(s.fedNoise, 1);
  const y = (await s.run({ x: new ort.Tensor('float32', new Float32Array(8000).fill(1), [8, 1000]) })).y!.data as Float32Array;
  const d = Array.from(y, (v) => v - 1);
  const m = d.reduce((a, v) => a + v, 0) / d.length;
  const sd = Math.sqrt(d.reduce((a, v) => a + (v - m) ** 2, 0) / d.length);
  assert.ok(Math.abs(m - 0.125) < 5 * 0.5 / Math.sqrt(d.length), `mean ${m}`);
  assert.ok(Math.abs(sd - 0.5) < 5 * 0.5 / Math.sqrt(2 * d.length), `sd ${sd}`);
  assert.ok(new Set(d).size > 7900, 'values do not repeat (no broadcast)');
  await s.release();
});

test('noise fed with a shape other than the run-time shape of its tensor fails the run (no silent broadcast)', async () => {
  const feed = new NoiseFeed([{ input: 'n', shape: ['batch', 1], mean: 0, scale: 1, check: 'c' }], new Map([['batch', { input: 'x', axis: 0 }]]), 1);
  const x = new ort.Tensor('float32', new Float32Array(6), [2, 3]);
  const run = await feed.feeds({ x });
  assert.deepEqual(run.tensors.n!.dims, [2, 1]);
  assert.throws(() => run.verify({ c: new ort.Tensor('int64', BigInt64Array.of(2n, 3n), [2]) }), /fed with shape \[2, 1\] but the tensor it perturbs has shape \[2, 3\]/);
  run.verify({ c: new ort.Tensor('int64', BigInt64Array.of(2n, 1n), [2]) });
  run.release();
});

test('a session feeds the noise of a perturbed ResNet-8 (shapes follow the batch) and hides the noise inputs', async () => {
  const model = perturbModel(buildResNet('resnet8', { inChannels: 1, classes: 10, imageSize: 16, seed: 2 }), { gamma: 0.5, strategy: 'I', scale: 'absolute', toolVersion: 't' }).model;
  const s = await createSession(model, { threads: 1, noiseSeed: 3 });
  assert.equal(s.fedNoise, 3);
  assert.deepEqual(s.inputs.map((i) => i.name), ['input']);
  for (const n of [1, 5]) {
    const out = await s.run({ input: new ort.Tensor('float32', new Float32Array(n * 256), [n, 1, 16, 16]) });
    assert.deepEqual(out.logits!.dims, [n, 10]);
  }
  await s.release();
});

test('fed noise buffers are reused across runs without touching results already returned', async () => {
  const g = new Graph({ name: 'g' });
  g.inputs.push({ name: 'x', type: makeTensorTypeProto({ dtype: 'float32', shape: ['n', 4] }) });
  const b = new GraphBuilder(g);
  b.op('RandomNormalLike', ['x'], {}, { outputs: ['raw'] }); // the noise itself is an output
  b.op('RandomNormalLike', ['x'], {}, { outputs: ['e'] });
  b.op('Add', ['x', 'e'], {}, { outputs: ['y'] });
  g.outputs.push({ name: 'raw', type: null }, { name: 'y', type: null });
  const model = buildResNet('resnet8', { inChannels: 1, classes: 10, imageSize: 16, seed: 2 }).clone();
  model.graph = g;
  const s = await createSession(model, { threads: 1 });
  assert.equal(s.fedNoise, 2);
  const x = new ort.Tensor('float32', new Float32Array(8), [2, 4]);
  const first = await s.run({ x });
  const kept = { raw: Float32Array.from(first.raw!.data as Float32Array), y: Float32Array.from(first.y!.data as Float32Array) };
  const second = await s.run({ x });
  assert.deepEqual(first.raw!.data, kept.raw);
  assert.deepEqual(first.y!.data, kept.y);
  assert.notDeepEqual(second.y!.data, kept.y);
  assert.notDeepEqual(second.raw!.data, kept.raw);
  await s.release();
});
