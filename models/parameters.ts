/**
 * Parameter counts as papers and torchvision report them: every floating-point initializer
 * that training updates (weights, biases, normalisation scale and shift), not the running
 * statistics of BatchNormalization, which are buffers.
 */
import type { Model } from '../src/graph/ir.js';
import { elementCount, tensorDims, dtypeName, isFloatDType } from '../src/graph/tensor.js';

export interface ParameterCount {
  /** Elements of trainable floating-point initializers. */
  trainable: number;
  /** Elements of BatchNormalization running means and variances. */
  buffers: number;
  /** Number of trainable initializers (tensors, not elements). */
  tensors: number;
}

export function countParameters(model: Model): ParameterCount {
  const g = model.graph;
  const buffers = new Set<string>();
  for (const n of g.nodes) {
    if (n.opType === 'BatchNormalization' && n.isStandard) for (const v of n.inputs.slice(3, 5)) if (v) buffers.add(v);
  }
  const count: ParameterCount = { trainable: 0, buffers: 0, tensors: 0 };
  for (const [name, t] of g.initializers) {
    if (!isFloatDType(dtypeName(t.dataType))) continue;
    const n = elementCount(tensorDims(t));
    if (buffers.has(name)) count.buffers += n;
    else {
      count.trainable += n;
      count.tensors += 1;
    }
  }
  return count;
}
