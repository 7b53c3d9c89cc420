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
import { castLike, dtypeOf, reduceSum, scalarLike } from '../emit.js';
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
  if (overlapping && ctx.opset < 11) {
    throw new RpOnnxError(`gradient of MaxPool node '${node.name}': overlapping windows need opset 11 or later, the model has opset ${ctx.opset}`);
  }
  // Ask the forward node for its indices.
  let indices = node.outputs[1];
  if (!indices) {
    indices = b.graph.uniqueName(`${node.outputs[0]}_indices`);
    node.outputs[1] = indices;
    b.graph.invalidate();
  }
  // Overlapping windows before opset 16 (no ScatterElements reduction): offset masks.
  if (overlapping && ctx.opset < 16) return [maxPoolGradByOffsets(ctx, dY, indices, x, win)];
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

/**
 * dX = sum over windows covering each input element of a per-window value: `planes` holds, per
 * N*C plane, `channels` values per output position, and `kernel` [channels, 1, k...] says where
 * in its window each channel lands (a ones kernel for AveragePool, one-hot kernels for MaxPool).
 * One ConvTranspose with the pool's strides, dilations and pads does it.
 */
function spreadToInput(ctx: GradContext, planes: string, kernel: string, x: string, win: Window): string {
  const b = ctx.b;
  const r = win.kernel.length;
  const padEnd: number[] = [];
  const outputPadding: number[] = [];
  for (let i = 0; i < r; i++) {
    // Size of the full transposed output minus the input size: crop it (pads) or extend it.
    const over = (win.output[i]! - 1) * win.strides[i]! + (win.kernel[i]! - 1) * win.dilations[i]! + 1 - win.padBegin[i]! - win.input[i]!;
    padEnd.push(Math.max(0, over));
    outputPadding.push(Math.max(0, -over));
  }
  const spread = b.op1('ConvTranspose', [planes, asTypeOf(ctx, kernel, planes)], {
    kernel_shape: win.kernel, strides: win.strides, dilations: win.dilations, pads: [...win.padBegin, ...padEnd],
    output_padding: outputPadding.some((p) => p !== 0) ? outputPadding : undefined,
  });
  return b.op1('Reshape', [spread, b.op1('Shape', [x])]);
}

/** dX = sum of dY over every window covering each input element (ones kernel). */
function spreadWindows(ctx: GradContext, dYscaled: string, x: string, win: Window): string {
  const b = ctx.b;
  const planes = b.op1('Reshape', [dYscaled, b.int64s('shape', [-1, 1, ...win.output])]);
  const ones = b.initializer('ones', [1, 1, ...win.kernel], new Float32Array(win.kernel.reduce((p, k) => p * k, 1)).fill(1));
  return spreadToInput(ctx, planes, ones, x, win);
}

/**
 * MaxPool's gradient without ScatterElements reduction (opsets 11-15), for overlapping windows:
 * for each kernel offset k, mask_k = (winner's in-plane index == the input position at offset k
 * of that window), then the masked dY of all K offsets go back through one ConvTranspose with
 * one-hot kernels. Same tie semantics as the indices (one winner per window).
 */
function maxPoolGradByOffsets(ctx: GradContext, dY: string, indices: string, x: string, win: Window): string {
  const b = ctx.b;
  const r = win.kernel.length;
  const K = win.kernel.reduce((p, k) => p * k, 1);
  const planeSize = win.input.reduce((p, d) => p * d, 1);
  const outSize = win.output.reduce((p, d) => p * d, 1);
  // Input position (flat in the plane) of offset k in the window at each output position; -1 = padding.
  const positions = new BigInt64Array(K * outSize);
  const offsets: number[][] = [];
  const rec = (prefix: number[]) => {
    if (prefix.length === r) offsets.push(prefix);
    else for (let k = 0; k < win.kernel[prefix.length]!; k++) rec([...prefix, k]);
  };
  rec([]);
  offsets.forEach((off, k) => {
    for (let o = 0; o < outSize; o++) {
      let rem = o;
      const coord: number[] = new Array<number>(r);
      for (let a = r - 1; a >= 0; a--) {
        coord[a] = rem % win.output[a]!;
        rem = Math.floor(rem / win.output[a]!);
      }
      let flat = 0;
      let inside = true;
      for (let a = 0; a < r; a++) {
        const i = coord[a]! * win.strides[a]! - win.padBegin[a]! + off[a]! * win.dilations[a]!;
        if (i < 0 || i >= win.input[a]!) inside = false;
        flat = flat * win.input[a]! + i;
      }
      positions[k * outSize + o] = BigInt(inside ? flat : -1);
    }
  });
  const posTable = b.initializer('maxpool_positions', [1, K, ...win.output], positions, 'int64');
  // Winner index within its N*C plane, as [N*C, 1, out...].
  const local = b.op1('Mod', [b.op1('Reshape', [indices, b.int64s('shape', [-1, 1, ...win.output])]), b.initializer('plane_size', [], BigInt64Array.of(BigInt(planeSize)), 'int64')]);
  const mask = b.op1('Cast', [b.op1('Equal', [local, posTable])], { to: 1 });
  const planes = b.op1('Mul', [asTypeOf(ctx, mask, dY), b.op1('Reshape', [dY, b.int64s('shape', [-1, 1, ...win.output])])]);
  const oneHot = new Float32Array(K * K);
  for (let k = 0; k < K; k++) oneHot[k * K + k] = 1;
  const kernel = b.initializer('maxpool_onehot', [K, 1, ...win.kernel], oneHot);
  return spreadToInput(ctx, planes, kernel, x, win);
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
