import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Graph, Model, makeTensorTypeProto } from '../src/graph/ir.js';
import { GraphBuilder } from '../src/graph/builder.js';
import { onnx } from '../src/graph/onnx.js';
import { encodeModel, saveModel } from '../src/graph/io.js';
import { tensorToFloat32 } from '../src/graph/tensor.js';
import { loadDefaultDataset } from '../src/data/index.js';
import { buildTrainingGraph } from '../src/passes/autodiff/training-graph.js';
import { Random } from '../src/random.js';
import { gaussianKernel, mse, psnr, ssim, ssimMap } from '../src/audit/image-metrics.js';
import { crc32, encodePng, tileImages } from '../src/audit/png.js';
import { buildMlp, gradientLeakage, leakageOverSchedule, mlpFromModel, mlpGradient, type DenseLayer } from '../src/audit/gradient-leakage.js';
import { noiseAt } from '../src/train/dp/noise-schedule.js';
import { decodePng } from './helpers/png.js';
import { runCli } from './helpers/cli.js';

const close = (a: number, b: number, tol: number, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b} (tol ${tol})`);

// ---- image metrics ----

/** SSIM by direct 2-D loops over every window position (a second implementation). */
function bruteSsim(a: number[], b: number[], h: number, w: number, n: number): number {
  const g = gaussianKernel(n, 1.5);
  const c1 = 0.01 ** 2;
  const c2 = 0.03 ** 2;
  let total = 0;
  let count = 0;
  for (let y = 0; y + n <= h; y++) {
    for (let x = 0; x + n <= w; x++) {
      let mx = 0, my = 0;
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
        mx += g[i]! * g[j]! * a[(y + i) * w + x + j]!;
        my += g[i]! * g[j]! * b[(y + i) * w + x + j]!;
      }
      let vx = 0, vy = 0, cxy = 0;
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
        const wt = g[i]! * g[j]!;
        const dx = a[(y + i) * w + x + j]! - mx;
        const dy = b[(y + i) * w + x + j]! - my;
        vx += wt * dx * dx; vy += wt * dy * dy; cxy += wt * dx * dy;
      }
      total += ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      count++;
    }
  }
  return total / count;
}

test('MSE and PSNR: closed forms', () => {
  const x = Array.from({ length: 100 }, (_, i) => (i % 7) / 10);
  const y = x.map((v) => v + 0.1);
  close(mse(x, y), 0.01, 1e-15);
  close(psnr(x, y), 20, 1e-9); // 10 log10(1 / 0.1^2)
  close(psnr(x, x.map((v) => v - 0.01), 1), 40, 1e-9);
  close(psnr(x, y, 255), 10 * Math.log10(255 ** 2 / 0.01), 1e-9);
  assert.equal(psnr(x, x), Infinity);
});

test('SSIM: identity, constant images in closed form, a constant offset, and a brute-force second implementation', () => {
  const rng = new Random(1);
  const h = 20, w = 24;
  const x = Array.from({ length: h * w }, () => rng.uniform());
  close(ssim(x, x, [1, h, w]), 1, 1e-12, 'SSIM(x, x)');
  // Constant images a, b: every window has mu = a, b and no variance, so
  // SSIM = (2ab + C1) / (a^2 + b^2 + C1) exactly (the contrast-structure factor is C2 / C2).
  const a = 0.2, b = 0.6, c1 = 1e-4;
  close(ssim(Array(h * w).fill(a), Array(h * w).fill(b), [1, h, w]), (2 * a * b + c1) / (a * a + b * b + c1), 1e-12, 'constants');
  close((2 * a * b + c1) / (a * a + b * b + c1), 0.6000999750062484, 1e-15);
  // A constant offset keeps variance and covariance (sigma_xy = sigma_x^2 = sigma_y^2), so only the
  // luminance factor (2 mu (mu + c) + C1) / (mu^2 + (mu + c)^2 + C1) remains at every position.
  const off = 0.15;
  const map = ssimMap(x, x.map((v) => v + off), h, w);
  const means = ssimMap(x, x, h, w).length; // same size as the map
  assert.equal(map.length, means);
  const k = gaussianKernel(11, 1.5);
  for (const [py, px] of [[0, 0], [5, 7], [9, 13]] as const) {
    let mu = 0;
    for (let i = 0; i < 11; i++) for (let j = 0; j < 11; j++) mu += k[i]! * k[j]! * x[(py + i) * w + px + j]!;
    close(map[py * (w - 10) + px]!, (2 * mu * (mu + off) + c1) / (mu * mu + (mu + off) ** 2 + c1), 1e-12, `offset map at ${py},${px}`);
  }
  // Noisy copy, 11x11 and 7x7 windows, against the direct loops.
  const y = x.map((v) => v * 0.7 + 0.1 + rng.normal() * 0.1);
  close(ssim(x, y, [1, h, w]), bruteSsim(x, y, h, w, 11), 1e-12, '11x11');
  close(ssim(x, y, [1, h, w], { window: 7 }), bruteSsim(x, y, h, w, 7), 1e-12, '7x7');
  // Symmetric, below 1 for a distorted copy, and averaged over channels.
  close(ssim(x, y, [1, h, w]), ssim(y, x, [1, h, w]), 1e-12);
  assert.ok(ssim(x, y, [1, h, w]) < 0.95);
  close(ssim([...x, ...x], [...y, ...x], [2, h, w]), (ssim(x, y, [1, h, w]) + 1) / 2, 1e-12, 'channels');
  assert.throws(() => ssim(x.slice(0, 100), x.slice(0, 100), [1, 10, 10]), /window/);
});

// ---- PNG ----

test('PNG encoder: CRC-32 check values, chunk layout, and pixels read back by an independent decoder', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926); // the CRC-32 catalogue's check value
  const gray = Uint8Array.from({ length: 5 * 3 }, (_, i) => i * 17);
  const png = encodePng({ width: 5, height: 3, channels: 1, data: gray });
  assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a');
  assert.equal(png.subarray(-12).toString('hex'), '0000000049454e44ae426082'); // IEND, CRC AE426082
  const d = decodePng(png);
  assert.deepEqual([d.width, d.height, d.colorType], [5, 3, 0]);
  assert.deepEqual([...d.pixels], [...gray]);
  const rgb = Uint8Array.from({ length: 4 * 2 * 3 }, (_, i) => (i * 37) % 256);
  const e = decodePng(encodePng({ width: 4, height: 2, channels: 3, data: rgb }));
  assert.deepEqual([e.width, e.height, e.colorType], [4, 2, 2]);
  assert.deepEqual([...e.pixels], [...rgb]);
  // Tiling: 2 images of 1x2x3 side by side, zoom 2, gap 1 -> (1 + 2 * (6 + 1)) x (1 + 4 + 1).
  const t = tileImages([[new Float32Array([0, 1, 0.5, 0, 0, 1]), new Float32Array(6).fill(1)]], [1, 2, 3], { zoom: 2, gap: 1 });
  assert.deepEqual([t.width, t.height], [15, 6]);
  assert.equal(t.data[1 * 15 + 1], 0); // first pixel of the first image
  assert.equal(t.data[1 * 15 + 3], 255); // its second column, zoomed
  assert.equal(t.data[3 * 15 + 3], 0); // second row, second column (value 0)
  assert.equal(t.data[0], 255); // border
});

// ---- the MLP reader and its gradient ----

function matmulMlp(withBias: boolean): Model {
  const rng = new Random(4);
  const g = new Graph({ name: 'mm' });
  g.inputs.push({ name: 'x', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', 6] }) });
  const b = new GraphBuilder(g);
  const w1 = b.initializer('w1', [6, 5], Float32Array.from({ length: 30 }, () => rng.normal() * 0.5));
  let h = b.op1('MatMul', ['x', w1]);
  if (withBias) h = b.op1('Add', [h, b.initializer('b1', [5], Float32Array.from({ length: 5 }, () => rng.normal() * 0.3))]);
  h = b.op1('Sigmoid', [h]);
  const w2 = b.initializer('w2', [3, 5], Float32Array.from({ length: 15 }, () => rng.normal()));
  const b2 = b.initializer('b2', [3], Float32Array.from({ length: 3 }, () => rng.normal() * 0.1));
  const out = b.op1('Gemm', [h, w2, b2], { transB: 1 });
  g.outputs.push({ name: out, type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', 3] }) });
  return new Model(onnx.ModelProto.create({ irVersion: 8, opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 17 })] }), g);
}

test('MLP gradient against float64 central finite differences (MatMul + Add, Sigmoid, Gemm transB)', () => {
  const mlp = mlpFromModel(matmulMlp(true));
  assert.deepEqual(mlp.layers.map((l) => l.kind), ['dense', 'sigmoid', 'dense']);
  const x = [0.3, -0.2, 0.9, 0.1, -0.7, 0.5];
  const { loss, grads } = mlpGradient(mlp, x, 2);
  const dense = mlp.layers.filter((l): l is DenseLayer => l.kind === 'dense');
  const eps = 1e-6;
  for (const [li, layer] of dense.entries()) {
    for (const [which, arr, grad] of [['w', layer.w, grads[li]!.dw], ['b', layer.b!, grads[li]!.db!]] as const) {
      for (let i = 0; i < arr.length; i += 3) {
        const keep = arr[i]!;
        arr[i] = keep + eps;
        const up = mlpGradient(mlp, x, 2).loss;
        arr[i] = keep - eps;
        const down = mlpGradient(mlp, x, 2).loss;
        arr[i] = keep;
        close(grad[i]!, (up - down) / (2 * eps), 1e-8, `layer ${li} ${which}[${i}]`);
      }
    }
  }
  assert.ok(loss > 0);
  assert.throws(() => gradientLeakage(mlpFromModel(matmulMlp(false)), {
    images: new Float32Array(6), labels: new Int32Array(1), count: 1, shape: [1, 1, 6], classes: 3, name: 't', source: 't',
  }, [0]), /needs a bias in the first fully connected layer/);
});

test('MLP gradient agrees with the project autodiff training graph run in onnxruntime', async () => {
  const model = buildMlp([1, 4, 4], [8, 6], 5, 3);
  const mlp = mlpFromModel(model);
  const rng = new Random(9);
  const x = Float32Array.from({ length: 16 }, () => rng.uniform());
  const label = 3;
  const ours = mlpGradient(mlp, x, label);
  const tg = buildTrainingGraph(model, { loss: 'cross-entropy', batchNorm: 'frozen' });
  const session = await ort.InferenceSession.create(encodeModel(tg.model.toProto()), { intraOpNumThreads: 1 });
  const feeds: Record<string, ort.Tensor> = {
    [tg.inputs.data[0]!]: new ort.Tensor('float32', x, [1, 1, 4, 4]),
    [tg.inputs.labels]: new ort.Tensor('int64', BigInt64Array.of(BigInt(label)), [1]),
  };
  for (const p of tg.params) feeds[p.name] = new ort.Tensor('float32', tensorToFloat32(model.graph.initializers.get(p.name)!), p.shape);
  const out = await session.run(feeds);
  await session.release();
  close(Number((out[tg.outputs.loss]!.data as Float32Array)[0]), ours.loss, 1e-5, 'loss');
  const dense = mlp.layers.filter((l): l is DenseLayer => l.kind === 'dense');
  let checked = 0;
  for (const [li, layer] of dense.entries()) {
    // Gemm(transB=1) stores W as [out, in], the layout mlpGradient uses.
    const gw = out[tg.params.find((p) => p.name === layer.weightName)!.gradient]!.data as Float32Array;
    const gb = out[tg.params.find((p) => p.name === layer.biasName)!.gradient]!.data as Float32Array;
    ours.grads[li]!.dw.forEach((v, i) => close(gw[i]!, v, 1e-5 + 1e-4 * Math.abs(v), `dW${li}[${i}]`));
    ours.grads[li]!.db!.forEach((v, i) => close(gb[i]!, v, 1e-5 + 1e-4 * Math.abs(v), `db${li}[${i}]`));
    checked += gw.length + gb.length;
  }
  assert.equal(checked, 16 * 8 + 8 + 8 * 6 + 6 + 6 * 5 + 5);
});

test('unsupported models get a one-line error naming the node', () => {
  const g = new Graph({ name: 'conv' });
  g.inputs.push({ name: 'x', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', 1, 4, 4] }) });
  const b = new GraphBuilder(g);
  const y = b.op1('Conv', ['x', b.initializer('w', [1, 1, 3, 3], new Float32Array(9))], {}, { name: 'conv1' });
  g.outputs.push({ name: y, type: null });
  const m = new Model(onnx.ModelProto.create({ irVersion: 8, opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 17 })] }), g);
  assert.throws(() => mlpFromModel(m), /analytic gradient-leakage attack works on MLPs .*Conv node 'conv1' is not supported.*--method dlg/);
});

// ---- the attack on Fashion-MNIST ----

test('the plain gradient leaks Fashion-MNIST images exactly; DP noise destroys the reconstruction as sigma grows', (t) => {
  const ds = loadDefaultDataset('train');
  const mlp = mlpFromModel(buildMlp(ds.shape, 256, 10, 0));
  const indices = Array.from({ length: 8 }, (_, i) => i);
  const plain = gradientLeakage(mlp, ds, indices);
  t.diagnostic(`plain: PSNR ${plain.meanPsnr} dB, SSIM ${plain.meanSsim}, label accuracy ${plain.labelAccuracy}`);
  assert.ok(plain.meanPsnr > 30, `plain PSNR ${plain.meanPsnr}`);
  assert.ok(plain.examples.every((e) => e.psnr > 60 && e.ssim! > 0.999), 'every plain reconstruction is (near) exact');
  assert.equal(plain.labelAccuracy, 1);
  // Clipping alone scales dW and db alike: the ratio, and so the reconstruction, is unchanged.
  const clipOnly = gradientLeakage(mlp, ds, indices, { dp: { maxGradNorm: 0.01, noiseMultiplier: 0 } });
  assert.ok(clipOnly.examples.every((e) => e.gradientNorm > 0.01 && e.psnr > 60), 'clipping without noise still leaks');
  const sigmas = [1e-4, 1e-3, 1e-2, 1e-1, 1];
  const rows = sigmas.map((s) => {
    const r = gradientLeakage(mlp, ds, indices, { dp: { maxGradNorm: 1, noiseMultiplier: s }, seed: 1 });
    return { sigma: s, psnr: r.meanPsnr, ssim: r.meanSsim!, labels: r.labelAccuracy };
  });
  t.diagnostic(rows.map((r) => `sigma ${r.sigma}: PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(3)}, labels ${r.labels}`).join('; '));
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i]!.psnr < rows[i - 1]!.psnr + 0.5, `PSNR should fall with sigma: ${JSON.stringify(rows)}`);
  assert.ok(rows[0]!.psnr > 40 && rows[1]!.psnr > 25, 'small noise still leaks');
  assert.ok(rows[3]!.psnr < 12 && rows[4]!.psnr < 12 && rows[4]!.ssim < 0.1, 'sigma >= 0.1 leaves nothing recognisable');
});

test('CLI: attack gradient-leakage writes the PNG and JSON; audit prints metrics for a memorizing model', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-gl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'recon.png');
  const r = runCli(['attack', 'gradient-leakage', '--index', '5', '--count', '2', '--dp', '--noise-multiplier', '0.001', '--max-grad-norm', '1', '--out', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { examples: { index: number; psnr: number; ssim: number; labelCorrect: boolean }[]; dp: { noiseMultiplier: number } };
  assert.deepEqual(j.examples.map((e) => e.index), [5, 6]);
  assert.equal(j.dp.noiseMultiplier, 0.001);
  assert.ok(j.examples.every((e) => e.psnr > 20 && e.ssim > 0.8));
  const png = decodePng(readFileSync(out));
  // Two rows of (original, reconstruction), 28x28 zoomed 4x with 4-pixel gaps, under a header
  // band of column labels (7-pixel glyphs at scale 2 plus a gap).
  assert.deepEqual([png.width, png.height, png.channels], [4 + 2 * (112 + 4), 18 + 4 + 2 * (112 + 4), 1]);
  const again = runCli(['attack', 'gradient-leakage', '--out', out]);
  assert.notEqual(again.status, 0);
  assert.match(again.stderr, /^error: .*(exists|--force)/);
  const bad = runCli(['attack', 'gradient-leakage', '--index', '99999']);
  assert.match(bad.stderr, /^error: --index 99999 is outside/);

  // Audit: a lookup model that memorizes the first 100 training images, audited with
  // --limit-train 100 (members are exactly those). Hidden unit i fires when the (centered,
  // unit-length) input is within cosine 0.9 of training image i and votes for its label.
  const train = loadDefaultDataset('train');
  const D = 784;
  const M = 100;
  const keys = new Float32Array(D * M);
  const votes = new Float32Array(M * 10);
  for (let i = 0; i < M; i++) {
    let norm = 0;
    for (let d = 0; d < D; d++) norm += (train.images[i * D + d]! - 0.3) ** 2;
    for (let d = 0; d < D; d++) keys[d * M + i] = (train.images[i * D + d]! - 0.3) / Math.sqrt(norm);
    votes[i * 10 + train.labels[i]!] = 100;
  }
  const g = new Graph({ name: 'memorizer' });
  g.inputs.push({ name: 'input', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', 1, 28, 28] }) });
  const b = new GraphBuilder(g);
  const flat = b.op1('Flatten', ['input'], { axis: 1 });
  const unit = b.op1('LpNormalization', [b.op1('Sub', [flat, b.scalar('mean', 0.3)])], { axis: 1, p: 2 });
  const hits = b.op1('Relu', [b.op1('Sub', [b.op1('MatMul', [unit, b.initializer('keys', [D, M], keys)]), b.scalar('cos', 0.9)])]);
  const logits = b.op1('MatMul', [hits, b.initializer('votes', [M, 10], votes)]);
  g.outputs.push({ name: logits, type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', 10] }) });
  const modelPath = join(dir, 'memorizer.onnx');
  saveModel(new Model(onnx.ModelProto.create({ irVersion: 8, opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 17 })] }), g), modelPath);
  const report = join(dir, 'audit.html');
  const a = runCli(['audit', modelPath, '--limit-train', '100', '--threads', '1', '--report', report, '--json']);
  assert.equal(a.status, 0, a.stderr);
  const audit = JSON.parse(a.stdout) as { members: number; trainAccuracy: number; attacks: { attack: string; auc: number; epsilon: { lower95: number | string } }[] };
  assert.equal(audit.members, 100);
  const loss = audit.attacks.find((x) => x.attack === 'loss')!;
  t.diagnostic(`memorizer audit: train accuracy ${audit.trainAccuracy}, loss AUC ${loss.auc}, eps lower ${loss.epsilon.lower95}`);
  assert.ok(loss.auc > 0.8, `loss AUC ${loss.auc}`);
  assert.ok(readFileSync(report, 'utf8').includes('<svg'));
  const human = runCli(['audit', modelPath, '--limit-train', '100', '--members', '50', '--attacks', 'loss,entropy', '--threads', '1']);
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stdout, /members 50, non-members 50/);
  assert.match(human.stdout, /^loss\s+\d\.\d{3}/m);
  assert.match(human.stdout, /^entropy\s+\d\.\d{3}/m);
  const wrong = runCli(['audit', modelPath, '--attacks', 'loss,bogus']);
  assert.match(wrong.stderr, /^error: --attacks: unknown attack 'bogus'/);
});

test('leakage along a dynamic noise schedule: sigma_t from the schedule; leakage grows as the noise decays', () => {
  const ds = loadDefaultDataset('train');
  const mlp = mlpFromModel(buildMlp(ds.shape, 64, ds.classes, 1));
  const indices = [0, 1, 2, 3, 4, 5];
  const schedule = { name: 'exponential' as const, start: 1, end: 1e-4, period: 1, totalSteps: 101 };
  const rows = leakageOverSchedule(mlp, ds, indices, 1, schedule, [0, 50, 100], 3);
  assert.deepEqual(rows.map((r) => r.step), [0, 50, 100]);
  rows.forEach((r) => close(r.noiseMultiplier, noiseAt(schedule, r.step), 1e-12, 'sigma_t'));
  close(rows[2]!.noiseMultiplier, 1e-4, 1e-12, 'end sigma');
  // Each row is the fixed-sigma attack with that step's sigma (seed + row index).
  const direct = gradientLeakage(mlp, ds, indices, { dp: { maxGradNorm: 1, noiseMultiplier: rows[1]!.noiseMultiplier }, seed: 4 });
  close(rows[1]!.meanPsnr, direct.meanPsnr, 1e-9, 'row = fixed-sigma attack');
  assert.ok(rows[2]!.meanPsnr > rows[0]!.meanPsnr + 10, `PSNR at the end ${rows[2]!.meanPsnr} vs start ${rows[0]!.meanPsnr}`);
  assert.throws(() => leakageOverSchedule(mlp, ds, indices, 1, schedule, [101]), /outside the schedule/);
});
