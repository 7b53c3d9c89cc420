/**
 * Undoes residual perturbation: removes exactly the nodes and initializers the perturb pass
 * inserted (as listed in the 'rp-onnx.perturbation' metadata), gives each residual Add its
 * original output name back, and removes the metadata. Nothing else in the graph is touched, so
 * the result computes what the model computed before it was perturbed.
 */
import type { Model } from '../graph/ir.js';
import { RpOnnxError } from '../errors.js';
import { applyRewrite, type Rewrite } from './rewrite.js';
import { PERTURBATION_KEY, SEED_KEY, VERSION_KEY, readPerturbation, type PerturbedBlock } from './perturb.js';

export interface StripResult {
  model: Model;
  /** The blocks whose noise was removed. */
  blocks: PerturbedBlock[];
  removedNodes: number;
}

/**
 * The removal of one block's noise as a rewrite: the pattern lists the recorded blocks, last
 * perturbation first (with forced layers a later layer wraps an earlier one's output); the
 * condition checks that the graph still holds exactly what perturb inserted; the replacement
 * removes it and gives the residual Add its original output back.
 */
function removeNoise(blocks: readonly PerturbedBlock[]): Rewrite<PerturbedBlock, number> {
  return {
    name: 'strip-residual-noise',
    pattern: () => [...blocks].reverse(),
    condition(graph, b) {
      const edited = `the model was edited after perturbation (block '${b.add}')`;
      const names = new Set(b.nodes);
      if (graph.nodes.filter((n) => names.has(n.name)).length !== names.size) return `${edited}: inserted node(s) missing; re-run perturb on the original model instead`;
      const add = graph.producer(b.sum);
      if (!add || names.has(add.name)) return `${edited}: no residual Add writes '${b.sum}'`;
      if (graph.consumers(b.sum).some((n) => !names.has(n.name)) || graph.isGraphOutput(b.sum)) return `${edited}: '${b.sum}' is read outside the inserted nodes`;
      return true;
    },
    replacement(graph, b) {
      const names = new Set(b.nodes);
      const nodes = graph.nodes.filter((n) => names.has(n.name));
      const add = graph.producer(b.sum)!;
      for (const n of nodes) graph.removeNode(n);
      for (const i of b.initializers) graph.initializers.delete(i);
      add.outputs = add.outputs.map((o) => (o === b.sum ? b.output : o));
      return nodes.length;
    },
  };
}

export function stripPerturbation(model: Model): StripResult {
  const record = readPerturbation(model);
  if (!record) {
    throw new RpOnnxError(`the model carries no '${PERTURBATION_KEY}' metadata: it was not perturbed by rp-onnx, nothing to strip`);
  }
  const out = model.clone();
  // Conditions run just before each replacement, so each layer is checked as the previous left it.
  const outcome = applyRewrite(out.graph, removeNoise(record.blocks));
  const refused = outcome.skipped[0];
  if (refused) throw new RpOnnxError(refused.reason);
  out.deleteMetadata(PERTURBATION_KEY);
  out.deleteMetadata(SEED_KEY);
  if (record.previousVersion === null) out.deleteMetadata(VERSION_KEY);
  else out.setMetadata(VERSION_KEY, record.previousVersion);
  return { model: out, blocks: record.blocks, removedNodes: outcome.applied.reduce((n, a) => n + a.result, 0) };
}
