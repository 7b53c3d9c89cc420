/**
 * `rp-onnx train` end to end, against an independent reference: the float64 interpreter
 * (src/reference) evaluates the same model with BatchNormalization in training mode on the
 * first B examples of the embedded data (file order, images / 255), and central finite
 * differences of its mean cross-entropy along random directions must equal the step the CLI took
 * (--steps 1 --lr 1 --optimizer sgd --momentum 0 --weight-decay 0 writes W - dL/dW).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { loadModel } from '../src/graph/io.js';
import { tensorToFloat32, tensorDims } from '../src/graph/tensor.js';
import { Model } from '../src/graph/ir.js';
import { evaluate, f64, type RefTensor } from '../src/reference/interpreter.js';
import { loadDefaultDataset } from '../src/data/index.js';
import { Random } from '../src/random.js';

const B = 4;

function meanCrossEntropy(model: Model, params: Map<string, Float64Array>, images: Float64Array, labels: Int32Array): number {
  const g = model.graph;
  const overrides: Record<string, RefTensor> = {};
  for (const [name, data] of params) overrides[name] = f64(tensorDims(g.initializers.get(name)!), data);
  const input = g.realInputs()[0]!.name;
  const out = evaluate(g, { [input]: f64([B, 1, 28, 28], images) }, { opset: model.opset(), initializerOverrides: overrides });
  const logits = out[g.outputs[0]!.name]!.data as Float64Array;
  const k = logits.length / B;
  let loss = 0;
  for (let i = 0; i < B; i++) {
    const row = logits.subarray(i * k, (i + 1) * k);
    const max = Math.max(...row);
    const lse = Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) + max;
    loss += lse - row[labels[i]!]!;
  }
  return loss / B;
}

test('train --steps 1 --lr 1 (plain SGD) writes W - dL/dW: finite differences in float64 agree to 1e-4', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-train-'));
  const before = join(dir, 'r8.onnx');
  const after = join(dir, 'r8.trained.onnx');
  let r = runCli(['models', 'create', 'resnet8', '--in-channels', '1', '--image-size', '28', '--seed', '7', '-o', before]);
  assert.equal(r.status, 0, r.stderr);
  r = runCli(['train', before, '--steps', '1', '--lr', '1', '--optimizer', 'sgd', '--momentum', '0', '--weight-decay', '0',
    '--no-shuffle', '--batch', String(B), '--schedule', 'constant', '-o', after, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { steps: number };
  assert.equal(summary.steps, 1);

  const m0 = loadModel(before);
  const m1 = loadModel(after);
  assert.ok(m1.getMetadata('rp-onnx.training'));
  // The reference model: the same graph with BatchNormalization using batch statistics.
  const ref = m0.clone();
  for (const n of ref.graph.nodes) if (n.opType === 'BatchNormalization') n.setAttr('training_mode', 1);

  const trainable = [...m0.graph.initializers.keys()].filter((k) => !/running_(mean|var)$/.test(k) && m0.graph.initializers.get(k)!.dataType === 1 && tensorDims(m0.graph.initializers.get(k)!).length > 0);
  const w0 = new Map(trainable.map((k) => [k, Float64Array.from(tensorToFloat32(m0.graph.initializers.get(k)!))]));
  const step = new Map(trainable.map((k) => {
    const a = tensorToFloat32(m0.graph.initializers.get(k)!);
    const b = tensorToFloat32(m1.graph.initializers.get(k)!);
    return [k, Float64Array.from(a, (v, i) => v - b[i]!)];
  }));

  const ds = loadDefaultDataset('train');
  const images = Float64Array.from(ds.images.subarray(0, B * 784));
  const labels = ds.labels.subarray(0, B);

  const rng = new Random(11);
  // Directions: one spanning every parameter, and one inside each of a few single tensors.
  const picks: (string | null)[] = [null, 'stem.conv.weight', 'stage2.block0.shortcut.conv.weight', 'stage3.block0.bn2.weight', 'head.fc.bias'];
  for (const pick of picks) {
    const names = pick === null ? trainable : [pick];
    assert.ok(names.every((n) => w0.has(n)), `parameter ${pick} exists`);
    const dir = new Map(names.map((n) => [n, Float64Array.from(w0.get(n)!, () => rng.normal())]));
    let norm = 0;
    for (const v of dir.values()) for (const x of v) norm += x * x;
    norm = Math.sqrt(norm);
    for (const v of dir.values()) for (let i = 0; i < v.length; i++) v[i]! /= norm;
    const h = 1e-6; // float64: roundoff ~1e-10; larger steps cross ReLU kinks
    const shifted = (sign: number) => new Map([...w0].map(([k, w]) => {
      const d = dir.get(k);
      return [k, d ? Float64Array.from(w, (x, i) => x + sign * h * d[i]!) : w];
    }));
    const fd = (meanCrossEntropy(ref, shifted(1), images, labels) - meanCrossEntropy(ref, shifted(-1), images, labels)) / (2 * h);
    let taken = 0;
    for (const [k, d] of dir) {
      const s = step.get(k)!;
      for (let i = 0; i < d.length; i++) taken += s[i]! * d[i]!;
    }
    const rel = Math.abs(fd - taken) / Math.max(1e-6, Math.abs(fd));
    assert.ok(rel < 1e-4 || Math.abs(fd - taken) < 1e-7, `direction ${pick ?? 'all'}: finite difference ${fd} vs step ${taken} (rel ${rel})`);
  }
});

test('train refuses to overwrite its input, and bad flags give one-line errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-train-'));
  const model = join(dir, 'm.onnx');
  assert.equal(runCli(['models', 'create', 'resnet8', '--in-channels', '1', '--image-size', '28', '-o', model]).status, 0);
  for (const args of [
    ['train', model, '-o', model],
    ['train', model, '--optimizer', 'lbfgs', '-o', join(dir, 'o.onnx')],
    ['train', model, '--batch', 'x', '-o', join(dir, 'o.onnx')],
    ['train', model, '--data', join(dir, 'nowhere'), '-o', join(dir, 'o.onnx')],
  ]) {
    const r = runCli(args);
    assert.notEqual(r.status, 0, args.join(' '));
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
    assert.match(lines[0]!, /^error: /);
  }
  assert.deepEqual(readdirSync(dir).filter((f) => f !== 'm.onnx'), [], 'nothing partial written');
  assert.ok(existsSync(model));
});
