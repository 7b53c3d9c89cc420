/** A one-graph model for micro-benchmarks: float32 inputs, one output built by `build`. */
import { Graph, Model, makeTensorTypeProto } from '../src/graph/ir.js';
import { GraphBuilder } from '../src/graph/builder.js';
import { onnx } from '../src/graph/onnx.js';

export function benchModel(inputs: [string, number[]][], build: (b: GraphBuilder) => string): Model {
  const g = new Graph({ name: 'bench' });
  g.inputs = inputs.map(([name, dims]) => ({ name, type: makeTensorTypeProto({ dtype: 'float32', shape: dims }) }));
  const out = build(new GraphBuilder(g));
  g.outputs = [{ name: out, type: null }];
  return new Model(onnx.ModelProto.create({ irVersion: 9, opsetImport: [{ domain: '', version: 17 }] }), g);
}
