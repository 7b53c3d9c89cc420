/**
 * Residual perturbation: structure of the rewrite, noise statistics against closed forms, noise
 * independence across sessions, exact undo by strip, and the refusal of double perturbation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Graph, Model, makeTensorTypeProto, tensorTypeOf } from '../src/graph/ir.js';
import { GraphBuilder } from '../src/graph/builder.js';
import { onnx } from '../src/graph/onnx.js';
import { encodeModel, loadModel, saveModel } from '../src/graph/io.js';
import { findResidualBlocks } from '../src/graph/residual-finder.js';
import { buildResNet } from '../models/resnet.js';
import { perturbModel, readPerturbation, PERTURBATION_KEY, SEED_KEY, VERSION_KEY } from '../src/passes/perturb.js';
import { stripPerturbation } from '../src/passes/strip.js';
import { createSession, ort, type RpSession } from '../src/runtime/session.js';
import { seedRandomOps, countRandomOps } from '../src/runtime/noise-seeding.js';
import { Random } from '../src/random.js';
import { RpOnnxError } from '../src/errors.js';
import { SYSTEM_PYTHON, skipWithoutPythonOnnx } from './helpers/python-onnx.js';

const V = '0.0.0-test';
const N = 64, C = 4, H = 8, W = 8;

/**
 * y = Add(Conv1x1(x; Wc), x): a residual block whose branch F(x) = Wc x is also a graph output,
 * so a test reads x, F(x) and the perturbed y of one run.
 */
function handBlock(opset = 17): Model {
  const g = new Graph({ name: 'block' });
  g.inputs.push({ name: 'x', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', C, H, W] }) });
  const b = new GraphBuilder(g);
  const w = new Float32Array(C * C);
  const rng = new Random(3);
  for (let i = 0; i < w.length; i++) w[i] = rng.normal() * 0.7;
  const wc = b.initializer('wc', [C, C, 1, 1], w);
  b.op('Conv', ['x', wc], {}, { outputs: ['f'], name: 'conv' });
  b.op('Add', ['f', 'x'], {}, { outputs: ['y'], name: 'residual' });
  const t = makeTensorTypeProto({ dtype: 'float32', shape: ['N', C, H, W] });
  g.outputs.push({ name: 'y', type: t }, { name: 'f', type: t });
  return new Model(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: opset }] }), g);
}

function randomInput(n: number, per: number, seed: number): Float32Array {
  const a = new Float32Array(n * per);
  new Random(seed).fillNormal(a);
  return a;
}

async function runBlock(s: RpSession, x: Float32Array): Promise<{ y: Float32Array; f: Float32Array }> {
  const out = await s.run({ x: new ort.Tensor('float32', x, [N, C, H, W]) });
  return { y: out.y!.data as Float32Array, f: out.f!.data as Float32Array };
}

function meanVar(a: ArrayLike<number>): { mean: number; variance: number } {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  const mean = s / a.length;
  let v = 0;
  for (let i = 0; i < a.length; i++) v += (a[i]! - mean) ** 2;
  return { mean, variance: v / a.length };
}

/** Asserts a sample of n standard-normal-ish z scores has mean 0 and variance 1 within 5 standard errors. */
function assertStandardNormal(z: number[], what: string): void {
  const { mean, variance } = meanVar(z);
  const n = z.length;
  assert.ok(Math.abs(mean) < 5 / Math.sqrt(n), `${what}: mean ${mean} (n ${n})`);
  assert.ok(Math.abs(variance - 1) < 5 * Math.sqrt(2 / n), `${what}: variance ${variance} (n ${n})`);
}

const resnet8 = () => buildResNet('resnet8', { inChannels: 1, classes: 10, imageSize: 16, seed: 5 });
const IMG = 16;

async function logits(s: RpSession, x: Float32Array, n: number): Promise<Float32Array> {
  return (await s.run({ input: new ort.Tensor('float32', x, [n, 1, IMG, IMG]) })).logits!.data as Float32Array;
}
function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('one noise injection per residual block, named rp/<block>/..., recorded in metadata', () => {
  const m = resnet8();
  const blocks = findResidualBlocks(m.graph);
  assert.equal(blocks.length, 3);
  const { model, blocks: done } = perturbModel(m, { gamma: [0.1, 0.2, 0.3], strategy: 'I', scale: 'absolute', toolVersion: V });
  const g = model.graph;
  const noise = g.nodes.filter((n) => n.opType === 'RandomNormalLike');
  assert.equal(noise.length, blocks.length);
  for (const [i, b] of blocks.entries()) {
    const n = noise.find((x) => x.name === `rp/${b.add}/noise`);
    assert.ok(n, `noise node of ${b.add}`);
    assert.deepEqual(n.inputs, [b.branch]);
    assert.equal(n.getFloat('mean'), 0);
    assert.equal(n.getFloat('scale'), 1);
    assert.equal(n.getInt('dtype'), onnx.TensorProto.DataType.FLOAT);
    assert.equal(n.hasAttr('seed'), false, 'no seed attribute without --seed');
    // The Add's output is now written by rp/<block>/add, which reads the residual sum.
    const final = g.producer(b.output)!;
    assert.equal(final.name, `rp/${b.add}/add`);
    const add = g.producer(final.inputs[0]!)!;
    assert.equal(add.name, b.add);
    assert.deepEqual(new Set(add.inputs), new Set([b.branch, b.skip]));
    assert.equal(done[i]!.gamma, [0.1, 0.2, 0.3][i]);
  }
  // The original consumers still read the original output names; nothing else changed.
  assert.deepEqual(g.outputs.map((o) => o.name), m.graph.outputs.map((o) => o.name));
  assert.deepEqual(g.realInputs().map((o) => o.name), m.graph.realInputs().map((o) => o.name));
  assert.equal(model.opset(), m.opset());
  const rec = readPerturbation(model)!;
  assert.equal(rec.strategy, 'I');
  assert.deepEqual(rec.blocks.map((b) => [b.add, b.gamma, b.noiseNode]), blocks.map((b, i) => [b.add, [0.1, 0.2, 0.3][i], `rp/${b.add}/noise`]));
  assert.equal(model.getMetadata(VERSION_KEY), V);
  assert.equal(model.getMetadata(SEED_KEY), undefined);
  // The input model is untouched.
  assert.equal(m.getMetadata(PERTURBATION_KEY), undefined);
  assert.equal(m.graph.nodes.some((n) => n.opType === 'RandomNormalLike'), false);
});

test('perturbed model passes the ONNX checker (dev cross-check with Debian python3-onnx, skipped if absent)', { skip: skipWithoutPythonOnnx() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-perturb-'));
  try {
    const models: [string, Model][] = [['resnet8', resnet8()], ...['mobilenetv2-op13', 'torch-encoder-prenorm-op17'].map((n): [string, Model] => [n, loadModel(join('test', 'fixtures', `${n}.onnx`))])];
    for (const [name, model] of models) for (const [strategy, scale] of [['I', 'absolute'], ['II', 'std']] as const) {
      const p = join(dir, `${name}-${strategy}.onnx`);
      saveModel(perturbModel(model, { gamma: 0.1, strategy, scale, seed: 4, toolVersion: V }).model, p);
      const r = spawnSync(SYSTEM_PYTHON, ['-c', 'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)', p], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Strategy I, absolute: out - x - F(x) has mean 0 and variance gamma^2', async () => {
  const gamma = 0.3;
  const s = await createSession(perturbModel(handBlock(), { gamma, strategy: 'I', scale: 'absolute', toolVersion: V }).model, { threads: 1 });
  const x = randomInput(N, C * H * W, 1);
  const { y, f } = await runBlock(s, x);
  await s.release();
  assertStandardNormal(Array.from(y, (v, i) => (v - x[i]! - f[i]!) / gamma), 'noise / gamma');
});

test('Strategy II, absolute: out - x - F(x) = gamma * x * n, n standard normal', async () => {
  const gamma = 0.25;
  const s = await createSession(perturbModel(handBlock(), { gamma, strategy: 'II', scale: 'absolute', toolVersion: V }).model, { threads: 1 });
  const x = randomInput(N, C * H * W, 2);
  const { y, f } = await runBlock(s, x);
  await s.release();
  const z: number[] = [];
  for (let i = 0; i < x.length; i++) if (Math.abs(x[i]!) > 0.2) z.push((y[i]! - x[i]! - f[i]!) / (gamma * x[i]!));
  assertStandardNormal(z, 'noise / (gamma x)');
});

for (const opset of [17, 18]) {
  test(`scale std (opset ${opset}): noise = gamma * std(F(x)) per example * n`, async () => {
    const gamma = 0.5;
    const x = randomInput(N, C * H * W, 3);
    // Make examples differ in scale so a per-batch std would fail the test.
    const per = C * H * W;
    for (let e = 0; e < N; e++) for (let i = 0; i < per; i++) x[e * per + i]! *= 0.2 + (e % 8);
    for (const strategy of ['I', 'II'] as const) {
      const s = await createSession(perturbModel(handBlock(opset), { gamma, strategy, scale: 'std', toolVersion: V }).model, { threads: 1 });
      const { y, f } = await runBlock(s, x);
      await s.release();
      const z: number[] = [];
      for (let e = 0; e < N; e++) {
        const std = Math.sqrt(meanVar(f.subarray(e * per, (e + 1) * per)).variance);
        for (let i = e * per; i < (e + 1) * per; i++) {
          const state = strategy === 'II' ? x[i]! : 1;
          if (Math.abs(state) < 0.2) continue;
          z.push((y[i]! - x[i]! - f[i]!) / (gamma * std * state));
        }
      }
      assertStandardNormal(z, `strategy ${strategy}`);
    }
  });
}

test('two runs differ; separate sessions of our runtime draw independent noise; equal --seed reproduces it', async () => {
  const model = perturbModel(resnet8(), { gamma: 0.2, strategy: 'I', scale: 'absolute', toolVersion: V }).model;
  const x = randomInput(4, IMG * IMG, 7);
  const a = await createSession(model, { threads: 1 });
  const b = await createSession(model, { threads: 1 });
  const a1 = await logits(a, x, 4);
  const a2 = await logits(a, x, 4);
  const b1 = await logits(b, x, 4);
  assert.ok(maxAbsDiff(a1, a2) > 1e-3, 'two runs of one session differ');
  assert.ok(maxAbsDiff(a1, b1) > 1e-3, 'first runs of two sessions differ');
  // The three noise ops are fed by the runtime's generator (fresh OS entropy per run).
  assert.equal(a.fedNoise, 3);
  assert.equal(a.seeds.length, 0);
  // With onnxruntime's kernel kept, each session writes its own fresh seeds instead.
  const e = await createSession(model, { threads: 1, feedNoise: false });
  const f = await createSession(model, { threads: 1, feedNoise: false });
  assert.equal(e.fedNoise, 0);
  assert.equal(e.seeds.length, 3);
  assert.notDeepEqual(e.seeds, f.seeds);
  assert.ok(maxAbsDiff(await logits(e, x, 4), await logits(f, x, 4)) > 1e-3, 'in-graph noise of two sessions differs');
  const c = await createSession(model, { threads: 1, noiseSeed: 42 });
  const d = await createSession(model, { threads: 1, noiseSeed: 42 });
  assert.deepEqual(await logits(c, x, 4), await logits(d, x, 4));
  for (const s of [a, b, c, d, e, f]) await s.release();
});

test('onnxruntime alone (seeds as in the file) replays one noise sequence in every session of a process', async () => {
  // The behaviour rp-onnx's runtime works around (src/runtime/noise-seeding.ts).
  const model = perturbModel(resnet8(), { gamma: 0.2, strategy: 'I', scale: 'absolute', toolVersion: V }).model;
  const x = randomInput(2, IMG * IMG, 8);
  const a = await createSession(model, { threads: 1, noiseSeed: 'model' });
  const b = await createSession(model, { threads: 1, noiseSeed: 'model' });
  assert.deepEqual(await logits(a, x, 2), await logits(b, x, 2));
  await a.release();
  await b.release();
});

test('perturb --seed writes distinct seed attributes and records rp-onnx.seed', () => {
  const { model, blocks } = perturbModel(resnet8(), { gamma: 0.1, strategy: 'I', scale: 'absolute', seed: 11, toolVersion: V });
  const seeds = model.graph.nodes.filter((n) => n.opType === 'RandomNormalLike').map((n) => n.getFloat('seed'));
  assert.equal(new Set(seeds).size, 3);
  assert.deepEqual(seeds, blocks.map((b) => b.seed));
  assert.equal(model.getMetadata(SEED_KEY), '11');
  // Same seed, same file.
  const again = perturbModel(resnet8(), { gamma: 0.1, strategy: 'I', scale: 'absolute', seed: 11, toolVersion: V }).model;
  assert.deepEqual(encodeModel(again.toProto()), encodeModel(model.toProto()));
  // The runtime's seeding replaces them with fresh, distinct ones.
  const copy = model.clone();
  const fresh = seedRandomOps(copy.graph, Random.secure());
  assert.equal(fresh.length, countRandomOps(copy.graph));
  assert.equal(new Set(fresh).size, fresh.length);
});

test('gamma 0 and strip reproduce the original outputs (1e-6); strip restores the file exactly', async () => {
  const m = resnet8();
  const x = randomInput(8, IMG * IMG, 9);
  const s0 = await createSession(m, { threads: 1 });
  const ref = await logits(s0, x, 8);
  const zero = perturbModel(m, { gamma: 0, strategy: 'II', scale: 'std', toolVersion: V }).model;
  const sz = await createSession(zero, { threads: 1 });
  assert.ok(maxAbsDiff(ref, await logits(sz, x, 8)) <= 1e-6);
  const noisy = perturbModel(m, { gamma: 0.5, strategy: 'I', scale: 'absolute', toolVersion: V }).model;
  const stripped = stripPerturbation(noisy);
  assert.equal(stripped.removedNodes, 3 * 3); // noise, scaled, add per block
  const ss = await createSession(stripped.model, { threads: 1 });
  assert.ok(maxAbsDiff(ref, await logits(ss, x, 8)) <= 1e-6);
  assert.deepEqual(encodeModel(stripped.model.toProto()), encodeModel(m.toProto()));
  assert.equal(stripped.model.getMetadata(PERTURBATION_KEY), undefined);
  assert.equal(stripped.model.getMetadata(VERSION_KEY), m.getMetadata(VERSION_KEY));
  for (const s of [s0, sz, ss]) await s.release();
});

test('the variance of the logits over runs grows with gamma', async () => {
  const m = resnet8();
  const n = 8, runs = 8, classes = 10;
  const x = randomInput(n, IMG * IMG, 10);
  const variances: number[] = [];
  for (const gamma of [0.05, 0.2, 0.8]) {
    const s = await createSession(perturbModel(m, { gamma, strategy: 'I', scale: 'absolute', toolVersion: V }).model, { threads: 1 });
    const outs: Float32Array[] = [];
    for (let r = 0; r < runs; r++) outs.push(await logits(s, x, n));
    await s.release();
    let v = 0;
    for (let i = 0; i < n * classes; i++) v += meanVar(outs.map((o) => o[i]!)).variance;
    variances.push(v / (n * classes));
  }
  assert.ok(variances[0]! > 0);
  assert.ok(variances[0]! < variances[1]! && variances[1]! < variances[2]!, `variances ${variances.join(', ')}`);
});

test('double perturbation is refused unless forced; strip removes every layer', () => {
  const once = perturbModel(resnet8(), { gamma: 0.1, strategy: 'I', scale: 'absolute', toolVersion: V }).model;
  assert.throws(() => perturbModel(once, { gamma: 0.1, strategy: 'I', scale: 'absolute', toolVersion: V }),
    (e: unknown) => e instanceof RpOnnxError && /already perturbed/.test(e.message) && e.param === 'force' && /--force/.test(e.withFlags({ force: '--force' }).message));
  const twice = perturbModel(once, { gamma: 0.1, strategy: 'II', scale: 'absolute', force: true, toolVersion: V }).model;
  assert.equal(twice.graph.nodes.filter((n) => n.opType === 'RandomNormalLike').length, 6);
  assert.equal(readPerturbation(twice)!.blocks.length, 6);
  const stripped = stripPerturbation(twice).model;
  assert.deepEqual(encodeModel(stripped.toProto()), encodeModel(resnet8().toProto()));
  assert.throws(() => stripPerturbation(stripped), /nothing to strip/);
});

test('--blocks selects by index or Add name; bad selections and gammas are one-line errors', () => {
  const m = resnet8();
  const names = findResidualBlocks(m.graph).map((b) => b.add);
  const r = perturbModel(m, { gamma: [0.1, 0.3], blocks: [0, names[2]!], strategy: 'I', scale: 'absolute', toolVersion: V });
  assert.deepEqual(r.blocks.map((b) => [b.index, b.gamma]), [[0, 0.1], [2, 0.3]]);
  assert.equal(r.model.graph.nodes.filter((n) => n.opType === 'RandomNormalLike').length, 2);
  assert.throws(() => perturbModel(m, { gamma: 0.1, blocks: [5], strategy: 'I', scale: 'absolute', toolVersion: V }), /no residual block '5'/);
  assert.throws(() => perturbModel(m, { gamma: [0.1, 0.2], strategy: 'I', scale: 'absolute', toolVersion: V }), /2 values but 3 residual blocks/);
  // The library names its parameter; the CLI's flag map renames it (see the CLI test below).
  assert.throws(() => perturbModel(m, { gamma: -1, strategy: 'I', scale: 'absolute', toolVersion: V }), (e: Error) => /^gamma must be finite and >= 0/.test(e.message));
  assert.throws(() => perturbModel(m, { gamma: [0.1, 0.2], strategy: 'I', scale: 'absolute', toolVersion: V }), (e: Error) => (e as RpOnnxError).withFlags({ gamma: '--gamma' }).message.startsWith('--gamma has 2 values'));
  const flat = new Graph({ name: 'mlp' });
  flat.inputs.push({ name: 'x', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', 4] }) });
  const b = new GraphBuilder(flat);
  b.op('MatMul', ['x', b.initializer('w', [4, 2], new Float32Array(8))], {}, { outputs: ['y'] });
  flat.outputs.push({ name: 'y', type: null });
  const mlp = new Model(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }] }), flat);
  assert.throws(() => perturbModel(mlp, { gamma: 0.1, strategy: 'I', scale: 'absolute', toolVersion: V }), /no residual blocks/);
});

test('perturbs exported models (fixtures): same inputs and outputs, runs in onnxruntime, gamma 0 keeps outputs', async () => {
  for (const name of ['preact-resnet18-op13', 'resnet18-bn-op13', 'mobilenetv2-op13', 'torch-encoder-prenorm-op17', 'torch-encoder-postnorm-op13']) {
    const m = loadModel(join('test', 'fixtures', `${name}.onnx`));
    const found = findResidualBlocks(m.graph);
    assert.ok(found.length > 0, `${name}: residual blocks`);
    const feeds: Record<string, ort.Tensor> = {};
    for (const v of m.graph.realInputs()) {
      const t = tensorTypeOf(v.type)!;
      const dims = t.shape!.map((d) => (typeof d === 'number' ? d : 3));
      const count = dims.reduce((a, c) => a * c, 1);
      feeds[v.name] = t.dtype === 'int64'
        ? new ort.Tensor('int64', BigInt64Array.from({ length: count }, (_, i) => BigInt(1 + (i % 5))), dims)
        : new ort.Tensor('float32', randomInput(1, count, 12), dims);
    }
    const ref = await createSession(m, { threads: 1 });
    const zero = await createSession(perturbModel(m, { gamma: 0, strategy: 'I', scale: 'std', toolVersion: V }).model, { threads: 1 });
    const perturbed = perturbModel(m, { gamma: 0.5, strategy: 'II', scale: 'absolute', toolVersion: V }).model;
    // Exactly one noise op per residual block.
    assert.equal(perturbed.graph.nodes.filter((n) => n.opType === 'RandomNormalLike').length, found.length, `${name}: one injection per block`);
    const noisy = await createSession(perturbed, { threads: 1 });
    assert.deepEqual(noisy.inputs, ref.inputs);
    assert.deepEqual(noisy.outputs, ref.outputs);
    const out = m.graph.outputs[0]!.name;
    const r = (await ref.run(feeds))[out]!.data as Float32Array;
    assert.ok(maxAbsDiff(r, (await zero.run(feeds))[out]!.data as Float32Array) <= 1e-6, name);
    const n1 = (await noisy.run(feeds))[out]!.data as Float32Array;
    const n2 = (await noisy.run(feeds))[out]!.data as Float32Array;
    assert.ok(maxAbsDiff(r, n1) > 1e-4, name);
    assert.ok(maxAbsDiff(n1, n2) > 1e-4, `${name}: two runs differ`);
    // strip gives back the original outputs.
    const stripped = await createSession(stripPerturbation(perturbed).model, { threads: 1 });
    assert.ok(maxAbsDiff(r, (await stripped.run(feeds))[out]!.data as Float32Array) <= 1e-6, `${name}: strip`);
    // The spread of the output over runs grows with gamma.
    const spread: number[] = [];
    for (const gamma of [0.02, 0.2]) {
      const s = await createSession(perturbModel(m, { gamma, strategy: 'I', scale: 'absolute', toolVersion: V }).model, { threads: 1 });
      const a = (await s.run(feeds))[out]!.data as Float32Array;
      const b = (await s.run(feeds))[out]!.data as Float32Array;
      let d = 0;
      for (let i = 0; i < a.length; i++) d += (a[i]! - b[i]!) ** 2;
      spread.push(d / a.length);
      await s.release();
    }
    assert.ok(spread[0]! > 0 && spread[0]! < spread[1]!, `${name}: spread ${spread.join(' < ')}`);
    for (const s of [ref, zero, noisy, stripped]) await s.release();
  }
});

test('--execution-provider cuda without the CUDA binaries fails with the install hint', async (t) => {
  let err: unknown;
  try {
    const s = await createSession(resnet8(), { executionProvider: 'cuda' });
    await s.release();
  } catch (e) {
    err = e;
  }
  if (err === undefined) {
    t.skip('the CUDA provider is installed here');
    return;
  }
  assert.ok(err instanceof RpOnnxError);
  assert.match((err as Error).message, /ONNXRUNTIME_NODE_INSTALL=cuda12/);
});

test('perturb and strip CLI: default output beside the input, refusals, JSON, exact round trip', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-perturb-cli-'));
  const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join('cli', 'main.ts'), ...args], { encoding: 'utf8' });
  try {
    const src = join(dir, 'net.onnx');
    saveModel(resnet8(), src);
    const p = cli('perturb', src, '--gamma', '0.1,0.2,0.3', '--strategy', 'II', '--json');
    assert.equal(p.status, 0, p.stderr);
    const summary = JSON.parse(p.stdout) as { output: string; blocks: { gamma: number; noiseNode: string }[] };
    assert.equal(summary.output, join(dir, 'net.rp.onnx'));
    assert.deepEqual(summary.blocks.map((b) => b.gamma), [0.1, 0.2, 0.3]);
    const perturbed = loadModel(summary.output);
    assert.equal(readPerturbation(perturbed)!.strategy, 'II');

    const again = cli('perturb', src, '--gamma', '0.1');
    assert.equal(again.status, 2);
    assert.match(again.stderr, /^error: .*net\.rp\.onnx already exists: pass --force to overwrite it\n$/);
    const twice = cli('perturb', summary.output, '--gamma', '0.1', '-o', join(dir, 'twice.onnx'));
    assert.equal(twice.status, 2);
    assert.match(twice.stderr, /^error: the model is already perturbed .*--force.*\n$/);
    const count = cli('perturb', src, '--gamma', '0.1,0.2', '-o', join(dir, 'count.onnx'));
    assert.equal(count.status, 2);
    assert.match(count.stderr, /^error: --gamma has 2 values but 3 residual blocks are selected/);

    const s = cli('strip', summary.output, '-o', join(dir, 'back.onnx'));
    assert.equal(s.status, 0, s.stderr);
    assert.deepEqual(encodeModel(loadModel(join(dir, 'back.onnx')).toProto()), encodeModel(loadModel(src).toProto()));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
