/**
 * Training losses, emitted with standard ops together with their gradient with respect to the
 * logits. The gradient is written in closed form (the seed of the autodiff pass) instead of
 * being differentiated through the loss ops: for softmax cross-entropy it is one subtraction,
 * (softmax - onehot) / N, where differentiating LogSoftmax + GatherElements + ReduceMean would
 * emit a dozen nodes.
 *
 * Both losses average over the batch, whose size is read at run time (any N, including the
 * last partial batch).
 */
import type { GraphBuilder } from '../../graph/builder.js';

export interface Loss {
  /** The scalar loss value. */
  loss: string;
  /** d(loss)/d(logits), same shape as the logits. */
  dLogits: string;
}

function unsqueeze1(b: GraphBuilder, x: string, opset: number): string {
  return opset >= 13 ? b.op1('Unsqueeze', [x, b.int64s('axes', [1])]) : b.op1('Unsqueeze', [x], { axes: [1] });
}

/**
 * Mean softmax cross-entropy of logits [N, K] against int64 class labels [N]:
 * loss = -(1/N) sum_n log softmax(logits_n)[label_n],  dLogits = (softmax - onehot(labels)) / N.
 */
export function crossEntropyLoss(b: GraphBuilder, logits: string, labels: string, opset: number): Loss {
  const logp = b.op1('LogSoftmax', [logits], { axis: 1 }, { name: 'loss/LogSoftmax' });
  const picked = b.op1('GatherElements', [logp, unsqueeze1(b, labels, opset)], { axis: 1 }, { name: 'loss/GatherElements' });
  const loss = b.op1('Neg', [b.op1('ReduceMean', [picked], { keepdims: 0 }, { name: 'loss/ReduceMean' })], {}, { name: 'loss/Neg' });
  const shape = b.op1('Shape', [logits]);
  const depth = b.op1('Gather', [shape, b.int64s('loss/class_axis', [1])], { axis: 0 });
  const onehot = b.op1('OneHot', [labels, depth, b.initializer('loss/onehot_values', [2], Float32Array.of(0, 1))], { axis: -1 }, { name: 'loss/OneHot' });
  const n = b.op1('Cast', [b.op1('Gather', [shape, b.int64s('loss/batch_axis', [0])], { axis: 0 })], { to: 1 });
  const dLogits = b.op1('Div', [b.op1('Sub', [b.op1('Exp', [logp]), onehot]), n], {}, { name: 'loss/dLogits' });
  return { loss, dLogits };
}

/**
 * Mean squared error against float targets of the logits' shape (mean over every element, as
 * PyTorch's MSELoss): loss = mean((y - t)^2),  dLogits = 2 (y - t) / numel.
 */
export function mseLoss(b: GraphBuilder, logits: string, targets: string): Loss {
  const diff = b.op1('Sub', [logits, targets], {}, { name: 'loss/Sub' });
  const loss = b.op1('ReduceMean', [b.op1('Mul', [diff, diff])], { keepdims: 0 }, { name: 'loss/ReduceMean' });
  const numel = b.op1('Cast', [b.op1('Size', [logits])], { to: 1 });
  const dLogits = b.op1('Div', [b.op1('Mul', [diff, b.scalar('loss/two', 2)]), numel], {}, { name: 'loss/dLogits' });
  return { loss, dLogits };
}
