/**
 * ConvTranspose: the adjoint of Conv with respect to its input, so its gradients are Conv's
 * with the roles swapped. Our Conv and pooling rules emit it (strided input gradients,
 * AveragePool and MaxPool spreading), so second-order gradients (gradient matching, Hessian-vector
 * products) need it.
 *
 * With Y[n, o, j] = sum_{c, i, k : j = i s + k d - padBegin} X[n, c, i] W[c, o, k]:
 * - dX = Conv(dY, W) with the same strides, dilations, pads and group: Conv's window at output
 *   i reads exactly the positions j that input i wrote (the output_padding tail and the end pads
 *   become zero padding of dY, which carries no gradient). W's layout [Cin, Cout/G, k] is the
 *   layout Conv wants for Cin output channels.
 * - dW[c, o, k] = sum_{n, i} X[n, c, i] dY_pad[n, o, i s + k d]: the weight gradient of that
 *   Conv (input dY, output gradient X), reusing Conv's weight-gradient emitter.
 * - dB = dY summed over the batch and space.
 * Explicit pads (or VALID) only: output_shape and SAME auto_pad are refused by name.
 */
import { registerGradient } from '../registry.js';
import { RpOnnxError } from '../../../errors.js';
import { reduceSum } from '../emit.js';
import { convWeightGrad, type ConvGeometry } from './conv.js';
import { spatialDims } from './window.js';

registerGradient('ConvTranspose', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY) return [];
  const { node, b } = ctx;
  const [x, w, bias] = node.inputs as [string, string, string | undefined];
  const where = `gradient of ConvTranspose node '${node.name}'`;
  const autoPad = node.getString('auto_pad', 'NOTSET');
  if ((autoPad !== 'NOTSET' && autoPad !== 'VALID') || node.hasAttr('output_shape')) {
    throw new RpOnnxError(`${where}: only explicit pads are supported (not auto_pad ${autoPad} or output_shape); re-export with explicit pads`);
  }
  const xs = spatialDims(ctx, x, 'ConvTranspose');
  const r = xs.length;
  const ws = ctx.shapeOf(w);
  const kernel = node.getInts('kernel_shape') ?? ws?.slice(2).map((d) => (typeof d === 'number' ? d : NaN));
  const cin = ws?.[0];
  const perGroup = ws?.[1];
  const group = node.getInt('group', 1);
  if (!kernel || kernel.some((k) => Number.isNaN(k)) || typeof cin !== 'number' || typeof perGroup !== 'number') {
    throw new RpOnnxError(`${where}: the weight shape must be static`);
  }
  const strides = node.getInts('strides') ?? new Array<number>(r).fill(1);
  const dilations = node.getInts('dilations') ?? new Array<number>(r).fill(1);
  const pads = autoPad === 'VALID' ? new Array<number>(2 * r).fill(0) : node.getInts('pads') ?? new Array<number>(2 * r).fill(0);
  const outputPadding = node.getInts('output_padding') ?? new Array<number>(r).fill(0);
  if (outputPadding.some((p, i) => p >= strides[i]!)) throw new RpOnnxError(`${where}: output_padding must be smaller than the stride`);
  const padBegin = pads.slice(0, r);
  const padEnd = pads.slice(r);
  const out = xs.map((n, i) => strides[i]! * (n - 1) + outputPadding[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - padBegin[i]! - padEnd[i]!);

  const dX = ctx.needsGrad[0]
    ? b.op1('Conv', [dY, w], { strides, dilations, pads, kernel_shape: kernel, group: group === 1 ? undefined : group })
    : undefined;
  let dW: string | undefined;
  if (ctx.needsGrad[1]) {
    // The adjoint Conv: input dY (Cout channels, spatial `out`), output X (Cin channels, spatial xs).
    const g: ConvGeometry = { win: { input: out, kernel, strides, dilations, padBegin, padEnd, output: xs }, group, cin: perGroup * group, cout: cin };
    dW = convWeightGrad(ctx, dY, x, g);
  }
  const dB = bias && ctx.needsGrad[2] ? reduceSum(ctx, dY, [0, ...Array.from({ length: r }, (_, i) => i + 2)], false) : undefined;
  return [dX, dW, dB];
});
