/**
 * BatchNormalization and DP-SGD (Davody et al.): batch statistics mix the examples of a batch,
 * so one example's gradient depends on the others and per-example clipping no longer bounds its
 * influence. The fixes a user can choose for DP training:
 * - 'freeze': BatchNorm uses its running statistics (a fixed per-channel affine map); its scale
 *   and shift still train.
 * - 'group': every BatchNormalization becomes a GroupNorm (per-example statistics), with the BN's
 *   scale and shift as the GroupNorm's affine parameters; this pass.
 * - 'public-batch': normalize with statistics of a small public batch, disjoint from the private
 *   data (costs no privacy); see public-statistics.ts and src/train/dp/dp-sgd.ts (PublicStatistics).
 * PyTorch's exporter deduplicates equal initializers: a fresh model's BatchNorm scales (all ones)
 * and shifts (all zeros) then reach every BN but the first through Identity nodes of one shared
 * initializer. The GroupNorm replacement follows Identity (and Constant) to the values and gives
 * each GroupNorm parameters of its own, as the PyTorch module had.
 */
import { Model, type Graph, type Node } from '../graph/ir.js';
import { GraphBuilder } from '../graph/builder.js';
import { tensorToFloat32, tensorDims } from '../graph/tensor.js';
import type { TensorProto } from '../graph/onnx.js';
import { inferShapes } from '../graph/shape-inference.js';
import { RpOnnxError } from '../errors.js';
import { emitGroupNorm, groupNormConstants, type GroupNormConstants } from './group-norm.js';
import { applyRewrite, type Rewrite } from './rewrite.js';

export type NormFix = 'freeze' | 'group' | 'public-batch';
export const NORM_FIXES: readonly NormFix[] = ['freeze', 'group', 'public-batch'];

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

interface BatchNormMatch {
  node: Node;
  x: string;
  scale: string;
  shift: string;
}

interface GroupNormPlan {
  rank: number;
  scale: TensorProto;
  shift: TensorProto;
}

/**
 * BatchNormalization -> GroupNorm as a rewrite value: the pattern is every standard
 * BatchNormalization, the condition says why one cannot be replaced (training form, unknown
 * rank, scale or shift computed in the graph), the replacement emits GroupNorm with parameters
 * of its own and reroutes the BN's consumers.
 */
function groupNormRewrite(g: Graph, types: Map<string, { shape?: unknown[] | null } | undefined>, b: GraphBuilder, opset: number, groupsWanted: number): Rewrite<BatchNormMatch, string> {
  const constants = new Map<number, GroupNormConstants>();
  const plan = (m: BatchNormMatch): GroupNormPlan | string => {
    if (m.node.outputs.filter(Boolean).length > 1) return 'it is in training form (several outputs); export the model in eval mode';
    const rank = types.get(m.x)?.shape?.length ?? g.typeOf(m.x)?.shape?.length;
    if (!rank) return `the rank of its input '${m.x}' is unknown (shape inference could not reach it)`;
    const scale = constantTensor(g, m.scale);
    const shift = constantTensor(g, m.shift);
    if (!scale || !shift) return `its scale '${m.scale}' or shift '${m.shift}' is computed in the graph, not a constant`;
    return { rank, scale, shift };
  };
  return {
    name: 'batchnorm-to-groupnorm',
    pattern: (graph) => graph.nodes.filter((n) => n.opType === 'BatchNormalization' && n.isStandard)
      .map((node) => ({ node, x: node.inputs[0]!, scale: node.inputs[1]!, shift: node.inputs[2]! })),
    condition: (_graph, m) => {
      const p = plan(m);
      return typeof p === 'string' ? p : true;
    },
    replacement: (graph, m) => {
      const { rank, scale, shift } = plan(m) as GroupNormPlan;
      const channels = tensorDims(scale)[0]!;
      const groups = gcd(channels, groupsWanted);
      let c = constants.get(groups);
      if (!c) {
        c = groupNormConstants(b, groups, opset, `groupnorm${groups}`);
        constants.set(groups, c);
      }
      const dims = [channels, ...new Array<number>(rank - 2).fill(1)];
      // Named after the BN's scale input ('layer1.0.bn1.weight' -> 'layer1.0.bn1.gn.weight'),
      // which stays distinct where the exporter shares the values behind Identity nodes.
      const base = m.scale.replace(/\.weight$/, '') || m.node.name;
      const w = b.initializer(`${base}.gn.weight`, dims, Float32Array.from(tensorToFloat32(scale)));
      const beta = b.initializer(`${base}.gn.bias`, dims, Float32Array.from(tensorToFloat32(shift)));
      // The node's current input: an earlier replacement may have rerouted it (BN after BN).
      const out = emitGroupNorm(b, c, `${m.node.name || m.node.outputs[0]}.gn`, m.node.inputs[0]!, w, beta);
      graph.replaceAllUses(m.node.outputs[0]!, out);
      graph.removeNode(m.node);
      return out;
    },
  };
}

/** Replaces every BatchNormalization by GroupNorm with `groups` groups (gcd with the channels). */
export function batchNormToGroupNorm(model: Model, opts: { groups?: number } = {}): { model: Model; replaced: number } {
  const m = model.clone();
  const g = m.graph;
  if (!g.nodes.some((n) => n.opType === 'BatchNormalization' && n.isStandard)) return { model: m, replaced: 0 };
  const rewrite = groupNormRewrite(g, inferShapes(g, { opset: m.opset() }), new GraphBuilder(g), m.opset(), opts.groups ?? 8);
  // Every BN or none: DP training needs all of them gone, so the first refusal is the error.
  for (const match of rewrite.pattern(g)) {
    const ok = rewrite.condition(g, match);
    if (ok !== true) throw new RpOnnxError(`BatchNormalization node '${match.node.name}' cannot be replaced by GroupNorm: ${ok}`);
  }
  const { applied } = applyRewrite(g, rewrite);
  g.toposort();
  g.removeDeadCode();
  return { model: m, replaced: applied.length };
}

/** The constant value of `name`: an initializer, or a Constant node's value, through Identity nodes. */
function constantTensor(g: Graph, name: string): TensorProto | undefined {
  for (let hops = 0; hops < 64; hops++) {
    const t = g.initializers.get(name);
    if (t) return t;
    const p = g.producer(name);
    if (!p || !p.isStandard) return undefined;
    if (p.opType === 'Identity' && p.inputs[0]) name = p.inputs[0];
    else if (p.opType === 'Constant') return p.getTensor('value');
    else return undefined;
  }
  return undefined;
}

/** Names of the BatchNormalization running statistics of a model (mean, var pairs). */
export function batchNormStatistics(model: Model): { mean: string; variance: string; node: string }[] {
  return model.graph.nodes
    .filter((n) => n.opType === 'BatchNormalization' && n.isStandard)
    .map((n) => ({ mean: n.inputs[3]!, variance: n.inputs[4]!, node: n.name }));
}

