/**
 * Fed-weight convolutions on onnxruntime's blocked NCHWc kernel.
 *
 * In a training graph every weight is a graph input (fed each step), and onnxruntime's
 * NchwcTransformer only rewrites a Conv whose weight is an initializer: it reorders the filter once,
 * at load. The kernel it targets, com.microsoft.nchwc:Conv, reads its filter from its input on every
 * run, so the graph can do the reordering itself: the fed OIHW weight goes through Reshape and
 * Transpose into the blocked layout (OIHWBiBo, or OIHWBo when the input has fewer channels than a
 * block, whose input then stays NCHW), the input through ReorderInput, and the output back through
 * ReorderOutput. Same arithmetic, other summation order (float32 differences of ~1e-6 relative).
 *
 * The block size is the CPU's (8 with AVX2, 16 with AVX-512: runtime/nchwc.ts asks onnxruntime), so
 * this pass takes it as a parameter. Convolutions it cannot express are left as they are, with the
 * reason: initializer weights (onnxruntime does those itself), groups, unknown or unaligned channel
 * counts, kernels that are not 2-D.
 */
import { GraphBuilder } from '../graph/builder.js';
import type { Graph, Model, Node, TensorType } from '../graph/ir.js';
import { inferShapes } from '../graph/shape-inference.js';
import { applyRewrite, type Rewrite } from './rewrite.js';

export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

interface ConvMatch {
  node: Node;
  /** The weight's static shape [O, I, KH, KW], if known. */
  weight: number[] | null;
  /** The input's channel count (axis 1), if known. */
  channels: number | null;
}

const staticDims = (t: TensorType | undefined): number[] | null =>
  t?.shape && t.shape.every((d): d is number => typeof d === 'number') ? t.shape : null;

function nchwcConvRewrite(graph: Graph, types: Map<string, TensorType>, block: number): Rewrite<ConvMatch, string> {
  const b = new GraphBuilder(graph);
  return {
    name: 'nchwc-conv',
    pattern: (g) => g.nodes.filter((n) => n.opType === 'Conv' && n.isStandard).map((node) => {
      const x = types.get(node.inputs[0]!);
      return { node, weight: staticDims(types.get(node.inputs[1]!)), channels: typeof x?.shape?.[1] === 'number' ? x.shape[1] : null };
    }),
    condition: (g, { node, weight, channels }) => {
      if (g.initializers.has(node.inputs[1]!)) return 'the weight is an initializer (onnxruntime blocks it at load)';
      if (types.get(node.inputs[0]!)?.dtype !== 'float32') return 'not float32';
      if (!weight || weight.length !== 4 || channels === null) return 'not a 2-D convolution of known shape';
      if (node.getInt('group', 1) !== 1) return 'grouped';
      if (node.getString('auto_pad', 'NOTSET') !== 'NOTSET') return 'auto_pad';
      const [o, i] = weight as [number, number];
      if (i !== channels) return 'weight and input channels differ';
      if (o % block !== 0) return `${o} output channels are not a multiple of the block size ${block}`;
      if (i >= block && i % block !== 0) return `${i} input channels are not a multiple of the block size ${block}`;
      // Below one block the input stays NCHW: taken for 1-3 channels (images) and multiples of 4, the
      // counts tested here (test/nchwc-conv.test.ts); others keep the generic kernel.
      if (i < block && i > 3 && i % 4 !== 0) return 'unsupported input channel count';
      return true;
    },
    replacement: (g, { node, weight }) => {
      const [o, i, kh, kw] = weight as [number, number, number, number];
      const name = node.name || node.outputs[0]!;
      // Reordered filter: [O/B, Bo, I/B, Bi, KH, KW] -> [O/B, I/B, KH, KW, Bi, Bo] (OIHWBiBo), or
      // [O/B, Bo, I, KH, KW] -> [O/B, I, KH, KW, Bo] (OIHWBo) when the input is not blocked.
      const blockedInput = i >= block;
      const view = blockedInput ? [o / block, block, i / block, block, kh, kw] : [o / block, block, i, kh, kw];
      const perm = blockedInput ? [0, 2, 4, 5, 3, 1] : [0, 2, 3, 4, 1];
      const add = (op: string, inputs: string[], attrs: Record<string, number | number[]>, suffix: string, domain?: string) =>
        b.op1(op, inputs, attrs, { name: `${name}.nchwc.${suffix}`, domain });
      const w = add('Reshape', [add('Transpose', [add('Reshape', [node.inputs[1]!, b.int64s(`${name}.nchwc.view`, view)], {}, 'view')], { perm }, 'order'),
        b.int64s(`${name}.nchwc.oihw`, [o, i, kh, kw])], {}, 'filter');
      const x = blockedInput ? add('ReorderInput', [node.inputs[0]!], {}, 'input', NCHWC_DOMAIN) : node.inputs[0]!;
      const attrs: Record<string, number | number[]> = {};
      for (const a of ['pads', 'strides', 'dilations', 'kernel_shape'] as const) {
        const v = node.getInts(a);
        if (v) attrs[a] = v;
      }
      const y = add('Conv', [x, w, ...(node.inputs[2] ? [node.inputs[2]] : [])], attrs, 'conv', NCHWC_DOMAIN);
      b.op('ReorderOutput', [y], { channels: o }, { name: `${name}.nchwc.output`, domain: NCHWC_DOMAIN, outputs: [node.outputs[0]!] });
      g.removeNode(node);
      return y;
    },
  };
}

export interface NchwcOutcome {
  /** Convolutions now on the NCHWc kernel. */
  rewritten: number;
  /** The others, each with the reason. */
  skipped: { node: string; reason: string }[];
}

/** Whether a standard Conv of `model` takes its weight from anything but an initializer (what this pass rewrites). */
export function hasFedConvolution(model: Model): boolean {
  return model.graph.nodes.some((n) => n.opType === 'Conv' && n.isStandard && !model.graph.initializers.has(n.inputs[1]!));
}

/** Rewrites `model` in place (a session's private copy): its fed-weight convolutions onto the NCHWc kernel of block size `block`. */
export function rewriteNchwcConvolutions(model: Model, block: number): NchwcOutcome {
  if (!model.graph.nodes.some((n) => n.opType === 'Conv' && n.isStandard)) return { rewritten: 0, skipped: [] };
  const g = model.graph;
  const types = inferShapes(g, { opset: model.opset(), record: false });
  const { applied, skipped } = applyRewrite(g, nchwcConvRewrite(g, types, block));
  if (applied.length > 0) {
    model.setOpset(NCHWC_DOMAIN, 1);
    g.toposort();
  }
  return { rewritten: applied.length, skipped: skipped.map((s) => ({ node: s.match.node.name, reason: s.reason })) };
}

/** A copy of `model` with its fed-weight convolutions on the NCHWc kernel (`rewriteNchwcConvolutions`). */
export function nchwcConvolutions(model: Model, block: number): NchwcOutcome & { model: Model } {
  const m = model.clone();
  return { model: m, ...rewriteNchwcConvolutions(m, block) };
}
