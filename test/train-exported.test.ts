/**
 * One-step semantics on models exported from PyTorch (test/fixtures): `train --steps 1 --lr 1
 * --optimizer sgd --momentum 0 --weight-decay 0 --no-shuffle` writes W - dL/dW, checked against
 * float64 central finite differences of the mean cross-entropy computed by the reference
 * interpreter (BatchNormalization with batch statistics), along random directions.
 * ResNet-18 at opset 13 has an overlapping 3x3/2 MaxPool (gradient without ScatterElements
 * reduction); MobileNetV2 at opset 17 has ReLU6 (Clip) and a batch fixed at 1 by the exporter.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { writeNpy } from './helpers/npy.js';
import { loadModel } from '../src/graph/io.js';
import { tensorToFloat32, tensorDims } from '../src/graph/tensor.js';
import { evaluate, f64, type RefTensor } from '../src/reference/interpreter.js';
import { Random } from '../src/random.js';

const B = 2;

for (const fixture of ['resnet18-bn-op13', 'mobilenetv2-bn-op17']) {
  test(`one SGD step on exported ${fixture} equals W - dL/dW (float64 finite differences, 1e-4)`, { timeout: 300_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'rp-exp-'));
    const data = join(dir, 'data');
    mkdirSync(data);
    const rng = new Random(3);
    const shape = [B, 3, 64, 64];
    const images = Float32Array.from({ length: B * 3 * 64 * 64 }, () => rng.uniform());
    const labels = BigInt64Array.from({ length: B }, () => BigInt(rng.int(10)));
    writeNpy(join(data, 'x_train.npy'), '<f4', shape, images);
    writeNpy(join(data, 'y_train.npy'), '<i8', [B], labels);
    const before = join('test', 'fixtures', `${fixture}.onnx`);
    const after = join(dir, 'trained.onnx');
    const r = runCli(['train', before, '--data', data, '--steps', '1', '--lr', '1', '--optimizer', 'sgd', '--momentum', '0', '--weight-decay', '0',
      '--no-shuffle', '--batch', String(B), '--schedule', 'constant', '-o', after]);
    assert.equal(r.status, 0, r.stderr);
    const m0 = loadModel(before);
    const m1 = loadModel(after);
    const ref = m0.clone();
    for (const n of ref.graph.nodes) if (n.opType === 'BatchNormalization') n.setAttr('training_mode', 1);
    const g = ref.graph;
    const input = g.realInputs()[0]!.name;
    const stats = new Set(g.nodes.filter((n) => n.opType === 'BatchNormalization').flatMap((n) => n.inputs.slice(3, 5)));
    const trainable = [...m0.graph.initializers.keys()].filter((k) => {
      const t = m0.graph.initializers.get(k)!;
      return !stats.has(k) && t.dataType === 1 && tensorDims(t).length > 0;
    });
    const w0 = new Map(trainable.map((k) => [k, Float64Array.from(tensorToFloat32(m0.graph.initializers.get(k)!))]));
    const taken = new Map(trainable.map((k) => {
      const a = tensorToFloat32(m0.graph.initializers.get(k)!);
      const b = tensorToFloat32(m1.graph.initializers.get(k)!);
      return [k, Float64Array.from(a, (v, i) => v - b[i]!)];
    }));
    const x = f64(shape, Float64Array.from(images));
    const loss = (params: Map<string, Float64Array>) => {
      const overrides: Record<string, RefTensor> = {};
      for (const [name, d] of params) overrides[name] = f64(tensorDims(g.initializers.get(name)!), d);
      // The interpreter follows the data, not the declared batch of 1 (BatchNorm needs the whole batch).
      const out = evaluate(g, { [input]: x }, { opset: ref.opset(), initializerOverrides: overrides });
      const logits = out[g.outputs[0]!.name]!.data as Float64Array;
      const k = logits.length / B;
      let s = 0;
      for (let i = 0; i < B; i++) {
        const row = logits.subarray(i * k, (i + 1) * k);
        const max = Math.max(...row);
        s += Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0)) + max - row[Number(labels[i])]!;
      }
      return s / B;
    };
    const conv = trainable.find((k) => m0.graph.initializers.get(k)!.dims.length === 4)!;
    for (const pick of [null, conv, trainable.at(-1)!]) {
      const names = pick === null ? trainable : [pick];
      const dirv = new Map(names.map((n) => [n, Float64Array.from(w0.get(n)!, () => rng.normal())]));
      let norm = 0;
      for (const v of dirv.values()) for (const e of v) norm += e * e;
      norm = Math.sqrt(norm);
      const h = 1e-6;
      const shifted = (sign: number) => new Map([...w0].map(([k, w]) => {
        const d = dirv.get(k);
        return [k, d ? Float64Array.from(w, (e, i) => e + (sign * h * d[i]!) / norm) : w];
      }));
      const fd = (loss(shifted(1)) - loss(shifted(-1))) / (2 * h);
      let step = 0;
      for (const [k, d] of dirv) {
        const s = taken.get(k)!;
        for (let i = 0; i < d.length; i++) step += (s[i]! * d[i]!) / norm;
      }
      const rel = Math.abs(fd - step) / Math.max(1e-6, Math.abs(fd));
      assert.ok(rel < 1e-4 || Math.abs(fd - step) < 1e-7, `${fixture} direction ${pick ?? 'all'}: finite difference ${fd} vs step ${step} (rel ${rel})`);
    }
  });
}
