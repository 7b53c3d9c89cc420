/**
 * One ONNX model that averages the logits of several models with the same input: the members'
 * graphs side by side (names prefixed m0/, m1/, ...) and a Mean of their outputs. Used to audit
 * an ensemble (the paper's En5ResNet8) exactly as it is deployed, with each member's noise
 * independent (every RandomNormalLike gets its own seed when a session is created).
 */
import { Model, Graph, Node } from '../graph/ir.js';
import { RpOnnxError } from '../errors.js';

export function ensembleModel(models: readonly Model[]): Model {
  if (models.length === 0) throw new RpOnnxError('an ensemble needs at least one model');
  const out = models[0]!.clone();
  const g = new Graph({ name: 'ensemble' });
  const input = out.graph.realInputs()[0]!;
  g.inputs.push({ ...input });
  const outputs: string[] = [];
  models.forEach((m, k) => {
    const src = m.graph;
    const rename = (v: string) => (v === '' || v === input.name ? v : `m${k}/${v}`);
    for (const [name, t] of src.initializers) {
      const copy = { ...t, name: rename(name) } as typeof t;
      g.initializers.set(copy.name, Object.assign(Object.create(Object.getPrototypeOf(t)), copy));
    }
    for (const n of src.nodes) {
      g.nodes.push(new Node({ opType: n.opType, domain: n.domain, name: `m${k}/${n.name}`, inputs: n.inputs.map(rename), outputs: n.outputs.map(rename), attributes: n.attributes }));
    }
    outputs.push(rename(src.outputs[0]!.name));
  });
  const mean = g.uniqueName('ensemble_logits');
  g.nodes.push(new Node({ opType: 'Mean', name: 'ensemble/mean', inputs: outputs, outputs: [mean] }));
  g.outputs.push({ name: mean, type: null });
  out.graph = g;
  return out;
}
