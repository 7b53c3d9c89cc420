/**
 * DP-SGD's per-example mode of the autodiff pass: the gradient of each parameter with the batch
 * axis kept, [N, ...paramShape], example n's row being the gradient of example n's loss alone.
 * Computed in the one backward pass (not N passes): the gradients flowing through activations are
 * per example already (an example's loss reaches only its own row, as long as no op mixes
 * examples), so a parameter's consumer only has to skip its sum over the batch.
 *
 * The engine (./engine.ts) flags, in `GradContext.perExample`, the inputs that are DP parameters
 * or values derived only from them through parameter-path ops (Reshape, Flatten, Transpose,
 * Squeeze, Unsqueeze, Cast, Identity: registry trait `parameterPath`, whose rules map an
 * [N, ...outShape] gradient back to [N, ...inShape]). Rules registered with the `perExample`
 * trait honour the flag (one small branch in each family's file, Opacus-style):
 *   Conv (weight: per-offset slices times dY without the batch sum; bias: dY summed over space),
 *   Gemm (B: alpha a_n (outer) dy_n, any transA/transB; C: beta dY reduced per example),
 *   MatMul with a weight operand on either side (the batched product without the batch sum),
 *   elementwise Add/Sub/Mul/Div/Pow/Sum/Mean/Max/Min with a broadcast parameter (the partial
 *   derivative summed over the broadcast axes except 0: GroupNorm/LayerNorm affine weights in
 *   decomposed form), LayerNormalization/GroupNormalization/InstanceNormalization scale and bias,
 *   BatchNormalization with running statistics (a per-channel affine map), PRelu's slope.
 * Errors (one line, naming the op): a parameter reaching any other op or transformed by
 * arithmetic before it meets the data; an activation between the parameters and the logits
 * whose batch axis is merged, reduced or unknown (engine); the examples not on the axis a rule
 * needs (`requireBatchAxis`); BatchNormalization with batch statistics, which mixes examples
 * (refused by the training graph, and by the rule). Ops that mix examples while keeping the
 * batch axis in place (a Softmax over axis 0) are not detected.
 */
import type { Dim } from '../../graph/ir.js';
import type { GradContext } from './rule.js';
import { RpOnnxError } from '../../errors.js';
import { reduceSum } from './emit.js';

/** Stops unless `value` (shape `shape`, default its static shape) has the batch on `axis`. */
export function requireBatchAxis(ctx: GradContext, value: string, axis = 0, shape?: readonly Dim[] | null): void {
  if (ctx.batchDim === undefined) return;
  const s = shape === undefined ? ctx.shapeOf(value) : shape;
  if (s?.[axis] !== ctx.batchDim) {
    noPerExample(ctx, Math.max(0, ctx.perExample.indexOf(true)), `the examples (${ctx.batchDim}) must be on axis ${axis} of '${value}', whose shape is ${s ? `[${s.map((d) => d ?? '?').join(', ')}]` : 'unknown'}`);
  }
}

/**
 * `grad` ([N, ...], shape `gShape`, batch on axis 0) summed over the axes along which an operand
 * of shape `target` was broadcast, except the batch axis, and reshaped to [N, ...target]. The
 * operand's own axis 0 may align with the batch axis only when it is 1 (shared by the examples).
 */
export function perExampleReduce(ctx: GradContext, grad: string, gShape: readonly Dim[] | null, target: readonly Dim[] | null, what: string): string {
  const where = `per-example gradient of '${what}' at ${ctx.node.opType} node '${ctx.node.name}'`;
  if (!gShape || !target || target.some((d) => typeof d !== 'number')) {
    throw new RpOnnxError(`${where}: static shapes are needed (run shape inference / export with static parameter shapes)`);
  }
  requireBatchAxis(ctx, ctx.node.outputs[0]!, 0, gShape);
  const lead = gShape.length - target.length;
  if (lead < 0 || (lead === 0 && target[0] !== 1)) {
    throw new RpOnnxError(`${where}: the parameter [${target.join(', ')}] spans the batch axis of [${gShape.join(', ')}], so it is not shared by the examples`);
  }
  const axes: number[] = [];
  for (let i = 1; i < gShape.length; i++) {
    const td = i - lead >= 0 ? (target[i - lead] as number) : undefined;
    if (td === undefined || (td === 1 && gShape[i] !== 1)) axes.push(i);
  }
  const summed = axes.length > 0 ? reduceSum(ctx, grad, axes, true) : grad;
  return ctx.b.op1('Reshape', [summed, ctx.b.int64s('shape', [-1, ...(target as number[])])]);
}

/** perExampleReduce towards `operand`; `gShape` defaults to the node's first output's shape. */
export function perExampleUnbroadcast(ctx: GradContext, grad: string, operand: string, gShape?: readonly Dim[] | null): string {
  return perExampleReduce(ctx, grad, gShape === undefined ? ctx.shapeOf(ctx.node.outputs[0]!) : gShape, ctx.shapeOf(operand), operand);
}

/** [N, ...] gradient reshaped to [N, ...shape of `like`] (static when known, else at run time). */
export function perExampleReshape(ctx: GradContext, grad: string, like: string): string {
  const s = ctx.shapeOf(like);
  const b = ctx.b;
  if (s && s.every((d) => typeof d === 'number')) return b.op1('Reshape', [grad, b.int64s('shape', [-1, ...(s as number[])])]);
  return b.op1('Reshape', [grad, b.op1('Concat', [b.int64s('batch', [-1]), b.op1('Shape', [like])], { axis: 0 })]);
}

/** A rule's refusal of one per-example input, as the one-line error the engine reports. */
export function noPerExample(ctx: GradContext, slot: number, why: string): never {
  throw new RpOnnxError(`per-example gradients (DP-SGD): input ${slot} ('${ctx.node.inputs[slot]}') of ${ctx.node.opType} node '${ctx.node.name}' is not supported: ${why}`);
}
