/**
 * A setting where membership is known to leak: random Gaussian inputs in D = 64 dimensions with
 * random labels, learnt by a logistic regression (Flatten, MatMul, Add) that can only fit them by
 * memorising each one (more dimensions than training examples). Trained by the library's `fit`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Graph, Model, makeTensorTypeProto } from '../../src/graph/ir.js';
import { GraphBuilder, float } from '../../src/graph/builder.js';
import { onnx } from '../../src/graph/onnx.js';
import { makeDataset, type Dataset } from '../../src/data/index.js';
import { Random } from '../../src/random.js';
import { writeNpy } from './npy.js';

export const D = 64;
export const K = 4;

/** `dims` features (default D) drawn N(0, 1) / divisor, labels uniform over K classes. */
export function gaussianData(n: number, rng: Random, name = 'gauss', o: { dims?: number; divisor?: number } = {}): Dataset {
  const dims = o.dims ?? D;
  const divisor = o.divisor ?? 1;
  const images = new Float32Array(n * dims);
  for (let i = 0; i < images.length; i++) images[i] = rng.normal() / divisor;
  const labels = Int32Array.from({ length: n }, () => rng.int(K));
  return makeDataset({ images, labels, count: n, shape: [1, 1, dims], classes: K, name, source: 'synthetic' });
}

/**
 * Logistic regression over `dims` features (default D) with weights w (default zero: no init
 * randomness); with noiseStd > 0 the deployed logits get Gaussian noise (RandomNormalLike).
 */
export function logisticModel(w?: Float32Array, o: { dims?: number; noiseStd?: number } = {}): Model {
  const dims = o.dims ?? D;
  const g = new Graph({ name: 'logreg' });
  g.inputs.push({ name: 'input', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', 1, 1, dims] }) });
  const b = new GraphBuilder(g);
  const flat = b.op1('Flatten', ['input'], { axis: 1 });
  const W = b.initializer('W', [dims, K], w ?? new Float32Array(dims * K));
  const bias = b.initializer('b', [K], new Float32Array(K));
  const logits = b.op1('Add', [b.op1('MatMul', [flat, W]), bias]);
  if (o.noiseStd) b.op1('Add', [logits, b.op1('RandomNormalLike', [logits], { mean: float(0), scale: float(o.noiseStd) })]);
  g.nodes[g.nodes.length - 1]!.outputs[0] = 'logits';
  g.outputs.push({ name: 'logits', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', K] }) });
  const proto = onnx.ModelProto.create({ irVersion: 8, opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 17 })] });
  return new Model(proto, g);
}

/** The recipe every test trains with: full-batch-ish SGD long enough to memorise. */
export const RECIPE = { epochs: 40, batchSize: 16, lr: 0.05, optimizer: 'sgd', momentum: 0.9, weightDecay: 0, schedule: 'constant', batchNorm: 'train', shuffle: true } as const;

/** Writes train and test splits as x_<split>.npy / y_<split>.npy ([N, D] features). */
export function writeDataDir(dir: string, train: Dataset, test: Dataset): void {
  mkdirSync(dir, { recursive: true });
  for (const [split, ds] of [['train', train], ['test', test]] as const) {
    writeNpy(join(dir, `x_${split}.npy`), '<f4', [ds.count, D], ds.images);
    writeNpy(join(dir, `y_${split}.npy`), '<i8', [ds.count], BigInt64Array.from(ds.labels, (v) => BigInt(v)));
  }
}
