/**
 * Gives every data input a symbolic batch dimension 'N' and drops the recorded intermediate and
 * output shapes (exporters often fix the batch at the example size they traced with), so one
 * session runs any batch size: training steps, the last partial batch, evaluation.
 */
import type { Graph } from '../graph/ir.js';

export function makeBatchDynamic(g: Graph): string[] {
  const data = g.realInputs().map((v) => v.name);
  for (const name of data) {
    const t = g.typeOf(name);
    if (t?.shape && t.shape.length > 0) g.setType(name, { dtype: t.dtype, shape: ['N', ...t.shape.slice(1)] });
  }
  g.valueInfo.clear();
  for (const o of g.outputs) o.type = null;
  return data;
}
