/** A one-graph model for micro-benchmarks: float32 inputs, one output built by `build`. */
import { Graph, Model, makeTensorTypeProto } from '../src/graph/ir.js';
import { GraphBuilder } from '../src/graph/builder.js';
import { onnx } from '../src/graph/onnx.js';
import * as ort from 'onnxruntime-node';
import { tensorToFloat32 } from '../src/graph/tensor.js';
import { Random } from '../src/random.js';
import type { TrainingGraph } from '../src/passes/autodiff/training-graph.js';

export function benchModel(inputs: [string, number[]][], build: (b: GraphBuilder) => string): Model {
  const g = new Graph({ name: 'bench' });
  g.inputs = inputs.map(([name, dims]) => ({ name, type: makeTensorTypeProto({ dtype: 'float32', shape: dims }) }));
  const out = build(new GraphBuilder(g));
  g.outputs = [{ name: out, type: null }];
  return new Model(onnx.ModelProto.create({ irVersion: 9, opsetImport: [{ domain: '', version: 17 }] }), g);
}

/**
 * Feeds for one run of a training graph built from `model`: N normal images of `example` shape
 * (seeded), labels i mod 10, the model's parameters and BatchNorm running statistics.
 */
export function trainingFeeds(model: Model, tg: TrainingGraph, n: number, example: number[]): Record<string, ort.Tensor> {
  const rng = new Random(1);
  const x = new Float32Array(n * example.reduce((a, b) => a * b, 1));
  rng.fillNormal(x);
  const feeds: Record<string, ort.Tensor> = {
    [tg.inputs.data[0]!]: new ort.Tensor('float32', x, [n, ...example]),
    [tg.inputs.labels]: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 10)), [n]),
  };
  for (const p of tg.params) feeds[p.name] = new ort.Tensor('float32', tensorToFloat32(model.graph.initializers.get(p.name)!), p.shape);
  for (const st of tg.outputs.bnStats ?? []) {
    const t = model.graph.initializers.get(st.running)!;
    feeds[st.running] = new ort.Tensor('float32', tensorToFloat32(t), t.dims.map(Number));
  }
  return feeds;
}
