/**
 * Geometry of sliding-window ops (Conv, pooling): kernel, strides, dilations, the explicit pads
 * that auto_pad stands for, and output sizes, all resolved statically from the forward node and
 * the input's spatial dimensions.
 */
import type { Node, Dim } from '../../../graph/ir.js';
import type { GradContext } from '../rule.js';
import { RpOnnxError } from '../../../errors.js';

export interface Window {
  /** Spatial sizes of the input (static). */
  input: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  padBegin: number[];
  padEnd: number[];
  /** Spatial sizes of the output. */
  output: number[];
}

/** The input's static spatial dims, or an error naming the node. */
export function spatialDims(ctx: GradContext, x: string, what: string): number[] {
  const s = ctx.shapeOf(x);
  const sp: Dim[] | undefined = s?.slice(2);
  if (!sp || sp.length === 0 || !sp.every((d): d is number => typeof d === 'number')) {
    throw new RpOnnxError(
      `gradient of ${what} node '${ctx.node.name}': the spatial dimensions of '${x}' must be static (got [${s?.join(', ') ?? 'unknown rank'}]); export the model with a fixed image size`,
    );
  }
  return sp;
}

/**
 * Resolves a window op's geometry. `kernel` comes from the weight for Conv (kernel_shape is
 * optional there) and from kernel_shape for pooling.
 */
export function resolveWindow(node: Node, input: number[], kernel: number[], ceilMode = false): Window {
  const r = input.length;
  const strides = node.getInts('strides') ?? new Array<number>(r).fill(1);
  const dilations = node.getInts('dilations') ?? new Array<number>(r).fill(1);
  const autoPad = node.getString('auto_pad', 'NOTSET');
  let padBegin: number[];
  let padEnd: number[];
  const eff = (i: number) => (kernel[i]! - 1) * dilations[i]! + 1;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    padBegin = [];
    padEnd = [];
    for (let i = 0; i < r; i++) {
      const out = Math.ceil(input[i]! / strides[i]!);
      const total = Math.max(0, (out - 1) * strides[i]! + eff(i) - input[i]!);
      const small = Math.floor(total / 2);
      padBegin.push(autoPad === 'SAME_UPPER' ? small : total - small);
      padEnd.push(autoPad === 'SAME_UPPER' ? total - small : small);
    }
  } else if (autoPad === 'VALID') {
    padBegin = new Array<number>(r).fill(0);
    padEnd = new Array<number>(r).fill(0);
  } else {
    const pads = node.getInts('pads') ?? new Array<number>(2 * r).fill(0);
    padBegin = pads.slice(0, r);
    padEnd = pads.slice(r, 2 * r);
  }
  const output = input.map((n, i) => {
    const span = n + padBegin[i]! + padEnd[i]! - eff(i);
    if (!ceilMode) return Math.floor(span / strides[i]!) + 1;
    let out = Math.ceil(span / strides[i]!) + 1;
    // The last window must start inside the input or its leading pad (PyTorch and onnxruntime).
    if ((out - 1) * strides[i]! >= n + padBegin[i]!) out--;
    return out;
  });
  return { input, kernel, strides, dilations, padBegin, padEnd, output };
}

/** Every kernel offset (row-major over the kernel's spatial dims). */
export function kernelOffsets(kernel: readonly number[]): number[][] {
  let out: number[][] = [[]];
  for (const k of kernel) out = out.flatMap((o) => Array.from({ length: k }, (_, i) => [...o, i]));
  return out;
}
