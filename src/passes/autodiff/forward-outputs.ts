/**
 * The pre-pass of differentiation: some gradient rules read optional outputs of their forward
 * node (MaxPool's Indices, LayerNormalization's Mean and InvStdDev, Dropout's mask in training
 * mode), which the node computes anyway but the model did not ask for. This rewrite names them
 * on the forward nodes before the backward walk, so the rules only emit gradient nodes and the
 * forward graph is edited in one place. A rule declares what it reads with the `forwardOutputs`
 * trait (./registry.ts).
 */
import type { Graph, Node } from '../../graph/ir.js';
import type { Rewrite } from '../rewrite.js';
import { gradientTraits, type ForwardOutput } from './registry.js';
import type { GradContext } from './rule.js';

/**
 * The rewrite for one differentiation: `active` are the values that depend on the parameters,
 * `toLoss` the values some seed depends on (the node's rule runs only when both hold).
 */
export function forwardOutputsRewrite(active: ReadonlySet<string>, toLoss: ReadonlySet<string>, opset: number): Rewrite<Node, string[]> {
  const wanted = (graph: Graph, node: Node): ForwardOutput[] | string => {
    const declare = node.isStandard ? gradientTraits(node.opType).forwardOutputs : undefined;
    if (!declare) return 'its rule reads no optional output';
    if (!node.inputs.some((v) => v && active.has(v))) return 'no input is differentiated';
    if (!node.outputs.some((v) => v && toLoss.has(v))) return 'its outputs do not reach the loss';
    const outputs = declare(node, graph, opset);
    if (typeof outputs === 'string') return outputs;
    const missing = outputs.filter((o) => !node.outputs[o.index]);
    return missing.length > 0 ? missing : 'it exposes them already';
  };
  return {
    name: 'name-forward-outputs',
    pattern: (graph) => graph.nodes.filter((n) => n.isStandard && gradientTraits(n.opType).forwardOutputs !== undefined),
    condition: (graph, node) => {
      const w = wanted(graph, node);
      return typeof w === 'string' ? w : true;
    },
    replacement: (graph, node) => (wanted(graph, node) as ForwardOutput[]).map(({ index, name }) => {
      while (node.outputs.length < index) node.outputs.push('');
      node.outputs[index] = graph.uniqueName(name);
      return node.outputs[index]!;
    }),
  };
}

/** Values that some seed depends on, through the forward nodes (in topological order). */
export function valuesReachingSeeds(nodes: readonly Node[], seeds: Iterable<string>): Set<string> {
  const reach = new Set<string>(seeds);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    if (n.outputs.some((o) => o && reach.has(o))) for (const i of n.inputs) if (i) reach.add(i);
  }
  return reach;
}

/** In a rule: the optional output `index` of the forward node, named by this pre-pass. */
export function forwardOutput(ctx: GradContext, index: number): string {
  const v = ctx.node.outputs[index];
  if (!v) throw new Error(`internal: output ${index} of ${ctx.node.opType} node '${ctx.node.name}' was not named before differentiation (forward-outputs pre-pass)`);
  return v;
}
