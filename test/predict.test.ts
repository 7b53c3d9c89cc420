/**
 * Prediction: averaging over stochastic passes and ensemble members against manual session runs,
 * accuracy against a hand count, fixed-batch models, and the predict CLI on a dataset folder and
 * a .npy file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildResNet } from '../models/resnet.js';
import { perturbModel } from '../src/passes/perturb.js';
import { saveModel } from '../src/graph/io.js';
import { createSession, ort } from '../src/runtime/session.js';
import { predict, argmaxRows } from '../src/runtime/predict.js';
import { memberNoiseSeeds } from '../src/runtime/noise-seeding.js';
import { Random } from '../src/random.js';
import type { Model } from '../src/graph/ir.js';

const IMG = 16, PER = IMG * IMG, CLASSES = 10;
const resnet = (seed: number) => buildResNet('resnet8', { inChannels: 1, classes: CLASSES, imageSize: IMG, seed });
const noisy = (m: Model, gamma: number) => perturbModel(m, { gamma, strategy: 'I', scale: 'absolute', toolVersion: 'test' }).model;

function images(n: number, seed: number): Float32Array {
  const a = new Float32Array(n * PER);
  new Random(seed).fillNormal(a);
  return a;
}

async function direct(model: Model, x: Float32Array, n: number, noiseSeed: number | 'secure' = 'secure', runs = 1): Promise<Float32Array> {
  const s = await createSession(model, { threads: 1, noiseSeed });
  const sum = new Float32Array(n * CLASSES);
  for (let r = 0; r < runs; r++) {
    const out = (await s.run({ input: new ort.Tensor('float32', x, [n, 1, IMG, IMG]) })).logits!.data as Float32Array;
    for (let i = 0; i < sum.length; i++) sum[i]! += out[i]!;
  }
  await s.release();
  return sum.map((v) => v / runs);
}

function assertClose(a: Float32Array, b: Float32Array, tol: number, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

test('K stochastic passes: the average of K session runs with the same noise seed', async () => {
  const m = noisy(resnet(1), 0.3);
  const n = 10;
  const x = images(n, 1);
  const r = await predict([m], { data: x, count: n, shape: [1, IMG, IMG] }, { samples: 4, batch: 64, noiseSeed: 77, threads: 1 });
  assertClose(r.logits, await direct(m, x, n, 77, 4), 1e-5, 'averaged logits');
  // One pass alone is a different (noisier) answer.
  const one = await predict([m], { data: x, count: n, shape: [1, IMG, IMG] }, { samples: 1, noiseSeed: 77, threads: 1 });
  assert.ok(one.logits.some((v, i) => Math.abs(v - r.logits[i]!) > 1e-4));
});

test('ensemble: logits averaged over members, each with its own noise seed', async () => {
  const members = [noisy(resnet(1), 0.2), noisy(resnet(2), 0.2), resnet(3)];
  const n = 6;
  const x = images(n, 2);
  const r = await predict(members, { data: x, count: n, shape: [1, IMG, IMG] }, { noiseSeed: 9, batch: 4, threads: 1 });
  const seeds = memberNoiseSeeds(9, 3) as number[];
  assert.equal(new Set(seeds).size, 3);
  const parts = await Promise.all(members.map((m, i) => direct(m, x, n, seeds[i])));
  const expected = parts[0]!.map((_, i) => (parts[0]![i]! + parts[1]![i]! + parts[2]![i]!) / 3);
  assertClose(r.logits, expected, 1e-5, 'ensemble logits');
  assert.deepEqual(r.predictions, argmaxRows(expected, n, CLASSES));
  assert.equal(r.members, 3);
  // Two copies of one noisy model are two independent noisy models, not one model twice.
  const twin = await predict([members[0]!, members[0]!], { data: x, count: n, shape: [1, IMG, IMG] }, { threads: 1 });
  const single = await predict([members[0]!], { data: x, count: n, shape: [1, IMG, IMG] }, { threads: 1 });
  assert.ok(twin.logits.some((v, i) => Math.abs(v - single.logits[i]!) > 1e-4));
});

test('accuracy and limit: counted against labels; throughput reported', async () => {
  const m = resnet(4);
  const n = 20;
  const x = images(n, 3);
  const pred = argmaxRows(await direct(m, x, n), n, CLASSES);
  // Labels: right for the first 15, wrong for the last 5.
  const labels = Int32Array.from(pred, (p, i) => (i < 15 ? p : (p + 1) % CLASSES));
  const r = await predict([m], { data: x, count: n, shape: [1, IMG, IMG], labels }, { batch: 7, threads: 1 });
  assert.equal(r.correct, 15);
  assert.equal(r.accuracy, 0.75);
  assert.ok(r.examplesPerSecond > 0);
  const lim = await predict([m], { data: x, count: n, shape: [1, IMG, IMG], labels }, { limit: 10, threads: 1 });
  assert.equal(lim.count, 10);
  assert.equal(lim.accuracy, 1);
});

test('a model with a fixed batch extent gets exactly that many rows per run (zero-padded)', async () => {
  const m = resnet(5);
  m.graph.setType('input', { dtype: 'float32', shape: [4, 1, IMG, IMG] });
  const n = 6;
  const x = images(n, 4);
  const r = await predict([m], { data: x, count: n, shape: [1, IMG, IMG] }, { batch: 64, threads: 1 });
  const padded = new Float32Array(8 * PER);
  padded.set(x);
  const ref = resnet(5);
  assertClose(r.logits, (await direct(ref, padded, 8)).subarray(0, n * CLASSES), 1e-5, 'fixed batch');
  await assert.rejects(predict([m], { data: x, count: 1, shape: [3, IMG, IMG] }, {}), /expects input 'input' of shape \[4, 1, 16, 16\]/);
});

/** A .npy v1.0 file of float32 values. */
function npy(shape: number[], data: Float32Array): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, ...Buffer.from('NUMPY'), 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(new Uint8Array(data.buffer), 10 + header.length);
  return out;
}

test('predict CLI: --data folder with accuracy, --input .npy with predictions (JSON)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-predict-'));
  try {
    const m = buildResNet('resnet8', { inChannels: 1, classes: CLASSES, imageSize: 28, seed: 1 });
    const path = join(dir, 'm.onnx');
    saveModel(noisy(m, 0), path);
    const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join('cli', 'main.ts'), 'predict', path, ...args, '--threads', '1', '--json'], { encoding: 'utf8' });
    const onData = cli(['--data', join('data', 'fashion-mnist-small'), '--limit', '50', '--samples', '2']);
    assert.equal(onData.status, 0, onData.stderr);
    const d = JSON.parse(onData.stdout) as { count: number; accuracy: number; correct: number; examplesPerSecond: number };
    assert.equal(d.count, 50);
    assert.equal(d.accuracy, d.correct / 50);
    assert.ok(d.examplesPerSecond > 0);

    const x = new Float32Array(3 * 28 * 28);
    new Random(6).fillNormal(x);
    writeFileSync(join(dir, 'x.npy'), npy([3, 1, 28, 28], x));
    const onNpy = cli(['--input', join(dir, 'x.npy')]);
    assert.equal(onNpy.status, 0, onNpy.stderr);
    const p = JSON.parse(onNpy.stdout) as { count: number; accuracy: null; predictions: number[]; logits: number[][] };
    assert.equal(p.count, 3);
    assert.equal(p.accuracy, null);
    const s = await createSession(m, { threads: 1 });
    const ref = (await s.run({ input: new ort.Tensor('float32', x, [3, 1, 28, 28]) })).logits!.data as Float32Array;
    await s.release();
    assertClose(Float32Array.from(p.logits.flat()), ref, 1e-5, 'npy logits');
    assert.deepEqual(p.predictions, Array.from(argmaxRows(ref, 3, CLASSES)));

    const bad = cli(['--input', join(dir, 'x.npy'), '--data', 'data']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^error: give exactly one of --data DIR and --input FILE.npy \(see 'rp-onnx predict --help'\)\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
