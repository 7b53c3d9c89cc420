/**
 * Convolutions, pooling, normalization and recurrent layers: the layers of CNNs and
 * transformers, with the output-size formulas of the ONNX operator specification.
 */
import type { Dim, Node, TensorType } from '../ir.js';
import { registerShapeRule, type ShapeContext } from './registry.js';
import { dimMul, isKnown, normAxis, tensor } from './dims.js';

interface Window {
  kernel: Dim[];
  strides: number[];
  dilations: number[];
  pads: number[];
  autoPad: string;
}

function windowOf(node: Node, spatial: number, kernelFromWeight: Dim[] | null): Window {
  const ones = new Array<number>(spatial).fill(1);
  const kernelAttr = node.getInts('kernel_shape');
  const kernel: Dim[] = kernelAttr ?? kernelFromWeight ?? new Array<Dim>(spatial).fill(null);
  return {
    kernel,
    strides: node.getInts('strides', ones),
    dilations: node.getInts('dilations', ones),
    pads: node.getInts('pads', new Array<number>(2 * spatial).fill(0)),
    autoPad: node.getString('auto_pad', 'NOTSET'),
  };
}

/** Output length of a sliding window (Conv, pooling) along one axis. */
function slidingOut(d: Dim, w: Window, i: number, spatial: number, ceilMode: boolean): Dim {
  const k = w.kernel[i] ?? null;
  const s = w.strides[i] ?? 1;
  const dil = w.dilations[i] ?? 1;
  if (w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER') {
    if (isKnown(d)) return Math.ceil(d / s);
    return s === 1 ? d : null;
  }
  const pads = w.autoPad === 'VALID' ? 0 : (w.pads[i] ?? 0) + (w.pads[i + spatial] ?? 0);
  const padBegin = w.autoPad === 'VALID' ? 0 : (w.pads[i] ?? 0);
  if (!isKnown(k)) return null;
  const reach = dil * (k - 1) + 1;
  if (!isKnown(d)) return s === 1 && pads === reach - 1 ? d : null;
  const span = d + pads - reach;
  if (!ceilMode) return Math.floor(span / s) + 1;
  let out = Math.ceil(span / s) + 1;
  // The last window must start inside the input or the left padding (PyTorch, onnxruntime).
  if ((out - 1) * s >= d + padBegin) out -= 1;
  return out;
}

registerShapeRule('Conv', (ctx) => {
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  if (!x) return [tensor(ctx.dtype(0), null)];
  const spatial = x.length - 2;
  const win = windowOf(ctx.node, spatial, w ? w.slice(2) : null);
  const out: Dim[] = [x[0]!, w ? w[0]! : null];
  for (let i = 0; i < spatial; i++) out.push(slidingOut(x[i + 2]!, win, i, spatial, false));
  return [tensor(ctx.dtype(0), out)];
});

registerShapeRule(['ConvInteger'], (ctx) => {
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  if (!x) return [tensor('int32', null)];
  const spatial = x.length - 2;
  const win = windowOf(ctx.node, spatial, w ? w.slice(2) : null);
  const out: Dim[] = [x[0]!, w ? w[0]! : null];
  for (let i = 0; i < spatial; i++) out.push(slidingOut(x[i + 2]!, win, i, spatial, false));
  return [tensor('int32', out)];
});

registerShapeRule('ConvTranspose', (ctx) => {
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  if (!x) return [tensor(ctx.dtype(0), null)];
  const spatial = x.length - 2;
  const node = ctx.node;
  const win = windowOf(node, spatial, w ? w.slice(2) : null);
  const group = node.getInt('group', 1);
  const out: Dim[] = [x[0]!, w ? dimMul(w[1]!, group) : null];
  const outputShape = node.getInts('output_shape');
  const outputPadding = node.getInts('output_padding', new Array<number>(spatial).fill(0));
  for (let i = 0; i < spatial; i++) {
    if (outputShape) {
      out.push(outputShape[outputShape.length - spatial + i] ?? null);
      continue;
    }
    const d = x[i + 2]!;
    const k = win.kernel[i] ?? null;
    const s = win.strides[i]!;
    if (!isKnown(d) || !isKnown(k)) {
      out.push(null);
      continue;
    }
    if (win.autoPad === 'SAME_UPPER' || win.autoPad === 'SAME_LOWER') {
      out.push(d * s);
      continue;
    }
    const pads = win.autoPad === 'VALID' ? 0 : win.pads[i]! + win.pads[i + spatial]!;
    out.push(s * (d - 1) + outputPadding[i]! + (k - 1) * win.dilations[i]! + 1 - pads);
  }
  return [tensor(ctx.dtype(0), out)];
});

function poolRule(ctx: ShapeContext): (TensorType | null)[] {
  const x = ctx.shape(0);
  if (!x) return [tensor(ctx.dtype(0), null), tensor('int64', null)];
  const spatial = x.length - 2;
  const win = windowOf(ctx.node, spatial, null);
  const ceil = ctx.node.getInt('ceil_mode', 0) === 1;
  const out: Dim[] = [x[0]!, x[1]!];
  for (let i = 0; i < spatial; i++) out.push(slidingOut(x[i + 2]!, win, i, spatial, ceil));
  return [tensor(ctx.dtype(0), out), tensor('int64', [...out])];
}
registerShapeRule(['MaxPool', 'AveragePool', 'LpPool'], poolRule);

registerShapeRule(['GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool'], (ctx) => {
  const x = ctx.shape(0);
  return [tensor(ctx.dtype(0), x ? [x[0]!, x[1]!, ...x.slice(2).map(() => 1)] : null)];
});

registerShapeRule('MaxUnpool', (ctx) => {
  const x = ctx.shape(0);
  const given = ctx.value(2);
  if (given) return [tensor(ctx.dtype(0), given)];
  if (!x) return [tensor(ctx.dtype(0), null)];
  if (ctx.hasInput(2)) return [tensor(ctx.dtype(0), x.map(() => null))];
  const spatial = x.length - 2;
  const win = windowOf(ctx.node, spatial, null);
  const out: Dim[] = [x[0]!, x[1]!];
  for (let i = 0; i < spatial; i++) {
    const d = x[i + 2]!;
    const k = win.kernel[i] ?? null;
    out.push(isKnown(d) && isKnown(k) ? (d - 1) * win.strides[i]! + k - win.pads[i]! - win.pads[i + spatial]! : null);
  }
  return [tensor(ctx.dtype(0), out)];
});

registerShapeRule('BatchNormalization', (ctx) => {
  const outs: (TensorType | null)[] = [tensor(ctx.dtype(0), ctx.shape(0))];
  // Running (opset 14+) or saved (before) statistics: one value per channel.
  const channels = ctx.shape(1) ?? ctx.shape(3);
  for (let i = 1; i < ctx.node.outputs.length; i++) outs.push(tensor(ctx.dtype(3) ?? ctx.dtype(0), channels ? [...channels] : null));
  return outs;
});

registerShapeRule(['InstanceNormalization', 'GroupNormalization'], (ctx) => [tensor(ctx.dtype(0), ctx.shape(0))]);

registerShapeRule('LayerNormalization', (ctx) => {
  const x = ctx.shape(0);
  const axis = ctx.node.getInt('axis', -1);
  const stash = ctx.node.getInt('stash_type', 1) === 1 ? 'float32' : ctx.dtype(0);
  const stats = x ? x.map((d, i) => (i >= normAxis(axis, x.length) ? 1 : d)) : null;
  return [tensor(ctx.dtype(0), x), tensor(stash, stats), tensor(stash, stats ? [...stats] : null)];
});

/** RNN, GRU, LSTM: Y and the final hidden (and cell) states. */
registerShapeRule(['RNN', 'GRU', 'LSTM'], (ctx) => {
  const x = ctx.shape(0);
  const node = ctx.node;
  const dirs = node.getString('direction', 'forward') === 'bidirectional' ? 2 : 1;
  const r = ctx.shape(2);
  const hidden: Dim = node.getInt('hidden_size') ?? (r ? r[2]! : null);
  const layout = node.getInt('layout', 0);
  const seq = x ? (layout === 0 ? x[0]! : x[1]!) : null;
  const batch = x ? (layout === 0 ? x[1]! : x[0]!) : null;
  const y: Dim[] = layout === 0 ? [seq, dirs, batch, hidden] : [batch, seq, dirs, hidden];
  const h: Dim[] = layout === 0 ? [dirs, batch, hidden] : [batch, dirs, hidden];
  const dt = ctx.dtype(0);
  return [tensor(dt, y), tensor(dt, h), tensor(dt, [...h])];
});

registerShapeRule('DepthToSpace', (ctx) => {
  const x = ctx.shape(0);
  const b = ctx.node.getInt('blocksize', 1);
  if (!x || x.length !== 4) return [tensor(ctx.dtype(0), x ? x.map(() => null) : null)];
  const c = x[1]!;
  return [tensor(ctx.dtype(0), [x[0]!, isKnown(c) ? c / (b * b) : null, dimMul(x[2]!, b), dimMul(x[3]!, b)])];
});
registerShapeRule('SpaceToDepth', (ctx) => {
  const x = ctx.shape(0);
  const b = ctx.node.getInt('blocksize', 1);
  if (!x || x.length !== 4) return [tensor(ctx.dtype(0), x ? x.map(() => null) : null)];
  const div = (d: Dim) => (isKnown(d) ? d / b : b === 1 ? d : null);
  return [tensor(ctx.dtype(0), [x[0]!, dimMul(x[1]!, b * b), div(x[2]!), div(x[3]!)])];
});

registerShapeRule('GridSample', (ctx) => {
  const x = ctx.shape(0);
  const g = ctx.shape(1);
  return [tensor(ctx.dtype(0), x && g ? [x[0]!, x[1]!, ...g.slice(1, -1)] : null)];
});

registerShapeRule('RoiAlign', (ctx) => {
  const x = ctx.shape(0);
  const rois = ctx.shape(1);
  const n = ctx.node;
  return [tensor(ctx.dtype(0), [rois ? rois[0]! : null, x ? x[1]! : null, n.getInt('output_height', 1), n.getInt('output_width', 1)])];
});
registerShapeRule('MaxRoiPool', (ctx) => {
  const x = ctx.shape(0);
  const rois = ctx.shape(1);
  const pooled = ctx.node.getInts('pooled_shape', [null, null] as unknown as number[]);
  return [tensor(ctx.dtype(0), [rois ? rois[0]! : null, x ? x[1]! : null, ...pooled])];
});
