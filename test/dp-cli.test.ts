/**
 * `rp-onnx train --dp` end to end: with sigma 0 one step is exactly the mean of the per-example
 * clipped gradients (the check), and with sigma > 0 the noise in the update has standard
 * deviation sigma * C / B; epsilon and the privacy statement land in the model's metadata.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { writeNpy } from './helpers/npy.js';
import { loadModel } from '../src/graph/io.js';
import { tensorToFloat32 } from '../src/graph/tensor.js';
import { Trainer } from '../src/train/trainer.js';
import { loadDefaultDataset } from '../src/data/index.js';
import { epsilon } from '../src/privacy/rdp.js';
import { erfc } from '../src/privacy/special.js';

const B = 8;
const C = 0.5;
const dir = mkdtempSync(join(tmpdir(), 'rp-dp-'));
const model = join(dir, 'r8.onnx');
const oneStep = (out: string, sigma: number, extra: string[] = []) => runCli(['train', model, '--dp', '--steps', '1', '--lr', '1', '--optimizer', 'sgd', '--momentum', '0',
  '--weight-decay', '0', '--no-shuffle', '--sampling', 'shuffle', '--noise-multiplier', String(sigma), '--max-grad-norm', String(C),
  '--batch', String(B), '--schedule', 'constant', '--limit', '64', '-o', out, '--json', ...extra]);

/** The first n test images of the embedded data as an NPY train split (public: disjoint from the training split). */
function writePublicData(path: string, n: number): void {
  mkdirSync(path, { recursive: true });
  const ds = loadDefaultDataset('test');
  writeNpy(join(path, 'x_train.npy'), '<f4', [n, 1, 28, 28], ds.images.slice(0, n * 784));
  writeNpy(join(path, 'y_train.npy'), '<i8', [n], BigInt64Array.from(ds.labels.slice(0, n), (l) => BigInt(l)));
}

function weights(path: string): Map<string, Float32Array> {
  const m = loadModel(path);
  return new Map([...m.graph.initializers].filter(([, t]) => t.dataType === 1 && t.dims.length > 0).map(([k, t]) => [k, tensorToFloat32(t)]));
}

test('DP step with sigma 0 equals the mean of the per-example clipped gradients', async () => {
  assert.equal(runCli(['models', 'create', 'resnet8', '--in-channels', '1', '--image-size', '28', '--norm', 'group', '--seed', '5', '-o', model]).status, 0);
  const out = join(dir, 'sigma0.onnx');
  const r = oneStep(out, 0);
  assert.equal(r.status, 0, r.stderr);
  const w0 = weights(model);
  const w1 = weights(out);
  // Reference: the ordinary training graph on each of the first B examples alone.
  const ds = loadDefaultDataset('train');
  const t = await Trainer.create(loadModel(model), { optimizer: 'sgd', noiseSeed: 1 });
  const per = 784;
  const expected = new Map([...t.params.keys()].map((k) => [k, new Float64Array(t.params.get(k)!.length)]));
  for (let i = 0; i < B; i++) {
    const o = await t.forwardBackward(ds.images.slice(i * per, (i + 1) * per), ds.labels.slice(i, i + 1), 1);
    const g = new Map(t.training.params.map((p) => [p.name, o[p.gradient]!.data as Float32Array]));
    let sq = 0;
    for (const v of g.values()) for (const x of v) sq += x * x;
    const f = Math.min(1, C / (Math.sqrt(sq) + 1e-6));
    for (const [k, v] of g) expected.get(k)!.forEach((_, j, a) => { a[j]! += (f * v[j]!) / B; });
  }
  await t.release();
  let checked = 0;
  for (const [k, e] of expected) {
    const a = w0.get(k)!;
    const b = w1.get(k)!;
    let scale = 0;
    for (const v of e) scale = Math.max(scale, Math.abs(v));
    for (let j = 0; j < e.length; j++) {
      assert.ok(Math.abs(a[j]! - b[j]! - e[j]!) <= 1e-4 * scale + 1e-7, `${k}[${j}]: step ${a[j]! - b[j]!} vs ${e[j]}`);
      checked++;
    }
  }
  assert.ok(checked > 70_000);
});

test('DP noise in the update has standard deviation sigma * C / B; epsilon is recorded', () => {
  const base = join(dir, 'sigma0.onnx');
  const out = join(dir, 'sigma2.onnx');
  const r = oneStep(out, 2);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { privacy: { epsilon: number; accountant: string } };
  const w0 = weights(base);
  const w1 = weights(out);
  const diffs: number[] = [];
  for (const [k, a] of w0) {
    const b = w1.get(k)!;
    for (let j = 0; j < a.length; j++) diffs.push(a[j]! - b[j]!);
  }
  const mean = diffs.reduce((s, v) => s + v, 0) / diffs.length;
  const std = Math.sqrt(diffs.reduce((s, v) => s + (v - mean) ** 2, 0) / diffs.length);
  const expected = (2 * C) / B;
  // 78k coordinates: the sample std is within 1% of the true one with overwhelming probability.
  assert.ok(Math.abs(std - expected) < 0.01 * expected, `std ${std} vs sigma*C/B ${expected}`);
  // Shuffle sampling, one step of one epoch: one unamplified Gaussian mechanism, replace-one
  // adjacency (sensitivity 2C): noise multiplier sigma / 2 = 1. N = 64: the default delta is the
  // largest power of ten <= 0.1/N. Exact epsilon (Balle & Wang 2018) <= the PRV accountant's
  // upper bound <= exact + its certified error; RDP is looser still.
  const Phi = (x: number) => 0.5 * erfc(-x / Math.SQRT2);
  const deltaAt = (e: number) => Phi(-e + 0.5) - Math.exp(e) * Phi(-e - 0.5);
  let lo = 0;
  let hi = 20;
  for (let i = 0; i < 200; i++) [lo, hi] = deltaAt((lo + hi) / 2) > 1e-3 ? [(lo + hi) / 2, hi] : [lo, (lo + hi) / 2];
  const eps = summary.privacy.epsilon;
  assert.ok(eps >= hi && eps <= hi + 0.02, `epsilon ${eps} vs exact ${hi}`);
  assert.ok(eps < epsilon([{ sampleRate: 1, noiseMultiplier: 1, steps: 1 }], 1e-3));
  const meta = JSON.parse(loadModel(out).getMetadata('rp-onnx.privacy')!) as { epsilon: number; noise: { source: string }; sampling: string; delta: number };
  assert.equal(meta.epsilon, summary.privacy.epsilon);
  assert.equal(meta.delta, 1e-3);
  assert.equal(meta.noise.source, 'secure');
  assert.equal(meta.sampling, 'shuffle');
});

test('DP refuses BatchNorm without a fix, and non-Gaussian noise claims no epsilon', () => {
  const bn = join(dir, 'bn.onnx');
  assert.equal(runCli(['models', 'create', 'resnet8', '--in-channels', '1', '--image-size', '28', '-o', bn]).status, 0);
  const r = runCli(['train', bn, '--dp', '--noise-multiplier', '1', '--steps', '1', '-o', join(dir, 'x.onnx')]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /^error: .*--norm-fix/);
  const pb = runCli(['train', bn, '--dp', '--norm-fix', 'public-batch', '--noise-multiplier', '1', '--steps', '2', '--batch', '16', '--limit', '64', '-o', join(dir, 'p.onnx'), '--json']);
  assert.notEqual(pb.status, 0);
  assert.match(pb.stderr, /^error: --norm-fix public-batch needs --public-data/);
  // The private set's own folder is not public data: its examples overlap the private ones.
  const overlap = runCli(['train', bn, '--dp', '--norm-fix', 'public-batch', '--public-data', 'data/fashion-mnist-small', '--noise-multiplier', '1', '--steps', '2', '--batch', '16', '--limit', '64', '-o', join(dir, 'p.onnx'), '--json']);
  assert.notEqual(overlap.status, 0);
  assert.match(overlap.stderr, /^error: public data .* shares 64 of its 4000 examples with the private training data/);
  // Disjoint public data: the test split's first 256 images, stored as a train split.
  const publicDir = join(dir, 'public');
  writePublicData(publicDir, 256);
  const pub = runCli(['train', bn, '--dp', '--norm-fix', 'public-batch', '--public-data', publicDir, '--noise-multiplier', '1', '--steps', '2', '--batch', '16', '--limit', '64', '-o', join(dir, 'p.onnx'), '--json']);
  assert.equal(pub.status, 0, pub.stderr);
  const digest = (JSON.parse(loadModel(join(dir, 'p.onnx')).getMetadata('rp-onnx.privacy')!) as { publicData: { digest: string; examples: number } }).publicData;
  assert.match(digest.digest, /^sha256:[0-9a-f]{64}$/);
  assert.equal(digest.examples, 256);
  // The exported running statistics are public-batch statistics, not the initial 0 / 1.
  const stats = [...loadModel(join(dir, 'p.onnx')).graph.initializers].filter(([k]) => /running_mean$/.test(k));
  assert.ok(stats.length > 0 && stats.some(([, t]) => tensorToFloat32(t).some((v) => v !== 0)));
  const fixed = runCli(['train', bn, '--dp', '--norm-fix', 'group', '--noise-multiplier', '1', '--steps', '2', '--batch', '16', '--limit', '64', '-o', join(dir, 'g.onnx'), '--json']);
  assert.equal(fixed.status, 0, fixed.stderr);
  const lap = runCli(['train', model, '--dp', '--noise', 'laplace', '--noise-multiplier', '1', '--steps', '1', '--batch', '16', '--limit', '64', '-o', join(dir, 'l.onnx'), '--json']);
  assert.equal(lap.status, 0, lap.stderr);
  const s = JSON.parse(lap.stdout) as { privacy: { epsilon: number | null; statement: string } };
  assert.equal(s.privacy.epsilon, null);
  assert.match(s.privacy.statement, /no accountant/);
});
