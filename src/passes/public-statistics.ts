/**
 * Normalization with public-batch statistics (Davody et al.): a copy of the model whose every
 * BatchNormalization normalizes with the mean and (biased) variance of its input over the
 * current batch, and exposes them as outputs. Run on a small public batch (disjoint from the
 * private data), it gives the statistics the private step then uses as fixed inputs, so no
 * private example's normalization depends on another private example, at no privacy cost.
 * Parameters are inputs, so the current weights are fed each step.
 */
import { Model, type Node } from '../graph/ir.js';
import { GraphBuilder, reduceMeanArgs } from '../graph/builder.js';
import { inferShapes } from '../graph/shape-inference.js';
import { RpOnnxError } from '../errors.js';
import { paramsAsInputs } from './params-as-inputs.js';
import { makeBatchDynamic } from './dynamic-batch.js';
import { applyRewrite, type Rewrite } from './rewrite.js';

export interface PublicStatisticsModel {
  model: Model;
  /** Running-statistic initializer name -> the output holding its public-batch value. */
  outputs: Map<string, string>;
}

export function publicStatisticsModel(model: Model, params: readonly string[]): PublicStatisticsModel {
  // Exporters fix the batch at the traced size (often 1): the public batch is larger. Before the
  // parameters become inputs, so only the data input's first axis turns symbolic.
  const dynamic = model.clone();
  makeBatchDynamic(dynamic.graph);
  const m = paramsAsInputs(dynamic, params);
  const g = m.graph;
  const opset = m.opset() || 17;
  const types = inferShapes(g, { opset });
  const b = new GraphBuilder(g, 'public_stats/');
  const outputs = new Map<string, string>();
  const rewrite: Rewrite<Node, void> = {
    name: 'batchnorm-public-statistics',
    pattern: (graph) => graph.nodes.filter((n) => n.opType === 'BatchNormalization' && n.isStandard),
    condition: (_graph, bn) => (types.get(bn.inputs[0]!)?.shape?.length ? true : `the rank of its input '${bn.inputs[0]}' is unknown`),
    replacement: (_graph, bn) => {
      const [x, , , meanName, varName] = bn.inputs as [string, string, string, string, string];
      const rank = types.get(x)!.shape!.length;
      const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
      const reduce = (v: string, keep: 0 | 1) => {
        const { inputs, attrs } = reduceMeanArgs(opset, v, axes, () => b.int64s('axes', axes));
        return b.op1('ReduceMean', inputs, { ...attrs, keepdims: keep });
      };
      const meanKeep = reduce(x, 1);
      const centered = b.op1('Sub', [x, meanKeep]);
      const variance = reduce(b.op1('Mul', [centered, centered]), 0);
      const mean = b.op1('Reshape', [meanKeep, b.int64s('shape', [-1])]);
      bn.inputs = [bn.inputs[0]!, bn.inputs[1]!, bn.inputs[2]!, mean, variance];
      bn.removeAttr('training_mode');
      bn.outputs = [bn.outputs[0]!];
      outputs.set(meanName, mean);
      outputs.set(varName, variance);
    },
  };
  const { skipped } = applyRewrite(g, rewrite);
  if (skipped.length > 0) throw new RpOnnxError(`BatchNormalization node '${skipped[0]!.match.name}': ${skipped[0]!.reason}, so public-batch statistics cannot be computed for it`);
  g.toposort();
  g.outputs = [...outputs.values()].map((name) => ({ name, type: null }));
  g.removeDeadCode();
  return { model: m, outputs };
}
