/**
 * A setting where membership is known to leak: random Gaussian inputs in D = 64 dimensions with
 * random labels, learnt by a logistic regression (Flatten, MatMul, Add) that can only fit them by
 * memorising each one (more dimensions than training examples). Trained by the library's `fit`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Graph, Model, makeTensorTypeProto } from '../../src/graph/ir.js';
import { GraphBuilder } from '../../src/graph/builder.js';
import { onnx } from '../../src/graph/onnx.js';
import { makeDataset, type Dataset } from '../../src/data/index.js';
import { Random } from '../../src/random.js';

export const D = 64;
export const K = 4;

export function gaussianData(n: number, rng: Random, name = 'gauss'): Dataset {
  const images = new Float32Array(n * D);
  for (let i = 0; i < images.length; i++) images[i] = rng.normal();
  const labels = Int32Array.from({ length: n }, () => rng.int(K));
  return makeDataset({ images, labels, count: n, shape: [1, 1, D], classes: K, name, source: 'synthetic' });
}

/** Logistic regression with zero initial weights (deterministic, no init randomness). */
export function logisticModel(w = new Float32Array(D * K)): Model {
  const g = new Graph({ name: 'logreg' });
  g.inputs.push({ name: 'input', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', 1, 1, D] }) });
  const b = new GraphBuilder(g);
  const flat = b.op1('Flatten', ['input'], { axis: 1 });
  const W = b.initializer('W', [D, K], w);
  const bias = b.initializer('b', [K], new Float32Array(K));
  b.op1('Add', [b.op1('MatMul', [flat, W]), bias]);
  g.nodes[g.nodes.length - 1]!.outputs[0] = 'logits';
  g.invalidate();
  g.outputs.push({ name: 'logits', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', K] }) });
  const proto = onnx.ModelProto.create({ irVersion: 8, opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 17 })] });
  return new Model(proto, g);
}

/** The recipe every test trains with: full-batch-ish SGD long enough to memorise. */
export const RECIPE = { epochs: 40, batchSize: 16, lr: 0.05, optimizer: 'sgd', momentum: 0.9, weightDecay: 0, schedule: 'constant', batchNorm: 'train', shuffle: true } as const;

/** A .npy file (format 1.0) of little-endian float32 or int64 values. */
export function writeNpy(path: string, dtype: '<f4' | '<i8', shape: number[], data: Float32Array | BigInt64Array): void {
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + header.length + 1) % 64 !== 0) header += ' ';
  header += '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  writeFileSync(path, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

/** Writes train and test splits as x_<split>.npy / y_<split>.npy ([N, D] features). */
export function writeDataDir(dir: string, train: Dataset, test: Dataset): void {
  mkdirSync(dir, { recursive: true });
  for (const [split, ds] of [['train', train], ['test', test]] as const) {
    writeNpy(join(dir, `x_${split}.npy`), '<f4', [ds.count, D], ds.images);
    writeNpy(join(dir, `y_${split}.npy`), '<i8', [ds.count], BigInt64Array.from(ds.labels, (v) => BigInt(v)));
  }
}
