/**
 * Turns initializers into graph inputs (same name, type and shape), so one onnxruntime session
 * can run with parameter values that change between runs (training, evaluation of the
 * current weights) without rebuilding the session.
 */
import { Model, makeTensorTypeProto, type Graph } from '../graph/ir.js';
import { dtypeName, tensorDims } from '../graph/tensor.js';

/** A copy of `model` whose initializers `names` are graph inputs. */
export function paramsAsInputs(model: Model, names: readonly string[]): Model {
  const m = model.clone();
  initializersAsInputs(m.graph, names);
  return m;
}

/** Turns the initializers `names` of `g` into inputs, in place, appended in that order; others are skipped. */
export function initializersAsInputs(g: Graph, names: Iterable<string>): void {
  for (const name of names) {
    const t = g.initializers.get(name);
    if (!t) continue;
    g.initializers.delete(name);
    g.inputs = g.inputs.filter((i) => i.name !== name);
    g.inputs.push({ name, type: makeTensorTypeProto({ dtype: dtypeName(t.dataType), shape: tensorDims(t) }) });
  }
}
