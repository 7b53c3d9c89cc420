/**
 * Undoes residual perturbation: removes exactly the nodes and initializers the perturb pass
 * inserted (as listed in the 'rp-onnx.perturbation' metadata), gives each residual Add its
 * original output name back, and removes the metadata. Nothing else in the graph is touched, so
 * the result computes what the model computed before it was perturbed.
 */
import type { Model } from '../graph/ir.js';
import { RpOnnxError } from '../errors.js';
import { PERTURBATION_KEY, SEED_KEY, VERSION_KEY, readPerturbation, type PerturbedBlock } from './perturb.js';

export interface StripResult {
  model: Model;
  /** The blocks whose noise was removed. */
  blocks: PerturbedBlock[];
  removedNodes: number;
}

export function stripPerturbation(model: Model): StripResult {
  const record = readPerturbation(model);
  if (!record) {
    throw new RpOnnxError(`the model carries no '${PERTURBATION_KEY}' metadata: it was not perturbed by rp-onnx, nothing to strip`);
  }
  const out = model.clone();
  const graph = out.graph;
  let removed = 0;
  // Last perturbation first: with --force layers, a later layer wraps an earlier one's output.
  for (const b of [...record.blocks].reverse()) {
    const edited = `the model was edited after perturbation (block '${b.add}')`;
    const names = new Set(b.nodes);
    const nodes = graph.nodes.filter((n) => names.has(n.name));
    if (nodes.length !== names.size) throw new RpOnnxError(`${edited}: inserted node(s) missing; re-run perturb on the original model instead`);
    const add = graph.producer(b.sum);
    if (!add || names.has(add.name)) throw new RpOnnxError(`${edited}: no residual Add writes '${b.sum}'`);
    const outside = graph.consumers(b.sum).filter((n) => !names.has(n.name));
    if (outside.length > 0 || graph.isGraphOutput(b.sum)) throw new RpOnnxError(`${edited}: '${b.sum}' is read outside the inserted nodes`);
    for (const n of nodes) graph.removeNode(n);
    removed += nodes.length;
    for (const i of b.initializers) graph.initializers.delete(i);
    add.outputs = add.outputs.map((o) => (o === b.sum ? b.output : o));
    graph.invalidate();
  }
  out.deleteMetadata(PERTURBATION_KEY);
  out.deleteMetadata(SEED_KEY);
  if (record.previousVersion === null) out.deleteMetadata(VERSION_KEY);
  else out.setMetadata(VERSION_KEY, record.previousVersion);
  return { model: out, blocks: record.blocks, removedNodes: removed };
}
