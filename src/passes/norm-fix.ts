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
import { Model, type Graph } from '../graph/ir.js';
import { GraphBuilder } from '../graph/builder.js';
import { tensorToFloat32, tensorDims } from '../graph/tensor.js';
import type { TensorProto } from '../graph/onnx.js';
import { inferShapes } from '../graph/shape-inference.js';
import { RpOnnxError } from '../errors.js';
import { emitGroupNorm, groupNormConstants } from './group-norm.js';

export type NormFix = 'freeze' | 'group' | 'public-batch';
export const NORM_FIXES: readonly NormFix[] = ['freeze', 'group', 'public-batch'];

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Replaces every BatchNormalization by GroupNorm with `groups` groups (gcd with the channels). */
export function batchNormToGroupNorm(model: Model, opts: { groups?: number } = {}): { model: Model; replaced: number } {
  const m = model.clone();
  const g = m.graph;
  const types = inferShapes(g, { opset: m.opset() });
  const bns = g.nodes.filter((n) => n.opType === 'BatchNormalization' && n.isStandard);
  if (bns.length === 0) return { model: m, replaced: 0 };
  const b = new GraphBuilder(g);
  const constants = new Map<number, ReturnType<typeof groupNormConstants>>();
  for (const bn of bns) {
    const [x, scale, bias] = bn.inputs as [string, string, string];
    if (bn.outputs.filter(Boolean).length > 1) throw new RpOnnxError(`BatchNormalization node '${bn.name}' is in training form (several outputs); export the model in eval mode`);
    const rank = types.get(x)?.shape?.length ?? g.typeOf(x)?.shape?.length;
    const s = constantTensor(g, scale);
    const sh = constantTensor(g, bias);
    if (!rank) throw new RpOnnxError(`BatchNormalization node '${bn.name}': the rank of its input '${x}' is unknown (shape inference could not reach it), so it cannot be replaced by GroupNorm`);
    if (!s || !sh) throw new RpOnnxError(`BatchNormalization node '${bn.name}': its scale '${scale}' or shift '${bias}' is computed in the graph, not a constant, so it cannot be replaced by GroupNorm`);
    const channels = tensorDims(s)[0]!;
    const groups = gcd(channels, opts.groups ?? 8);
    let c = constants.get(groups);
    if (!c) {
      c = groupNormConstants(b, groups, m.opset(), `groupnorm${groups}`);
      constants.set(groups, c);
    }
    const dims = [channels, ...new Array<number>(rank - 2).fill(1)];
    const w = b.initializer(`${bn.name || scale}.gn.weight`, dims, Float32Array.from(tensorToFloat32(s)));
    const beta = b.initializer(`${bn.name || bias}.gn.bias`, dims, Float32Array.from(tensorToFloat32(sh)));
    const out = emitGroupNorm(b, c, `${bn.name || bn.outputs[0]}.gn`, x, w, beta);
    g.replaceAllUses(bn.outputs[0]!, out);
    // Keep the graph's output name when the BN produced one.
    g.removeNode(bn);
  }
  g.toposort();
  g.removeDeadCode();
  return { model: m, replaced: bns.length };
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

