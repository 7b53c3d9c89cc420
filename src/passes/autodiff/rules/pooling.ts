/**
 * Pooling: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.
 *
 * MaxPool routes each output gradient to the input element that won its window, through the
 * forward node's Indices output (added to the node when the model did not ask for it; the
 * indices are flat over the whole input, N*C*H*W). A ScatterElements with reduction 'add'
 * (opset 16+) sums the contributions of overlapping windows; non-overlapping windows need no
 * reduction, so older opsets work too. Ties go to the first maximum, as in PyTorch.
 *
 * AveragePool is linear: dX is the transposed "convolution" of dY / divisor with a ones kernel,
 * emitted as one ConvTranspose over the N*C planes. The divisor of each output position follows
 * count_include_pad, pads and ceil_mode statically (taps inside the padded input when padding
 * counts, taps inside the input when not).
 */
import { makeTensor } from '../../../graph/tensor.js';
import { registerGradient } from '../registry.js';
import type { GradContext } from '../rule.js';
import { RpOnnxError } from '../../../errors.js';
import { castLike, dtypeOf, reduceSum, scalarLike } from './emit.js';
import { resolveWindow, spatialDims, type Window } from './window.js';

function zerosFlat(ctx: GradContext, x: string): string {
  const b = ctx.b;
  const size = b.op1('Reshape', [b.op1('Size', [x]), b.int64s('one', [1])]);
  return asTypeOf(ctx, ctx.b.op1('ConstantOfShape', [size], { value: makeTensor('value', [1], new Float32Array(1)) }), x);
}

/** A float32 value cast to the element type of `like` when that is another type. */
function asTypeOf(ctx: GradContext, f32: string, like: string): string {
  const t = dtypeOf(ctx, like);
  return t === undefined || t === 'float32' ? f32 : castLike(ctx, f32, like);
}

function overlaps(win: Window): boolean {
  return win.kernel.some((k, i) => (k - 1) * win.dilations[i]! + 1 > win.strides[i]!);
}

registerGradient('MaxPool', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY || !ctx.needsGrad[0]) return [];
  const { b, node } = ctx;
  if (node.getInt('storage_order', 0) !== 0) {
    throw new RpOnnxError(`gradient of MaxPool node '${node.name}': storage_order=1 (column-major indices) is not supported; re-export with the default storage_order`);
  }
  const x = node.inputs[0]!;
  const win = resolveWindow(node, spatialDims(ctx, x, 'MaxPool'), node.getInts('kernel_shape') ?? [], node.getInt('ceil_mode', 0) !== 0);
  const overlapping = overlaps(win);
  if (overlapping && ctx.opset < 16) {
    throw new RpOnnxError(
      `gradient of MaxPool node '${node.name}': overlapping windows need ScatterElements with reduction (opset 16+), the model has opset ${ctx.opset}; convert the model to opset 16 or later`,
    );
  }
  // Ask the forward node for its indices.
  let indices = node.outputs[1];
  if (!indices) {
    indices = b.graph.uniqueName(`${node.outputs[0]}_indices`);
    node.outputs[1] = indices;
    b.graph.invalidate();
  }
  const flat = b.int64s('flat', [-1]);
  const scattered = b.op1(
    'ScatterElements',
    [zerosFlat(ctx, x), b.op1('Reshape', [indices, flat]), b.op1('Reshape', [dY, flat])],
    { axis: 0, reduction: overlapping ? 'add' : undefined },
  );
  return [b.op1('Reshape', [scattered, b.op1('Shape', [x])])];
});

/** Per-output-position divisor of AveragePool (separable: a product of per-axis counts). */
function divisors(win: Window, includePad: boolean): number[][] {
  return win.output.map((out, a) => {
    const lo = includePad ? -win.padBegin[a]! : 0;
    const hi = includePad ? win.input[a]! + win.padEnd[a]! : win.input[a]!;
    return Array.from({ length: out }, (_, o) => {
      let n = 0;
      for (let k = 0; k < win.kernel[a]!; k++) {
        const i = o * win.strides[a]! - win.padBegin[a]! + k * win.dilations[a]!;
        if (i >= lo && i < hi) n++;
      }
      return n;
    });
  });
}

/** dX = sum of dY over every window covering each input element (ConvTranspose, ones kernel). */
function spreadWindows(ctx: GradContext, dYscaled: string, x: string, win: Window): string {
  const b = ctx.b;
  const r = win.kernel.length;
  const planes = b.op1('Reshape', [dYscaled, b.int64s('shape', [-1, 1, ...win.output])]);
  const ones = b.initializer('ones', [1, 1, ...win.kernel], new Float32Array(win.kernel.reduce((p, k) => p * k, 1)).fill(1));
  const padEnd: number[] = [];
  const outputPadding: number[] = [];
  for (let i = 0; i < r; i++) {
    // Size of the full transposed output minus the input size: crop it (pads) or extend it.
    const over = (win.output[i]! - 1) * win.strides[i]! + (win.kernel[i]! - 1) * win.dilations[i]! + 1 - win.padBegin[i]! - win.input[i]!;
    padEnd.push(Math.max(0, over));
    outputPadding.push(Math.max(0, -over));
  }
  const spread = b.op1('ConvTranspose', [planes, asTypeOf(ctx, ones, dYscaled)], {
    kernel_shape: win.kernel, strides: win.strides, dilations: win.dilations, pads: [...win.padBegin, ...padEnd],
    output_padding: outputPadding.some((p) => p !== 0) ? outputPadding : undefined,
  });
  return b.op1('Reshape', [spread, b.op1('Shape', [x])]);
}

registerGradient('AveragePool', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY || !ctx.needsGrad[0]) return [];
  const { b, node } = ctx;
  const x = node.inputs[0]!;
  const win = resolveWindow(node, spatialDims(ctx, x, 'AveragePool'), node.getInts('kernel_shape') ?? [], node.getInt('ceil_mode', 0) !== 0);
  const perAxis = divisors(win, node.getInt('count_include_pad', 0) !== 0);
  const uniform = perAxis.every((d) => d.every((v) => v === d[0]));
  let scaled: string;
  if (uniform) {
    const d = perAxis.reduce((p, axis) => p * axis[0]!, 1);
    scaled = b.op1('Div', [dY, scalarLike(ctx, d, dY)]);
  } else {
    // 1 / divisor over the output's spatial positions, broadcast over N and C.
    let inv: number[] = [1];
    for (const axis of perAxis) inv = inv.flatMap((p) => axis.map((d) => (d > 0 ? p / d : 0)));
    const t = b.initializer('inv_divisor', win.output, Float32Array.from(inv));
    scaled = b.op1('Mul', [dY, asTypeOf(ctx, t, dY)]);
  }
  return [spreadWindows(ctx, scaled, x, win)];
});

registerGradient('GlobalAveragePool', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY || !ctx.needsGrad[0]) return [];
  const b = ctx.b;
  const x = ctx.node.inputs[0]!;
  const sp = ctx.shapeOf(x)?.slice(2);
  let count: string;
  if (sp && sp.every((d): d is number => typeof d === 'number')) count = scalarLike(ctx, sp.reduce((p, d) => p * d, 1), dY);
  else count = castLike(ctx, b.op1('Div', [b.op1('Size', [x]), b.op1('Size', [ctx.node.outputs[0]!])]), dY);
  return [b.op1('Expand', [b.op1('Div', [dY, count]), b.op1('Shape', [x])])];
});

registerGradient('GlobalMaxPool', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY || !ctx.needsGrad[0]) return [];
  const b = ctx.b;
  const x = ctx.node.inputs[0]!;
  const rank = ctx.shapeOf(x)?.length;
  if (rank === undefined) throw new RpOnnxError(`gradient of GlobalMaxPool node '${ctx.node.name}': the rank of '${x}' is unknown`);
  // Ties share the gradient equally (a valid subgradient; ties are rare away from zero).
  const mask = castLike(ctx, b.op1('Equal', [x, ctx.node.outputs[0]!]), dY);
  const count = reduceSum(ctx, mask, Array.from({ length: rank - 2 }, (_, i) => i + 2), true);
  return [b.op1('Mul', [mask, b.op1('Div', [dY, count])])];
});
