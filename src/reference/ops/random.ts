/**
 * Stochastic ops, made deterministic for testing. The interpreter draws no random numbers:
 *  - RandomNormal(Like) and RandomUniform(Like) read standard noise from the caller's
 *    `randomValues(node)`: N(0, 1) draws for the normal ops (output = mean + scale * z) and
 *    U[0, 1) draws for the uniform ops (output = low + (high - low) * u). Without the option the
 *    noise is all zeros, so the output is `mean` (normal) or `low` (uniform).
 *  - Bernoulli reads U[0, 1) draws u the same way: output 1 where u < p.
 *  - Dropout is an identity unless training_mode is true and the ratio is non-zero; then it
 *    needs the caller's `dropoutMask(node)` (1/true = keep) and outputs x * mask / (1 - ratio).
 */
import type { Node } from '../../graph/ir.js';
import { dtypeName } from '../../graph/tensor.js';
import { input, opError, wantsOutput, type OpContext, type OpImpl, type OpTable } from '../op.js';
import { refDType, sizeOf, type Arr, type RefDType } from '../tensor.js';

function noise(ctx: OpContext, count: number): ArrayLike<number> {
  if (!ctx.randomValues) return new Float64Array(count);
  const v = ctx.randomValues(ctx.node);
  if (v.length !== count) throw opError(ctx, `randomValues gave ${v.length} values for ${count} elements`);
  return v;
}

function outType(node: Node, fallback: RefDType): RefDType {
  const code = node.getInt('dtype');
  return code !== undefined ? refDType(dtypeName(code)) : fallback;
}

/** A random op with the shape of its input (`like`) or of its `shape` attribute. */
function randomOp(kind: 'normal' | 'uniform', like: boolean): OpImpl {
  return (ctx) => {
    const n = ctx.node;
    const src = like ? input(ctx, 0) : undefined;
    const dims = src ? [...src.dims] : n.getInts('shape', []);
    const z = noise(ctx, sizeOf(dims));
    const [a, b] = kind === 'normal'
      ? [n.getFloat('mean', 0), n.getFloat('scale', 1)]
      : [n.getFloat('low', 0), n.getFloat('high', 1) - n.getFloat('low', 0)];
    const data = Float64Array.from(z, (v) => a + b * v);
    return [{ dims, data, dtype: outType(n, src ? src.dtype : 'float64') }];
  };
}

function bernoulli(ctx: OpContext): Arr[] {
  const p = input(ctx, 0);
  const u = noise(ctx, p.data.length);
  const data = Float64Array.from(p.data, (pi, k) => (u[k]! < pi ? 1 : 0));
  return [{ dims: [...p.dims], data, dtype: outType(ctx.node, p.dtype) }];
}

function dropout(ctx: OpContext): Arr[] {
  const x = input(ctx, 0);
  const ratio = ctx.inputs[1] ? ctx.inputs[1].data[0]! : ctx.node.getFloat('ratio', 0.5);
  const training = ctx.inputs[2] ? ctx.inputs[2].data[0] !== 0 : false;
  const mask = new Float64Array(x.data.length).fill(1);
  let y = x;
  if (training && ratio !== 0) {
    if (!ctx.dropoutMask) throw opError(ctx, 'training-mode Dropout needs the dropoutMask option (the interpreter draws no random numbers)');
    const m = ctx.dropoutMask(ctx.node);
    if (m.length !== x.data.length) throw opError(ctx, `dropoutMask gave ${m.length} values for ${x.data.length} elements`);
    for (let k = 0; k < mask.length; k++) mask[k] = m[k] ? 1 : 0;
    const k = 1 / (1 - ratio);
    y = { dims: [...x.dims], data: Float64Array.from(x.data, (v, i) => v * mask[i]! * k), dtype: x.dtype };
  }
  const out: Arr[] = [y];
  if (wantsOutput(ctx, 1)) out.push({ dims: [...x.dims], data: mask, dtype: 'bool' });
  return out;
}

export const randomOps: OpTable = {
  RandomNormal: randomOp('normal', false),
  RandomNormalLike: randomOp('normal', true),
  RandomUniform: randomOp('uniform', false),
  RandomUniformLike: randomOp('uniform', true),
  Bernoulli: bernoulli,
  Dropout: dropout,
};
