/**
 * Scatter and gather by index: ScatterElements, ScatterND, GatherND. Gradient rules emit the
 * scatters (MaxPool routes its gradient to the winners, strided Slice scatters dY back), so
 * second-order gradients need these.
 *
 * Y = Scatter(data, idx, updates): the elements written get their value from `updates`, the
 * rest from `data`.
 * - reduction 'none': dData = dY with the written positions zeroed (the same scatter of zeros
 *   into dY), dUpdates = dY gathered at idx. Exact when no index repeats (the ONNX spec leaves
 *   repeated indices undefined for 'none').
 * - reduction 'add': dData = dY, dUpdates = dY gathered at idx.
 * - 'mul', 'max', 'min' are refused by name.
 * GatherND (batch_dims 0): dX = dY scatter-added into zeros (ScatterND, reduction 'add').
 * Indices get no gradient.
 */
import { registerGradient } from '../registry.js';
import type { GradContext } from '../rule.js';
import { RpOnnxError } from '../../../errors.js';
import { zerosLike } from '../emit.js';

function scatterRule(gather: 'GatherElements' | 'GatherND') {
  return (ctx: GradContext) => {
    const dY = ctx.gradOutputs[0];
    if (!dY) return [];
    const { node, b } = ctx;
    const [, idx, updates] = node.inputs as [string, string, string];
    const reduction = node.getString('reduction', 'none');
    if (reduction !== 'none' && reduction !== 'add') {
      throw new RpOnnxError(`cannot differentiate ${node.opType} node '${node.name}' with reduction '${reduction}'; only 'none' and 'add' have gradient rules`);
    }
    const attrs = gather === 'GatherElements' ? { axis: node.getInt('axis', 0) } : {};
    const dData = ctx.needsGrad[0]
      ? reduction === 'add' ? dY : b.op1(node.opType, [dY, idx, zerosLike(ctx, updates)], attrs)
      : undefined;
    const dUpdates = ctx.needsGrad[2] ? b.op1(gather, [dY, idx], attrs) : undefined;
    return [dData, undefined, dUpdates];
  };
}
registerGradient('ScatterElements', scatterRule('GatherElements'));
registerGradient('ScatterND', scatterRule('GatherND'));

registerGradient('GatherND', (ctx) => {
  const dY = ctx.gradOutputs[0];
  if (!dY || !ctx.needsGrad[0]) return [];
  const { node, b } = ctx;
  if (node.getInt('batch_dims', 0) !== 0) throw new RpOnnxError(`cannot differentiate GatherND node '${node.name}' with batch_dims != 0`);
  if (ctx.opset < 16) throw new RpOnnxError(`cannot differentiate GatherND node '${node.name}' below opset 16 (needs ScatterND with reduction)`);
  const [x, idx] = node.inputs as [string, string];
  return [b.op1('ScatterND', [zerosLike(ctx, x), idx, dY], { reduction: 'add' })];
});
