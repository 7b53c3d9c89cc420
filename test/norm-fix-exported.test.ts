/**
 * Both DP norm fixes on BatchNorm ResNets exported from PyTorch (test/fixtures): ResNet-18
 * (opset 13, BN scales shared through Identity by the exporter's deduplication), a
 * pre-activation ResNet-18 (opset 17) and a CIFAR ResNet-20 with option-A shortcuts (opset 13),
 * each with the exporter's fixed batch 1 and with a symbolic batch. `train --dp --norm-fix group`
 * and `--norm-fix public-batch` must train a few steps and export a model onnxruntime runs.
 * Reference for public-batch: with the public set equal to one public batch, the exported model
 * (inference mode) on the public batch must equal the float64 reference interpreter running the
 * same trained weights with BatchNorm in training mode (batch statistics) on that batch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { runCli } from './helpers/cli.js';
import { writeNpy } from './helpers/npy.js';
import { loadModel, saveModel } from '../src/graph/io.js';
import { makeBatchDynamic } from '../src/passes/dynamic-batch.js';
import { evaluate, f64 } from '../src/reference/interpreter.js';
import { Random } from '../src/random.js';

const dir = mkdtempSync(join(tmpdir(), 'rp-normfix-'));

function dataDir(name: string, n: number, size: number, seed: number): { path: string; images: Float32Array } {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  const rng = new Random(seed);
  const images = Float32Array.from({ length: n * 3 * size * size }, () => rng.uniform());
  writeNpy(join(path, 'x_train.npy'), '<f4', [n, 3, size, size], images);
  writeNpy(join(path, 'y_train.npy'), '<i8', [n], BigInt64Array.from({ length: n }, () => BigInt(rng.int(10))));
  return { path, images };
}

async function runOrt(path: string, images: Float32Array, shape: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 });
  const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', images, shape) });
  const y = out[s.outputNames[0]!]!.data as Float32Array;
  await s.release();
  return y;
}

const FIXTURES: [string, number][] = [['resnet18-bn-op13', 64], ['preact-resnet18-bn-op17', 32], ['cifar-resnet20-optA-pad-op13', 32]];

for (const [fixture, size] of FIXTURES) {
  for (const batch of ['fixed', 'symbolic'] as const) {
    test(`norm fixes on exported ${fixture} (${batch} batch): group and public-batch train, export, run`, { timeout: 600_000 }, async () => {
      let model = join('test', 'fixtures', `${fixture}.onnx`);
      if (batch === 'symbolic') {
        const m = loadModel(model);
        makeBatchDynamic(m.graph);
        model = join(dir, `${fixture}.symbolic.onnx`);
        saveModel(m, model);
      }
      const priv = dataDir(`priv-${size}`, 16, size, 1);
      // Public set of exactly one expected batch (q N = 4): the final public batch is all of it.
      const pub = dataDir(`pub-${size}`, 4, size, 2);
      const common = ['--data', priv.path, '--dp', '--noise-multiplier', '1', '--steps', '2', '--batch', '4', '--threads', '1', '--lr', '0.01', '--json'];
      const bnCount = loadModel(model).graph.nodes.filter((n) => n.opType === 'BatchNormalization').length;

      const g = join(dir, `${fixture}.${batch}.group.onnx`);
      const rg = runCli(['train', model, ...common, '--norm-fix', 'group', '-o', g], { timeoutMs: 300_000 });
      assert.equal(rg.status, 0, rg.stderr);
      const gm = loadModel(g);
      assert.equal(gm.graph.nodes.filter((n) => n.opType === 'BatchNormalization').length, 0);
      // Every BatchNorm became a GroupNorm with parameters of its own (not the exporter's shared ones).
      assert.equal([...gm.graph.initializers.keys()].filter((k) => k.endsWith('.gn.weight')).length, bnCount);
      const yg = await runOrt(g, priv.images.slice(0, 3 * size * size), [1, 3, size, size]);
      assert.equal(yg.length, 10);
      assert.ok(yg.every(Number.isFinite));

      const p = join(dir, `${fixture}.${batch}.public.onnx`);
      const rp = runCli(['train', model, ...common, '--norm-fix', 'public-batch', '--public-data', pub.path, '-o', p], { timeoutMs: 300_000 });
      assert.equal(rp.status, 0, rp.stderr);
      const yp1 = await runOrt(p, priv.images.slice(0, 3 * size * size), [1, 3, size, size]);
      assert.ok(yp1.length === 10 && yp1.every(Number.isFinite));
      const meta = JSON.parse(loadModel(p).getMetadata('rp-onnx.privacy')!) as { publicData: { digest: string }; normFix: string };
      assert.equal(meta.normFix, 'public-batch');
      assert.match(meta.publicData.digest, /^sha256:/);
      if (batch === 'fixed') {
        // Exported statistics = the public batch's: inference on it equals training-mode BN on it.
        const trained = loadModel(p);
        const dyn = trained.clone();
        makeBatchDynamic(dyn.graph);
        const dynPath = join(dir, `${fixture}.public.dyn.onnx`);
        saveModel(dyn, dynPath);
        const y = await runOrt(dynPath, pub.images, [4, 3, size, size]);
        const ref = trained.clone();
        for (const n of ref.graph.nodes) if (n.opType === 'BatchNormalization') n.setAttr('training_mode', 1);
        const input = ref.graph.realInputs()[0]!.name;
        const out = evaluate(ref.graph, { [input]: f64([4, 3, size, size], Float64Array.from(pub.images)) }, { opset: ref.opset() });
        const r = out[ref.graph.outputs[0]!.name]!.data as Float64Array;
        const scale = r.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        for (let i = 0; i < r.length; i++) assert.ok(Math.abs(y[i]! - r[i]!) <= 1e-3 * scale + 1e-5, `logit ${i}: ${y[i]} vs ${r[i]}`);
      }
      // The private data is refused as public data.
      const ro = runCli(['train', model, ...common, '--norm-fix', 'public-batch', '--public-data', priv.path, '-o', join(dir, 'never.onnx')], { timeoutMs: 300_000 });
      assert.notEqual(ro.status, 0);
      assert.match(ro.stderr, /^error: public data .* shares 16 of its 16 examples with the private training data/);
    });
  }
}
