/**
 * Conv (any spatial rank, strides, pads/auto_pad, dilations, groups incl. depthwise).
 *
 * Input gradient: the transposed convolution of dY with W. For stride 1 it is emitted as a plain
 * Conv of dY with the spatially flipped, channel-transposed kernel (onnxruntime runs it faster
 * than ConvTranspose: 7.4 vs 8.7-15 ms, 1 thread, on the 16->16 3x3 28x28 batch-128 layer); for
 * larger strides as ConvTranspose with the output_padding that restores the input size.
 *
 * Weight gradient: dW[o, c, k] = sum_{n, p} dY[n, o, p] X_pad[n, c, p*s + k*d], computed from one
 * strided Slice of the padded input per kernel offset k (the centre tap of a 'same' conv is the
 * input itself) and batched MatMuls over the batch, then a sum over the batch. Where the
 * per-image products [N, K*Cin, Cout] would be much larger than the activations (many channels,
 * few positions: ResNet-18's last stages), the batch is folded into the contraction instead
 * (`foldsBatch`, `batchFoldedWeightGrad`). Measured against
 * the alternatives in bench/conv-weight-grad.ts (forward + both gradients of that layer, 1
 * thread): ~23 ms, vs 24-26 ms for one Gemm over a transposed im2col or a Concat + one MatMul,
 * 31 ms for Einsum and 35 ms for a Conv with batch and channels swapped (whose 28x28 "kernel"
 * makes onnxruntime's im2col degenerate). The per-example products ([N, ...] before the batch
 * sum) are what DP-SGD needs: `convWeightGrad(..., perExample = true)`.
 */
import { registerGradient } from '../registry.js';
import type { GradContext } from '../rule.js';
import { RpOnnxError } from '../../../errors.js';
import { reduceSum } from '../emit.js';
import { noPerExample, requireBatchAxis } from '../per-example.js';
import { kernelOffsets, resolveWindow, spatialDims, type Window } from './window.js';

/** Pad with zeros, pads as [begin..., end...] over every axis (attribute before opset 11). */
export function padZeros(ctx: GradContext, x: string, pads: number[]): string {
  if (pads.every((p) => p === 0)) return x;
  return ctx.opset >= 11 ? ctx.b.op1('Pad', [x, ctx.b.int64s('pads', pads)]) : ctx.b.op1('Pad', [x], { pads });
}

/** Strided slice over the spatial axes (2..). */
export function sliceSpatial(ctx: GradContext, x: string, starts: number[], ends: number[], steps: number[]): string {
  const b = ctx.b;
  if (ctx.opset < 10) throw new RpOnnxError(`gradient of node '${ctx.node.name}' needs Slice with inputs (opset >= 10); the model has opset ${ctx.opset}`);
  const axes = starts.map((_, i) => i + 2);
  const inputs = [x, b.int64s('starts', starts), b.int64s('ends', ends), b.int64s('axes', axes)];
  if (steps.some((s) => s !== 1)) inputs.push(b.int64s('steps', steps));
  return b.op1('Slice', inputs);
}

export interface ConvGeometry {
  win: Window;
  group: number;
  cin: number;
  cout: number;
}

export function convGeometry(ctx: GradContext): ConvGeometry {
  const { node } = ctx;
  const [x, w] = node.inputs as [string, string];
  const xs = spatialDims(ctx, x, 'Conv');
  const ws = ctx.shapeOf(w);
  const kernel = node.getInts('kernel_shape') ?? ws?.slice(2).map((d) => (typeof d === 'number' ? d : NaN));
  const cout = ws?.[0];
  const cin = ctx.shapeOf(x)?.[1];
  if (!kernel || kernel.some((k) => Number.isNaN(k)) || typeof cout !== 'number' || typeof cin !== 'number') {
    throw new RpOnnxError(`gradient of Conv node '${node.name}': the weight shape and input channels must be static`);
  }
  return { win: resolveWindow(node, xs, kernel), group: node.getInt('group', 1), cin, cout };
}

/** dX: Conv with the flipped kernel (stride 1) or ConvTranspose. */
function inputGrad(ctx: GradContext, dY: string, w: string, g: ConvGeometry): string {
  const { b } = ctx;
  const { win, group, cin, cout } = g;
  const r = win.kernel.length;
  const reach = win.kernel.map((k, i) => (k - 1) * win.dilations[i]!);
  const flipOk = win.strides.every((s) => s === 1) && reach.every((e, i) => e >= win.padBegin[i]! && e >= win.padEnd[i]!);
  if (flipOk) {
    // W [Cout, Cin/G, k] -> [Cin, Cout/G, k] (per group), then reversed along every spatial axis.
    let wt: string;
    const spatial = Array.from({ length: r }, (_, i) => i + 2);
    if (group === 1) wt = b.op1('Transpose', [w], { perm: [1, 0, ...spatial] });
    else {
      const grouped = b.op1('Reshape', [w, b.int64s('shape', [group, cout / group, cin / group, ...win.kernel])]);
      const swapped = b.op1('Transpose', [grouped], { perm: [0, 2, 1, ...spatial.map((a) => a + 1)] });
      wt = b.op1('Reshape', [swapped, b.int64s('shape', [cin, cout / group, ...win.kernel])]);
    }
    const big = -(2 ** 62);
    const flipped = b.op1('Slice', [wt, b.int64s('starts', new Array<number>(r).fill(-1)), b.int64s('ends', new Array<number>(r).fill(big)), b.int64s('axes', spatial), b.int64s('steps', new Array<number>(r).fill(-1))]);
    const pads = [...reach.map((e, i) => e - win.padBegin[i]!), ...reach.map((e, i) => e - win.padEnd[i]!)];
    return b.op1('Conv', [dY, flipped], { pads, dilations: win.dilations, group: group === 1 ? undefined : group, kernel_shape: win.kernel });
  }
  const outputPadding = win.input.map((n, i) => n - ((win.output[i]! - 1) * win.strides[i]! + reach[i]! + 1 - win.padBegin[i]! - win.padEnd[i]!));
  return b.op1('ConvTranspose', [dY, w], {
    strides: win.strides, dilations: win.dilations, pads: [...win.padBegin, ...win.padEnd], kernel_shape: win.kernel,
    group: group === 1 ? undefined : group,
    output_padding: outputPadding.some((p) => p !== 0) ? outputPadding : undefined,
  });
}

/**
 * The spatial slice of the padded input that kernel offset `o` meets (starts, ends; steps are the
 * strides), and whether it is the whole padded input.
 */
function offsetWindow(win: Window, o: readonly number[]): { starts: number[]; ends: number[]; whole: boolean } {
  const starts = o.map((k, i) => k * win.dilations[i]!);
  const ends = starts.map((st, i) => st + win.strides[i]! * (win.output[i]! - 1) + 1);
  const whole = starts.every((st, i) => st === 0 && ends[i] === win.input[i]! + win.padBegin[i]! + win.padEnd[i]! && win.strides[i] === 1);
  return { starts, ends, whole };
}

/**
 * dW from strided slices of the padded input, one per kernel offset. With `perExample` the
 * batch axis is kept: the result is [N, Cout, Cin/G, k...] instead of [Cout, Cin/G, k...].
 */
export function convWeightGrad(ctx: GradContext, x: string, dY: string, g: ConvGeometry, perExample = false): string {
  const { b } = ctx;
  const { win, group, cin, cout } = g;
  // Many kernel offsets make the per-offset slices slow; with few, they win (see below).
  const offsetCount = win.kernel.reduce((a, k) => a * k, 1);
  if (perExample && group === 1 && cin === 1 && offsetCount > 9 && ctx.batchSize !== undefined) return perExampleWeightGradGrouped(ctx, x, dY, g, ctx.batchSize);
  if (!perExample && foldsBatch(g)) return batchFoldedWeightGrad(ctx, x, dY, g);
  const r = win.kernel.length;
  const xp = padZeros(ctx, x, [0, 0, ...win.padBegin, 0, 0, ...win.padEnd]);
  const offsets = kernelOffsets(win.kernel);
  const slices = offsets.map((o) => {
    const { starts, ends, whole } = offsetWindow(win, o);
    if (whole) return xp;
    // The window that is exactly the unpadded input (the centre tap of a 'same' conv) needs no copy.
    const unpadded = starts.every((s, i) => s === win.padBegin[i] && ends[i] === s + win.input[i]! && win.strides[i] === 1);
    return unpadded ? x : sliceSpatial(ctx, xp, starts, ends, win.strides);
  });
  const K = offsets.length;
  const spatial = Array.from({ length: r }, (_, i) => i + 2);

  if (group === cin && cout === cin) {
    // Depthwise: dW[c, 0, k] = sum_{n,p} dY[n, c, p] X_k[n, c, p].
    const axes = perExample ? spatial : [0, ...spatial];
    const parts = slices.map((s) => reduceSum(ctx, b.op1('Mul', [s, dY]), axes, true));
    // Each part is [1|N, C, 1...]; concatenating on the last axis gives [.., C, 1.., K].
    const cat = b.op1('Concat', parts, { axis: r + 1 });
    return b.op1('Reshape', [cat, b.int64s('shape', perExample ? [0, cout, 1, ...win.kernel] : [cout, 1, ...win.kernel])]);
  }

  const cg = cin / group;
  const og = cout / group;
  // dY as [N, G, P, Cout/G]; each slice as [N, G, Cin/G, P].
  const dYm = b.op1('Transpose', [b.op1('Reshape', [dY, b.int64s('shape', [0, group, og, -1])])], { perm: [0, 1, 3, 2] });
  const rows = slices.map((s) => b.op1('Reshape', [s, b.int64s('shape', [0, group, cg, -1])]));
  // [N, G, K*Cin/G, Cout/G], offset-major along axis 2. Few input channels (a stem conv on RGB or
  // grey images) make each offset's product tiny: concatenate the slices and multiply once.
  let cat: string;
  if (K === 1) cat = b.op1('MatMul', [rows[0]!, dYm]);
  else if (cg < 16) cat = b.op1('MatMul', [b.op1('Concat', rows, { axis: 2 }), dYm]);
  else cat = b.op1('Concat', rows.map((r) => b.op1('MatMul', [r, dYm])), { axis: 2 });
  if (perExample) {
    const split = b.op1('Reshape', [cat, b.int64s('shape', [0, group, K, cg, og])]);
    const ordered = b.op1('Transpose', [split], { perm: [0, 1, 4, 3, 2] });
    return b.op1('Reshape', [ordered, b.int64s('shape', [0, cout, cg, ...win.kernel])]);
  }
  const summed = reduceSum(ctx, cat, [0], false);
  const split = b.op1('Reshape', [summed, b.int64s('shape', [group, K, cg, og])]);
  const ordered = b.op1('Transpose', [split], { perm: [0, 3, 2, 1] });
  return b.op1('Reshape', [ordered, b.int64s('shape', [cout, cg, ...win.kernel])]);
}

/**
 * Whether the summed weight gradient folds the batch into its contraction. The per-image
 * products hold K*Cin*Cout values per example against P*(Cin + Cout) for its activations (P
 * output positions): with many channels and few positions they are the larger by far, and
 * writing them and summing them over the batch costs more than the product itself. Measured
 * (forward + both gradients of one 3x3 layer, 2 threads, bench/conv-weight-grad.ts
 * FWDBWD=1, variant I against the rule's windows): batch 16, 512 channels, 7x7: 0.62x; 256, 14x14:
 * 0.84x; 128, 28x28: 1.02x; batch 128, 64 channels at 7x7 and 8x8: 0.98x, 0.94x; 32 at 14x14:
 * 1.09x; 16 at 28x28: 1.31x. Hence: products at least 4x the activations, and at least
 * 128 x 128 channel pairs.
 */
export function foldsBatch(g: ConvGeometry): boolean {
  if (g.group !== 1) return false;
  const K = g.win.kernel.reduce((a, k) => a * k, 1);
  const P = g.win.output.reduce((a, k) => a * k, 1);
  return g.cin * g.cout >= 128 * 128 && K * g.cin * g.cout >= 4 * P * (g.cin + g.cout);
}

/**
 * dW with the batch folded into the contraction (group 1): the padded input and dY transposed to
 * [C, N, ...] and [O, N, ...], the windows stacked channel-major ([Cin, K, N*P], so that the
 * product is already [Cout, Cin, k...]: no Transpose of the result), one Gemm over N*P.
 */
export function batchFoldedWeightGrad(ctx: GradContext, x: string, dY: string, g: ConvGeometry): string {
  const { b } = ctx;
  const { win, cin, cout } = g;
  const spatial = win.kernel.map((_, i) => i + 2);
  const xp = padZeros(ctx, x, [0, 0, ...win.padBegin, 0, 0, ...win.padEnd]);
  const xt = b.op1('Transpose', [xp], { perm: [1, 0, ...spatial] });
  const windows = kernelOffsets(win.kernel).map((o) => {
    const { starts, ends, whole } = offsetWindow(win, o);
    return b.op1('Reshape', [whole ? xt : sliceSpatial(ctx, xt, starts, ends, win.strides), b.int64s('shape', [cin, 1, -1])]);
  });
  const cols = b.op1('Reshape', [windows.length === 1 ? windows[0]! : b.op1('Concat', windows, { axis: 1 }), b.int64s('shape', [cin * windows.length, -1])]);
  const dYt = b.op1('Reshape', [b.op1('Transpose', [dY], { perm: [1, 0, ...spatial] }), b.int64s('shape', [cout, -1])]);
  const dW = b.op1('Gemm', [dYt, cols], { transB: 1 });
  return b.op1('Reshape', [dW, b.int64s('shape', [cout, cin, ...win.kernel])]);
}

/**
 * Per-example dW of a convolution with one input channel (a stem conv on grey images) as ONE
 * grouped Conv: the input as [1, N, ...] (each example a group), the kernels dY as [N*Cout, 1,
 * out...] dilated by the forward strides, stepping by the forward dilations, with the forward
 * pads: output tap k of group n, kernel o is sum_p dY[n, o, p] X_pad[n, 0, p*s + k*d] =
 * dW_n[o, 0, k] (taps past the kernel, when the padded input is longer, are sliced off).
 * Conv's group is an attribute, so the batch must be static (the trainer builds a static-batch
 * training graph for its full physical chunks). dp-cnn's conv1 (8x8/2, 28x28) at batch 512,
 * with the norms and the clipped sum: 33 ms against 139 ms for the per-offset slices (their 64
 * Slices and the Concat dominate), bench/dp-conv1.ts. With few offsets it loses: ResNet-8's 3x3
 * stride-1 stem made the whole GroupNorm ResNet-8 DP step at batch 256 8% slower, so it is used
 * above 9 offsets only (measured at 64 and 9; the threshold between is a guess).
 */
function perExampleWeightGradGrouped(ctx: GradContext, x: string, dY: string, g: ConvGeometry, n: number): string {
  const { b } = ctx;
  const { win, cout } = g;
  const xs = b.op1('Reshape', [x, b.int64s('shape', [1, n, ...win.input])]);
  const kernels = b.op1('Reshape', [dY, b.int64s('shape', [n * cout, 1, ...win.output])]);
  const conv = b.op1('Conv', [xs, kernels], {
    group: n, dilations: win.strides, strides: win.dilations, pads: [...win.padBegin, ...win.padEnd], kernel_shape: win.output,
  });
  const taps = win.input.map((len, i) => Math.floor((len + win.padBegin[i]! + win.padEnd[i]! - (win.strides[i]! * (win.output[i]! - 1) + 1)) / win.dilations[i]!) + 1);
  const kept = taps.every((t, i) => t === win.kernel[i])
    ? conv
    : sliceSpatial(ctx, conv, win.kernel.map(() => 0), win.kernel, win.kernel.map(() => 1));
  return b.op1('Reshape', [kept, b.int64s('shape', [n, cout, 1, ...win.kernel])]);
}

// Per example (DP-SGD): the weight's products before the batch sum, the bias's sum over space only.
registerGradient('Conv', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY) return [];
  const [x, w, bias] = ctx.node.inputs as [string, string, string | undefined];
  if (ctx.perExample[0]) noPerExample(ctx, 0, 'a parameter used as the input of a convolution');
  if (ctx.perExample[1] || ctx.perExample[2]) requireBatchAxis(ctx, x);
  const g = convGeometry(ctx);
  const dX = ctx.needsGrad[0] ? inputGrad(ctx, dY, w, g) : undefined;
  const dW = ctx.needsGrad[1] ? convWeightGrad(ctx, x, dY, g, ctx.perExample[1]) : undefined;
  let dB: string | undefined;
  if (bias && ctx.needsGrad[2]) {
    const spatial = g.win.kernel.map((_, i) => i + 2);
    dB = reduceSum(ctx, dY, ctx.perExample[2] ? spatial : [0, ...spatial], false);
  }
  return [dX, dW, dB];
}, { perExample: true });
