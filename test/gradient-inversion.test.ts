/**
 * Optimization-based gradient leakage: the matching-loss graphs against float64 finite
 * differences (reference interpreter) on a small LeNet, the optimizers and the TV prior against
 * closed forms, iDLG's label rule, and short attacks on a tiny LeNet.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildLeNet } from '../models/lenet.js';
import { buildInversionGraphs, type InversionGraphs } from '../src/audit/gradient-inversion-graph.js';
import { GradientInverter, cosineDistance, gradientInversion, totalVariation } from '../src/audit/gradient-inversion.js';
import { clipAndNoise } from '../src/audit/gradient-leakage.js';
import { lbfgs, signedAdam } from '../src/audit/gradient-inversion-optim.js';
import { evaluate, type RefTensor } from '../src/reference/interpreter.js';
import { Random } from '../src/random.js';
import type { Dataset } from '../src/data/index.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { loadModel } from '../src/graph/io.js';
import { decodePng } from './helpers/png.js';
import { runOrt, type Feed } from './helpers/gradcheck.js';

const SIZE = 8;
const lenet = () => buildLeNet({ imageSize: SIZE, classes: 4, seed: 3 });

function f64(dims: number[], data: ArrayLike<number>): RefTensor {
  return { dims, data: Float64Array.from(data), dtype: 'float64' };
}

/** Matching loss in float64 by the reference interpreter. */
function refLoss(g: InversionGraphs, x: ArrayLike<number>, label: ArrayLike<number> | number, observed: Float32Array[]): number {
  const feeds: Record<string, RefTensor> = { [g.input]: f64([1, ...g.exampleShape], x) };
  feeds[g.labelInput] = typeof label === 'number' ? { dims: [1], data: BigInt64Array.of(BigInt(label)), dtype: 'int64' } : f64([1, g.classes], label);
  g.observedInputs.forEach((name, i) => { feeds[name] = f64(g.params[i]!.shape, observed[i]!); });
  const out = evaluate(g.matching.graph, feeds, { outputs: [g.outputs.loss], opset: 17 });
  return Number((out[g.outputs.loss]!.data as Float64Array)[0]);
}

async function observedGradient(seed: number): Promise<{ x: Float32Array; grads: Float32Array[]; label: number }> {
  const rng = new Random(seed);
  const x = Float32Array.from({ length: SIZE * SIZE }, () => rng.uniform());
  const inv = await GradientInverter.create(lenet(), { methods: [] });
  const grads = await inv.gradientOf(x, 2);
  await inv.release();
  return { x, grads, label: 2 };
}

for (const [loss, softLabel] of [['l2', true], ['l2', false], ['cosine', false]] as const) {
  test(`matching loss ${loss}${softLabel ? ' with soft label (DLG)' : ''}: d/dx' (and d/dlabel) against float64 finite differences on the LeNet`, async () => {
    const g = buildInversionGraphs(lenet(), { loss, softLabel });
    const { grads: observed } = await observedGradient(5);
    const rng = new Random(9);
    const x = Float64Array.from({ length: SIZE * SIZE }, () => rng.uniform());
    const soft = Float64Array.from({ length: 4 }, () => rng.normal());
    const feeds: Record<string, Feed> = { [g.input]: { dims: [1, 1, SIZE, SIZE], data: Float32Array.from(x) } };
    feeds[g.labelInput] = softLabel ? { dims: [1, 4], data: Float32Array.from(soft) } : { dims: [1], data: BigInt64Array.of(1n) };
    g.observedInputs.forEach((name, i) => { feeds[name] = { dims: g.params[i]!.shape, data: observed[i]! }; });
    const out = await runOrt(g.matching, feeds);
    const dx = out[g.outputs.dx]!.data as Float32Array;
    const label = softLabel ? soft : 1;
    const base = refLoss(g, x, label, observed);
    assert.ok(Math.abs(Number((out[g.outputs.loss]!.data as Float32Array)[0]) - base) <= 1e-4 * Math.max(1, Math.abs(base)), 'onnxruntime and the interpreter agree on the loss');
    let scale = 0;
    for (const v of dx) scale = Math.max(scale, Math.abs(v));
    const check = (analytic: number, plus: () => number, minus: () => number, h: number, what: string) => {
      const numeric = (plus() - minus()) / (2 * h);
      const err = Math.abs(analytic - numeric) / Math.max(Math.abs(analytic), Math.abs(numeric), 0.05 * scale, 1e-9);
      assert.ok(err < 2e-3, `${what}: analytic ${analytic} numeric ${numeric}`);
    };
    const h = 1e-5;
    for (let probe = 0; probe < 8; probe++) {
      const i = rng.int(x.length);
      const at = (d: number) => { const y = Float64Array.from(x); y[i]! += d; return refLoss(g, y, label, observed); };
      check(dx[i]!, () => at(h), () => at(-h), h, `x'[${i}]`);
    }
    if (softLabel) {
      const dl = out[g.outputs.dLabel!]!.data as Float32Array;
      for (let k = 0; k < 4; k++) {
        const at = (d: number) => { const y = Float64Array.from(soft); y[k]! += d; return refLoss(g, x, y, observed); };
        check(dl[k]!, () => at(h), () => at(-h), h, `label logit ${k}`);
      }
    }
  });
}

test('matching loss is zero at the original example (L2 and cosine)', async () => {
  const { x, grads, label } = await observedGradient(11);
  for (const loss of ['l2', 'cosine'] as const) {
    const g = buildInversionGraphs(lenet(), { loss, softLabel: false });
    assert.ok(Math.abs(refLoss(g, x, label, grads)) < 1e-6, `${loss} at the original`);
  }
});

test('L-BFGS: minimum of the Rosenbrock function', async () => {
  const rosen = async (v: Float64Array) => {
    const [a, b] = [v[0]!, v[1]!];
    return { f: (1 - a) ** 2 + 100 * (b - a * a) ** 2, g: Float64Array.of(-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)) };
  };
  const r = await lbfgs(rosen, Float64Array.of(-1.2, 1), { iterations: 200 });
  assert.ok(Math.abs(r.x[0]! - 1) < 1e-6 && Math.abs(r.x[1]! - 1) < 1e-6, `got ${r.x}`);
});

test('signed Adam with box projection: a quadratic whose minimum lies outside the box ends on the boundary', async () => {
  const target = Float64Array.of(0.3, 1.7, -0.4);
  const quad = async (v: Float64Array) => ({ f: v.reduce((s, x, i) => s + (x - target[i]!) ** 2, 0), g: v.map((x, i) => 2 * (x - target[i]!)) });
  const clamp = (x: Float64Array) => { for (let i = 0; i < x.length; i++) x[i] = Math.min(1, Math.max(0, x[i]!)); };
  const r = await signedAdam(quad, Float64Array.of(0.9, 0.2, 0.5), { iterations: 800, lr: 0.05, project: clamp });
  assert.ok(Math.abs(r.x[0]! - 0.3) < 2e-3, `${r.x[0]}`);
  assert.equal(r.x[1], 1);
  assert.equal(r.x[2], 0);
});

test('total variation: closed form on a ramp and gradient by finite differences', () => {
  const shape = [1, 3, 4] as const;
  const ramp = Float64Array.from({ length: 12 }, (_, k) => (k % 4) * 0.1 + Math.floor(k / 4) * 0.2);
  // Horizontal steps of 0.1 (9 of them), vertical steps of 0.2 (8): mean |dx| + mean |dy| = 0.3.
  assert.ok(Math.abs(totalVariation(ramp, shape).tv - 0.3) < 1e-12);
  const rng = new Random(2);
  const x = Float64Array.from({ length: 12 }, () => rng.uniform());
  const { grad } = totalVariation(x, shape);
  for (let i = 0; i < 12; i++) {
    const h = 1e-7;
    const p = Float64Array.from(x); p[i]! += h;
    const m = Float64Array.from(x); m[i]! -= h;
    const numeric = (totalVariation(p, shape).tv - totalVariation(m, shape).tv) / (2 * h);
    assert.ok(Math.abs(numeric - grad[i]!) < 1e-6, `tv grad ${i}: ${grad[i]} vs ${numeric}`);
  }
});

test("iDLG's label rule reads the true class from the last layer's bias gradient", async () => {
  const inv = await GradientInverter.create(lenet(), { methods: [] });
  const rng = new Random(4);
  for (let label = 0; label < 4; label++) {
    const x = Float32Array.from({ length: SIZE * SIZE }, () => rng.uniform());
    assert.equal(inv.inferLabel(await inv.gradientOf(x, label)), label);
  }
  await inv.release();
});

test('DP on the observed gradient: clipped to C, then noise of std sigma C', () => {
  const rng = new Random(1);
  const g = [Float32Array.from({ length: 5000 }, () => rng.normal() * 3)];
  const clipped = clipAndNoise(g, { maxGradNorm: 1, noiseMultiplier: 0 }, rng);
  const norm = Math.sqrt(clipped[0]!.reduce((s, v) => s + v * v, 0));
  assert.ok(Math.abs(norm - 1) < 1e-5);
  assert.ok(cosineDistance(clipped, g) < 1e-6);
  const noisy = clipAndNoise([new Float32Array(20000)], { maxGradNorm: 2, noiseMultiplier: 0.5 }, rng)[0]!;
  const std = Math.sqrt(noisy.reduce((s, v) => s + v * v, 0) / noisy.length);
  assert.ok(Math.abs(std - 1) < 0.02, `std ${std}`);
});

function tinyDataset(): Dataset {
  const rng = new Random(21);
  // A smooth blob, the kind of image the attack should recover well.
  const images = Float32Array.from({ length: SIZE * SIZE }, (_, k) => {
    const i = Math.floor(k / SIZE) - 3.5;
    const j = (k % SIZE) - 3.5;
    return Math.min(1, Math.max(0, Math.exp(-(i * i + j * j) / 8) + 0.05 * rng.uniform()));
  });
  return { images, labels: Int32Array.of(3), count: 1, shape: [1, SIZE, SIZE], classes: 4, name: 'blob', source: 'test' };
}

test('DLG and iDLG reconstruct an example of the tiny LeNet from its clean gradient; DP noise defeats them', async () => {
  const ds = tinyDataset();
  const inv = await GradientInverter.create(lenet(), { methods: ['dlg', 'idlg'] });
  const dlg = await gradientInversion(inv, ds, [0], { method: 'dlg', iterations: 100 });
  assert.ok(dlg.meanPsnr > 40, `DLG ${dlg.meanPsnr} dB`);
  assert.equal(dlg.labelAccuracy, 1);
  const idlg = await gradientInversion(inv, ds, [0], { method: 'idlg', iterations: 100 });
  assert.ok(idlg.meanPsnr > 40, `iDLG ${idlg.meanPsnr} dB`);
  assert.ok(idlg.meanGradientCosineDistance < 1e-4);
  const noisy = await gradientInversion(inv, ds, [0], { method: 'idlg', iterations: 50, dp: { maxGradNorm: 1, noiseMultiplier: 1 } });
  assert.ok(noisy.meanPsnr < 20, `iDLG under DP ${noisy.meanPsnr} dB`);
  await inv.release();
});

test('Inverting Gradients reconstructs the tiny LeNet example from a clean gradient', async () => {
  const ds = tinyDataset();
  const r = await gradientInversion(lenet(), ds, [0], { method: 'inverting-gradients', iterations: 100 });
  assert.ok(r.meanPsnr > 25, `IG ${r.meanPsnr} dB`);
  assert.equal(r.labelAccuracy, 1);
  assert.ok(r.examples[0]!.reconstruction.every((v) => v >= 0 && v <= 1), 'clamped to the data range');
});

test('Inverting Gradients converges without a cap on a case DLG solves: the cosine matching loss falls far below float32 rounding of 1 - cos (1e-7)', async () => {
  const ds = tinyDataset();
  const inv = await GradientInverter.create(lenet(), { methods: ['inverting-gradients'] });
  const r = await gradientInversion(inv, ds, [0], { method: 'inverting-gradients', iterations: 600 });
  const e = r.examples[0]!;
  assert.ok(e.matchingLoss < 1e-9, `matching loss ${e.matchingLoss}`);
  assert.ok(e.psnr > 50, `IG ${e.psnr} dB`);
  // The cosine distance from an independent float64 sum over the two gradients agrees.
  assert.ok(e.gradientCosineDistance < 1e-6, `gradient cosine distance ${e.gradientCosineDistance}`);
  // The paper's signed steps with step decay stall on the same case, far above it.
  const signed = await gradientInversion(inv, ds, [0], { method: 'inverting-gradients', iterations: 600, signed: true, lrSchedule: 'step' });
  assert.ok(signed.examples[0]!.matchingLoss > 100 * e.matchingLoss, `signed ${signed.examples[0]!.matchingLoss} vs ${e.matchingLoss}`);
  await inv.release();
});

test('cosine matching loss: accurate where 1 - <a, b>/(|a| |b|) rounds to 0 in float32', async () => {
  const { x, grads, label } = await observedGradient(5);
  const inv = await GradientInverter.create(lenet(), { methods: ['inverting-gradients'] });
  // A dummy one part in 1e5 from the original: 1 - cos is ~1e-10, below float32's resolution of 1.
  const dummy = Float64Array.from(x, (v, i) => v + 1e-5 * Math.sin(i));
  const got = (await inv.objective('cosine', grads, label)(dummy)).f;
  const ref = cosineDistance(await inv.gradientOf(Float32Array.from(dummy), label), grads);
  await inv.release();
  assert.ok(got > 0 && Math.abs(got - ref) <= 0.05 * ref + 1e-12, `graph ${got} vs float64 sum ${ref}`);
});

test('CLI: gradient-leakage --method idlg,inverting-gradients on the default LeNet: JSON per method, progress on stderr, labelled PNG grid', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-gi-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'grid.png');
  const r = runCli(['attack', 'gradient-leakage', '--method', 'idlg,inverting-gradients', '--iterations', '20', '--progress-every', '10', '--threads', '1', '--out', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { methods: { method: string; meanPsnr: number; labelAccuracy: number; meanGradientCosineDistance: number; secondsPerAttack: number; examples: unknown[] }[] };
  assert.deepEqual(j.methods.map((m) => m.method), ['idlg', 'inverting-gradients']);
  for (const m of j.methods) {
    assert.equal(m.examples.length, 1);
    assert.equal(m.labelAccuracy, 1);
    assert.ok(m.meanGradientCosineDistance >= 0 && m.meanGradientCosineDistance <= 2 && m.secondsPerAttack > 0);
  }
  assert.match(r.stderr, /idlg example 0: iteration 10\/20, matching loss \d/);
  const png = decodePng(readFileSync(out));
  // One row, three columns (original | iDLG | IG) of 28x28 zoomed 4x, under the label band.
  assert.deepEqual([png.width, png.height], [4 + 3 * (112 + 4), 18 + 4 + 112 + 4]);
  // The band holds dark label pixels; the gap under it is white.
  const band = png.pixels.subarray(0, 18 * png.width);
  assert.ok(band.some((v) => v === 0));
  const bad = runCli(['attack', 'gradient-leakage', '--method', 'dlg,magic']);
  assert.match(bad.stderr, /^error: --method must be one or more/);
});

test('PyTorch cross-check: on the LeNet exported by PyTorch, the L2 and cosine matching losses and their input gradients equal torch autograd double-backward (float64)', async () => {
  const expected = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'gradient-leakage-expected.json'), 'utf8')) as {
    x: number[]; dummy: number[]; label: number; l2: { loss: number; dx: number[] }; cosine: { loss: number; dx: number[] };
  };
  const model = loadModel(join(import.meta.dirname, 'fixtures', 'lenet-sigmoid-dlg-op13.onnx'));
  const inv = await GradientInverter.create(model, { methods: ['idlg', 'inverting-gradients'] });
  const observed = await inv.gradientOf(Float32Array.from(expected.x), expected.label);
  for (const kind of ['l2', 'cosine'] as const) {
    const r = await inv.objective(kind, observed, expected.label)(Float64Array.from(expected.dummy));
    const want = expected[kind];
    assert.ok(Math.abs(r.f - want.loss) <= 2e-4 * Math.abs(want.loss), `${kind} loss ${r.f} vs torch ${want.loss}`);
    const scale = Math.max(...want.dx.map(Math.abs));
    let worst = 0;
    for (let i = 0; i < want.dx.length; i++) worst = Math.max(worst, Math.abs(r.g[i]! - want.dx[i]!) / scale);
    assert.ok(worst < 1e-3, `${kind} d/dx': worst error ${worst} of the largest entry`);
  }
  await inv.release();
});

test('CLI: --noise-schedule with an optimization method attacks the gradient at steps 0, T/4, T/2, 3T/4, T-1 with sigma_t of the schedule', () => {
  const r = runCli(['attack', 'gradient-leakage', '--method', 'idlg', '--iterations', '5', '--progress-every', '0', '--threads', '1', '--dp', '--noise-multiplier', '0.5', '--noise-schedule', 'exponential', '--noise-end-ratio', '0.1', '--schedule-steps', '9', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { methods: { method: string; rows: { step: number; noiseMultiplier: number }[] }[] };
  const rows = j.methods[0]!.rows;
  assert.deepEqual(rows.map((x) => x.step), [0, 2, 4, 6, 8]);
  // Exponential decay from 0.5 to 0.05 over T - 1 = 8 steps: 0.5 * 0.1^(t/8).
  for (const row of rows) assert.ok(Math.abs(row.noiseMultiplier - 0.5 * 0.1 ** (row.step / 8)) < 1e-9, JSON.stringify(row));
});
