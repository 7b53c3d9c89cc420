/**
 * Built-in models: parameter counts against closed forms and published figures, onnxruntime
 * runs every model, seeded initialisation, He-init statistics, and the forward pass against an
 * independent float64 implementation of the architecture written from the paper, not from the
 * graph. Plus the `rp-onnx models` command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { buildModel, findModel, BUILTIN_MODELS as ALL_MODELS, RESNET_NAMES, countParameters, type ModelOptions, type NormKind } from '../models/index.js';
import { encodeModel, saveModel } from '../src/graph/io.js';
import { makeTensor, tensorDims, tensorToFloat32 } from '../src/graph/tensor.js';
import { tensorTypeOf, type Model } from '../src/graph/ir.js';
import { Random } from '../src/random.js';
import { SYSTEM_PYTHON, skipWithoutPythonOnnx } from './helpers/python-onnx.js';

// The ResNets; dp-cnn has its own suite (test/dp-cnn.test.ts).
const BUILTIN_MODELS = ALL_MODELS.filter((m) => RESNET_NAMES.includes(m.name));

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------------------------------------
// Closed-form parameter counts, from the architecture as the papers describe it.

interface Arch { stem: 'cifar' | 'imagenet'; blocks: number[]; widths: number[] }
const CIFAR = (depth: number): Arch => ({ stem: 'cifar', blocks: Array(3).fill((depth - 2) / 6), widths: [16, 32, 64] });
const RESNET18: Arch = { stem: 'imagenet', blocks: [2, 2, 2, 2], widths: [64, 128, 256, 512] };

/**
 * Trainable parameters: conv weights (plus biases without normalisation), normalisation scale
 * and shift (2 per channel), classifier weight and bias. `projections` false gives the paper's
 * option A (parameter-free shortcuts), true option B (1x1 conv + norm where the shape changes).
 */
function closedForm(a: Arch, o: { inChannels: number; classes: number; norm: NormKind; projections?: boolean }): { trainable: number; buffers: number } {
  const bias = o.norm === 'none' ? 1 : 0;
  const perChannel = o.norm === 'none' ? 0 : 2;
  let trainable = 0;
  let normChannels = 0;
  const conv = (k: number, cin: number, cout: number) => { trainable += k * k * cin * cout + bias * cout; };
  const norm = (c: number) => { trainable += perChannel * c; normChannels += c; };
  let c = a.widths[0]!;
  conv(a.stem === 'cifar' ? 3 : 7, o.inChannels, c);
  norm(c);
  a.blocks.forEach((n, s) => {
    const w = a.widths[s]!;
    for (let i = 0; i < n; i++) {
      conv(3, c, w); norm(w); conv(3, w, w); norm(w);
      if (c !== w && (o.projections ?? true)) { conv(1, c, w); norm(w); }
      c = w;
    }
  });
  trainable += c * o.classes + o.classes;
  return { trainable, buffers: o.norm === 'batch' ? 2 * normChannels : 0 };
}

test('parameter counts match the closed form for every model, norm and shape option', () => {
  const archs: Record<string, Arch> = { resnet8: CIFAR(8), resnet20: CIFAR(20), resnet32: CIFAR(32), resnet56: CIFAR(56), resnet110: CIFAR(110), resnet18: RESNET18 };
  for (const m of BUILTIN_MODELS.filter((x) => x.name in archs)) {
    for (const norm of ['batch', 'group', 'none'] as const) {
      // (resnet18 skeletons allocate 47 MB each: one shape variant is enough there.)
      for (const shape of m.style === 'cifar' ? [{}, { inChannels: 1, classes: 7 }] : [{ inChannels: norm === 'none' ? 1 : 3 }]) {
        const o = m.resolve({ norm, ...shape });
        const want = closedForm(archs[m.name]!, o);
        const got = m.parameters({ norm, ...shape });
        assert.equal(got.trainable, want.trainable, `${m.name} norm=${norm} ${JSON.stringify(shape)}`);
        assert.equal(got.buffers, want.buffers, `${m.name} norm=${norm} buffers`);
      }
    }
  }
  // The skeleton used for counting and a real build agree.
  assert.deepEqual(countParameters(buildModel('resnet20', { norm: 'group', seed: 1 })), findModel('resnet20').parameters({ norm: 'group' }));
});

test('parameter counts match the published figures', () => {
  // He et al. 2016, table 6 (CIFAR-10, option A shortcuts): 0.27M, 0.46M, 0.85M, 1.7M. Our
  // option-B projections add 16*32 + 32*64 weights and 2*(32 + 64) norm parameters.
  const published: [string, number, number][] = [['resnet20', 20, 0.27], ['resnet32', 32, 0.46], ['resnet56', 56, 0.85], ['resnet110', 110, 1.7]];
  const projectionExtra = 16 * 32 + 32 * 64 + 2 * (32 + 64);
  for (const [name, depth, millions] of published) {
    const optionA = closedForm(CIFAR(depth), { inChannels: 3, classes: 10, norm: 'batch', projections: false }).trainable;
    const digits = millions < 1 ? 2 : 1;
    assert.equal((optionA / 1e6).toFixed(digits), millions.toFixed(digits), `${name} option A`);
    assert.equal(findModel(name).parameters().trainable, optionA + projectionExtra, name);
  }
  // torchvision.models.resnet18(): 11,689,512 parameters (BN weight and bias counted, running
  // statistics not: they are buffers in PyTorch).
  const r18 = findModel('resnet18').parameters();
  assert.equal(r18.trainable, 11_689_512);
  assert.equal(r18.buffers, 2 * (64 + 4 * 64 + 4 * 128 + 4 * 256 + 4 * 512 + 128 + 256 + 512));
});

// ---------------------------------------------------------------------------------------------
// Structure and onnxruntime.

async function run(model: Model, x: Float32Array, dims: number[]): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(encodeModel(model.toProto()), { intraOpNumThreads: 2, logSeverityLevel: 3 });
  assert.deepEqual(session.inputNames, ['input']);
  assert.deepEqual(session.outputNames, ['logits']);
  const out = await session.run({ input: new ort.Tensor('float32', x, dims) });
  await session.release();
  return out.logits!;
}

function randomInput(rng: Random, dims: number[]): Float32Array {
  const x = new Float32Array(dims.reduce((a, b) => a * b, 1));
  rng.fillNormal(x);
  return x;
}

test('onnxruntime runs every model and norm with the declared input and output shapes', async () => {
  const rng = new Random(11);
  const cases: [string, ModelOptions][] = [
    ...BUILTIN_MODELS.map((m): [string, ModelOptions] => [m.name, { imageSize: m.style === 'imagenet' ? 32 : undefined }]),
    ['resnet8', { norm: 'group' }], ['resnet8', { norm: 'none' }],
    ['resnet20', { norm: 'group', inChannels: 1, classes: 7, imageSize: 28 }],
    ['resnet18', { norm: 'group', imageSize: 32, classes: 10 }], ['resnet18', { norm: 'none', imageSize: 32 }],
  ];
  for (const [name, opts] of cases) {
    const m = buildModel(name, opts);
    const o = findModel(name).resolve(opts);
    assert.equal(m.opset(), 17);
    assert.equal(m.irVersion, 8);
    assert.deepEqual(tensorTypeOf(m.graph.inputs[0]!.type), { dtype: 'float32', shape: ['N', o.inChannels, o.imageSize, o.imageSize] });
    assert.deepEqual(m.graph.outputs.map((v) => v.name), ['logits']);
    assert.deepEqual(tensorTypeOf(m.graph.outputs[0]!.type), { dtype: 'float32', shape: ['N', o.classes] });
    const dims = [2, o.inChannels, o.imageSize, o.imageSize];
    const y = await run(m, randomInput(rng, dims), dims);
    assert.deepEqual(y.dims, [2, o.classes], `${name} ${JSON.stringify(opts)}`);
    assert.ok((y.data as Float32Array).every(Number.isFinite), `${name} ${JSON.stringify(opts)} gives finite logits`);
  }
});

test('blocks are conv-norm-relu-conv-norm, Add(branch, skip), relu, with readable names', () => {
  const m = buildModel('resnet20');
  const g = m.graph;
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  const adds = g.nodes.filter((n) => n.opType === 'Add');
  assert.equal(adds.length, 9);
  for (const add of adds) {
    const p = add.name.replace(/add$/, '');
    assert.match(add.name, /^stage[123]\.block[012]\.add$/);
    // Operand 0: the branch, ending in the second norm after conv2.
    const bn2 = g.producer(add.inputs[0]!)!;
    assert.equal(bn2.name, `${p}bn2`);
    assert.equal(g.producer(bn2.inputs[0]!)!.name, `${p}conv2`);
    assert.equal(g.producer(g.producer(g.producer(byName.get(`${p}conv2`)!.inputs[0]!)!.inputs[0]!)!.inputs[0]!)!.name, `${p}conv1`);
    // Operand 1: the skip, the block input itself or its 1x1 projection + norm.
    const blockInput = byName.get(`${p}conv1`)!.inputs[0]!;
    if (add.name === 'stage2.block0.add' || add.name === 'stage3.block0.add') {
      const sbn = g.producer(add.inputs[1]!)!;
      assert.equal(sbn.name, `${p}shortcut.bn`);
      const sconv = g.producer(sbn.inputs[0]!)!;
      assert.equal(sconv.name, `${p}shortcut.conv`);
      assert.deepEqual(sconv.getInts('kernel_shape'), [1, 1]);
      assert.deepEqual(sconv.getInts('strides'), [2, 2]);
      assert.equal(sconv.inputs[0], blockInput);
      assert.deepEqual(byName.get(`${p}conv1`)!.getInts('strides'), [2, 2]);
    } else {
      assert.equal(add.inputs[1], blockInput);
    }
    assert.equal(g.consumers(add.outputs[0]!).map((n) => n.opType).join(), 'Relu');
  }
  for (const bn of g.nodes.filter((n) => n.opType === 'BatchNormalization')) assert.equal(bn.outputs.length, 1);
  for (const name of ['stem.conv', 'stem.bn', 'stem.relu', 'head.pool', 'head.fc']) assert.ok(byName.has(name), name);
  assert.ok(g.initializers.has('stage2.block0.conv1.weight'));
  assert.ok(g.initializers.has('stage2.block0.bn1.running_var'));
  // resnet18: the ImageNet stem.
  const r18 = buildModel('resnet18', { imageSize: 32 });
  const stem = r18.graph.nodes.find((n) => n.name === 'stem.conv')!;
  assert.deepEqual([stem.getInts('kernel_shape'), stem.getInts('strides')], [[7, 7], [2, 2]]);
  assert.ok(r18.graph.nodes.some((n) => n.name === 'stem.maxpool' && n.opType === 'MaxPool'));
  assert.equal(r18.graph.nodes.filter((n) => n.name.endsWith('.add')).length, 8);
});

// ---------------------------------------------------------------------------------------------
// Initialisation.

const weights = (m: Model, name: string) => tensorToFloat32(m.graph.initializers.get(name)!);

test('the same seed gives identical weights, different seeds differ', () => {
  const a = encodeModel(buildModel('resnet8', { seed: 3 }).toProto());
  const b = encodeModel(buildModel('resnet8', { seed: 3 }).toProto());
  assert.deepEqual(a, b);
  const m3 = buildModel('resnet8', { seed: 3 });
  const m4 = buildModel('resnet8', { seed: 4 });
  for (const name of ['stem.conv.weight', 'stage3.block0.conv2.weight', 'head.fc.weight', 'head.fc.bias']) {
    const x = weights(m3, name);
    const y = weights(m4, name);
    assert.equal(x.length, y.length);
    assert.ok(x.some((v, i) => v !== y[i]), `${name} differs between seeds`);
  }
});

function stats(a: Float32Array): { mean: number; std: number; maxAbs: number } {
  let s = 0, s2 = 0, maxAbs = 0;
  for (const v of a) { s += v; s2 += v * v; maxAbs = Math.max(maxAbs, Math.abs(v)); }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean), maxAbs };
}

test('He-normal convolutions, unit BatchNorm, PyTorch-style classifier', () => {
  const m = buildModel('resnet20', { seed: 7 });
  // Every convolution, scaled by its expected std sqrt(2 / fan_in), pooled: ~270k samples of
  // N(0, 1), so std and mean are within ~0.2% / 0.002 (1 sigma) and the kurtosis is 3 (a
  // uniform of the same variance has 1.8).
  let n = 0, s1 = 0, s2 = 0, s4 = 0;
  for (const node of m.graph.nodes.filter((x) => x.opType === 'Conv')) {
    const t = m.graph.initializers.get(node.inputs[1]!)!;
    const [, cin, kh, kw] = tensorDims(t);
    const want = Math.sqrt(2 / (cin! * kh! * kw!));
    const w = tensorToFloat32(t);
    // Large tensors one by one (4 sigma of the sample std), small ones only in the pool.
    if (w.length >= 4096) {
      const s = stats(w);
      assert.ok(Math.abs(s.std / want - 1) < 4 / Math.sqrt(2 * w.length), `${node.name}: std ${s.std} vs sqrt(2/fan_in) = ${want}`);
    }
    for (const v of w) { const z = v / want; n++; s1 += z; s2 += z * z; s4 += z ** 4; }
  }
  assert.ok(n > 250_000);
  assert.ok(Math.abs(Math.sqrt(s2 / n) - 1) < 0.01, `pooled std ${Math.sqrt(s2 / n)}`);
  assert.ok(Math.abs(s1 / n) < 0.01, `pooled mean ${s1 / n}`);
  assert.ok(Math.abs(s4 / n / (s2 / n) ** 2 - 3) < 0.1, `pooled kurtosis ${s4 / n / (s2 / n) ** 2}`);
  // nn.Linear default: uniform(-1/sqrt(64), 1/sqrt(64)); variance bound^2 / 3.
  const bound = 1 / 8;
  const fc = stats(weights(m, 'head.fc.weight'));
  assert.ok(fc.maxAbs <= bound && fc.maxAbs > 0.95 * bound, `fc max |w| ${fc.maxAbs}`);
  assert.ok(Math.abs(fc.std / (bound / Math.sqrt(3)) - 1) < 0.1, `fc std ${fc.std}`);
  assert.ok(stats(weights(m, 'head.fc.bias')).maxAbs <= bound);
  const bn = (suffix: string) => [...weights(m, `stage2.block1.bn1.${suffix}`)];
  assert.deepEqual(bn('weight'), Array(32).fill(1));
  assert.deepEqual(bn('bias'), Array(32).fill(0));
  assert.deepEqual(bn('running_mean'), Array(32).fill(0));
  assert.deepEqual(bn('running_var'), Array(32).fill(1));
  assert.equal(m.graph.nodes.find((n) => n.name === 'stage2.block1.bn1')!.getFloat('epsilon'), 1e-5);
  // norm=none: convolutions carry biases, PyTorch's default uniform(+-1/sqrt(fan_in)).
  const none = buildModel('resnet8', { norm: 'none' });
  const cb = stats(weights(none, 'stage1.block0.conv1.bias'));
  assert.ok(cb.maxAbs > 0 && cb.maxAbs <= 1 / Math.sqrt(16 * 9));
  assert.ok(!buildModel('resnet8').graph.initializers.has('stage1.block0.conv1.bias'));
});

// ---------------------------------------------------------------------------------------------
// The forward pass against an independent float64 implementation.

interface T { d: Float64Array; n: number; c: number; h: number; w: number }

function conv(x: T, wt: Float32Array, bias: Float32Array | null, cout: number, k: number, stride: number): T {
  const pad = Math.floor(k / 2);
  const h = Math.floor((x.h + 2 * pad - k) / stride) + 1;
  const w = Math.floor((x.w + 2 * pad - k) / stride) + 1;
  const out = new Float64Array(x.n * cout * h * w);
  for (let n = 0; n < x.n; n++) for (let o = 0; o < cout; o++) for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
    let s = bias ? bias[o]! : 0;
    for (let c = 0; c < x.c; c++) for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) {
      const yi = i * stride + a - pad, xj = j * stride + b - pad;
      if (yi < 0 || yi >= x.h || xj < 0 || xj >= x.w) continue;
      s += x.d[((n * x.c + c) * x.h + yi) * x.w + xj]! * wt[((o * x.c + c) * k + a) * k + b]!;
    }
    out[((n * cout + o) * h + i) * w + j] = s;
  }
  return { d: out, n: x.n, c: cout, h, w };
}
const map = (x: T, f: (v: number, c: number) => number): T => {
  const hw = x.h * x.w;
  return { ...x, d: x.d.map((v, i) => f(v, Math.floor(i / hw) % x.c)) };
};
const relu = (x: T) => map(x, (v) => Math.max(0, v));
const add = (x: T, y: T): T => ({ ...x, d: x.d.map((v, i) => v + y.d[i]!) });
function groupNorm(x: T, groups: number, gamma: Float32Array, beta: Float32Array): T {
  const size = (x.c / groups) * x.h * x.w;
  const out = new Float64Array(x.d.length);
  for (let g = 0; g < x.n * groups; g++) {
    const part = x.d.subarray(g * size, (g + 1) * size);
    const mean = part.reduce((a, b) => a + b, 0) / size;
    const variance = part.reduce((a, b) => a + (b - mean) ** 2, 0) / size;
    for (let i = 0; i < size; i++) out[g * size + i] = (part[i]! - mean) / Math.sqrt(variance + 1e-5);
  }
  return map({ ...x, d: out }, (v, c) => v * gamma[c]! + beta[c]!);
}

/** ResNet-8 (one basic block per stage) from its description, weights looked up by name. */
function referenceResNet8(m: Model, norm: NormKind, groups: number, input: T, classes: number): Float64Array {
  const W = (name: string) => weights(m, name);
  const has = (name: string) => m.graph.initializers.has(name);
  const cv = (name: string, x: T, cout: number, k: number, stride: number) =>
    conv(x, W(`${name}.weight`), has(`${name}.bias`) ? W(`${name}.bias`) : null, cout, k, stride);
  const nm = (name: string, x: T): T => {
    if (norm === 'none') return x;
    if (norm === 'group') return groupNorm(x, groups, W(`${name}.weight`), W(`${name}.bias`));
    const [g, b, mu, v] = ['weight', 'bias', 'running_mean', 'running_var'].map((s) => W(`${name}.${s}`));
    return map(x, (val, c) => (val - mu![c]!) / Math.sqrt(v![c]! + 1e-5) * g![c]! + b![c]!);
  };
  const nb = norm === 'group' ? 'gn' : 'bn';
  let x = relu(nm(`stem.${nb}`, cv('stem.conv', input, 16, 3, 1)));
  let c = 16;
  [16, 32, 64].forEach((width, s) => {
    const p = `stage${s + 1}.block0.`;
    const stride = s === 0 ? 1 : 2;
    let h = relu(nm(`${p}${nb}1`, cv(`${p}conv1`, x, width, 3, stride)));
    h = nm(`${p}${nb}2`, cv(`${p}conv2`, h, width, 3, 1));
    const skip = c !== width ? nm(`${p}shortcut.${nb}`, cv(`${p}shortcut.conv`, x, width, 1, stride)) : x;
    x = relu(add(h, skip));
    c = width;
  });
  const fw = W('head.fc.weight'), fb = W('head.fc.bias');
  const logits = new Float64Array(x.n * classes);
  const hw = x.h * x.w;
  for (let n = 0; n < x.n; n++) for (let k = 0; k < classes; k++) {
    let s = fb[k]!;
    for (let ch = 0; ch < c; ch++) {
      let mean = 0;
      for (let i = 0; i < hw; i++) mean += x.d[(n * c + ch) * hw + i]!;
      s += (mean / hw) * fw[k * c + ch]!;
    }
    logits[n * classes + k] = s;
  }
  return logits;
}

/** Replaces normalisation parameters by random values so that scale, shift and statistics matter. */
function randomizeNorms(m: Model, rng: Random): void {
  for (const [name, t] of m.graph.initializers) {
    const kind = /\.(weight|bias|running_mean|running_var)$/.exec(name)?.[1];
    if (!kind || !/\.(bn|gn)\d?\./.test(name)) continue;
    const v = tensorToFloat32(t).map(() => (kind === 'running_var' ? 0.5 + rng.uniform() : kind === 'weight' ? 0.5 + rng.uniform() : 0.3 * rng.normal()));
    m.graph.initializers.set(name, makeTensor(name, tensorDims(t), v));
  }
}

test('forward pass equals a float64 reference implementation (norm none, group, batch)', async () => {
  const rng = new Random(5);
  const dims = [2, 2, 8, 8];
  const x = randomInput(rng, dims);
  const input: T = { d: Float64Array.from(x), n: 2, c: 2, h: 8, w: 8 };
  for (const norm of ['none', 'group', 'batch'] as const) {
    const m = buildModel('resnet8', { norm, inChannels: 2, classes: 5, imageSize: 8, seed: 9 });
    if (norm !== 'none') randomizeNorms(m, rng);
    const got = (await run(m, x, dims)).data as Float32Array;
    const want = referenceResNet8(m, norm, 8, input, 5);
    assert.equal(got.length, want.length);
    const scale = Math.max(1, ...[...want].map(Math.abs));
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-4 * scale, `norm=${norm} logit ${i}: onnxruntime ${got[i]} vs reference ${want[i]}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// CLI.

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'main.ts'), ...args], { encoding: 'utf8', cwd: ROOT });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('rp-onnx models create writes a model, refuses to overwrite, names valid models', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-models-'));
  try {
    const out = join(dir, 'r8.onnx');
    const r = cli('models', 'create', 'resnet8', '-o', out, '--in-channels', '1', '--classes', '7', '--image-size', '28', '--norm', 'group', '--seed', '4', '--json');
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { parameters: number; inputShape: unknown[]; outputShape: unknown[] };
    const want = closedForm(CIFAR(8), { inChannels: 1, classes: 7, norm: 'group' }).trainable;
    assert.equal(summary.parameters, want);
    assert.deepEqual(summary.inputShape, ['N', 1, 28, 28]);
    assert.deepEqual(summary.outputShape, ['N', 7]);
    // The file is the library's model, byte for byte.
    const lib = buildModel('resnet8', { inChannels: 1, classes: 7, imageSize: 28, norm: 'group', seed: 4 });
    assert.ok(Buffer.from(readFileSync(out)).equals(Buffer.from(encodeModel(lib.toProto()))), 'CLI file equals the library model');

    const again = cli('models', 'create', 'resnet20', '-o', out);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /^error: .*already exists: pass --force[^\n]*\n$/);
    assert.equal(cli('models', 'create', 'resnet20', '-o', out, '--force').status, 0);
    assert.equal(countParameters(buildModel('resnet20')).trainable, findModel('resnet20').parameters().trainable);

    const bad = cli('models', 'create', 'resnet19', '-o', join(dir, 'x.onnx'));
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr, "error: unknown model 'resnet19': choose one of resnet8, resnet20, resnet32, resnet56, resnet110, resnet18, dp-cnn, scatternet-linear, lenet\n");
    assert.ok(!existsSync(join(dir, 'x.onnx')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rp-onnx models list --json gives names, depths and parameter counts', () => {
  const r = cli('models', 'list', '--json');
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { name: string; depth: number; parameters: number }[];
  assert.deepEqual(rows.map((x) => [x.name, x.depth]), [['resnet8', 8], ['resnet20', 20], ['resnet32', 32], ['resnet56', 56], ['resnet110', 110], ['resnet18', 18], ['dp-cnn', 4], ['scatternet-linear', 1], ['lenet', 4]]);
  assert.equal(rows.find((x) => x.name === 'dp-cnn')!.parameters, 26_010);
  assert.equal(rows.find((x) => x.name === 'resnet18')!.parameters, 11_689_512);
  assert.equal(rows.find((x) => x.name === 'resnet20')!.parameters, closedForm(CIFAR(20), { inChannels: 3, classes: 10, norm: 'batch' }).trainable);
});

// Dev-only cross-check with the reference ONNX checker (Debian python3-onnx), when present.
test('the onnx checker (full check, strict shape inference) accepts the models', { skip: skipWithoutPythonOnnx() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-models-'));
  try {
    const files: string[] = [];
    for (const norm of ['batch', 'group', 'none'] as const) {
      const f = join(dir, `resnet8-${norm}.onnx`);
      saveModel(buildModel('resnet8', { norm }), f);
      files.push(f);
    }
    const f18 = join(dir, 'resnet18.onnx');
    saveModel(buildModel('resnet18', { imageSize: 32, norm: 'group' }), f18);
    files.push(f18);
    const script = 'import onnx, sys\nfor f in sys.argv[1:]:\n    m = onnx.load(f)\n    onnx.checker.check_model(m, full_check=True)\n    onnx.shape_inference.infer_shapes(m, strict_mode=True)\nprint("ok")';
    const r = spawnSync(SYSTEM_PYTHON, ['-c', script, ...files], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ok');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
