/**
 * The forward 3x3 convolution of the DESIGN's reference layer (16 -> 16 channels, 28x28, batch
 * 128, pads 1), 2 threads, no intra-op spinning, interleaved: with the weight a graph input (as in
 * every training graph, where parameters are fed each step) onnxruntime keeps the generic Conv;
 * with the weight an initializer (inference) it uses its blocked NCHWc Conv. Also the forward as
 * im2col by 9 Slices + Concat and one wide MatMul over the whole batch.
 * Run: [THREADS=2] [ROUNDS=15] node --import tsx bench/conv-forward.ts
 */
import * as ort from 'onnxruntime-node';
import { makeTensor } from '../src/graph/tensor.js';
import { Random } from '../src/random.js';
import { benchModel } from './graph.js';
import { printTimed, timeInterleaved } from './interleaved.js';

const N = 128, C = 16, O = 16, H = 28, W = 28, K = 3;
const threads = Number(process.env.THREADS ?? 2);
const rounds = Number(process.env.ROUNDS ?? 15);
const rng = new Random(1);
const data = (n: number) => { const a = new Float32Array(n); rng.fillNormal(a); return a; };
const x = data(N * C * H * W), w = data(O * C * K * K);
const asInput = benchModel([['X', [N, C, H, W]], ['Wt', [O, C, K, K]]], (b) => b.op1('Conv', ['X', 'Wt'], { pads: [1, 1, 1, 1] }));
const asInit = benchModel([['X', [N, C, H, W]]], (b) => {
  b.graph.addInitializer(makeTensor('Wt', [O, C, K, K], w));
  return b.op1('Conv', ['X', 'Wt'], { pads: [1, 1, 1, 1] });
});
const im2col = benchModel([['X', [N, C, H, W]], ['Wt', [O, C, K, K]]], (b) => {
  // X as [C, N, H+2, W+2], 9 shifted windows -> [9C, N*H*W]; W as [O, 9C] in the same order.
  const xt = b.op1('Transpose', [b.op1('Pad', ['X', b.int64s('p', [0, 0, 1, 1, 0, 0, 1, 1])])], { perm: [1, 0, 2, 3] });
  const parts: string[] = [];
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) parts.push(b.op1('Slice', [xt, b.int64s('s', [i, j]), b.int64s('e', [i + H, j + W]), b.int64s('a', [2, 3])]));
  const cols = b.op1('Reshape', [b.op1('Concat', parts, { axis: 0 }), b.int64s('r', [K * K * C, -1])]);
  const wm = b.op1('Reshape', [b.op1('Transpose', ['Wt'], { perm: [0, 2, 3, 1] }), b.int64s('r', [O, -1])]);
  const y = b.op1('MatMul', [wm, cols]);
  return b.op1('Transpose', [b.op1('Reshape', [y, b.int64s('r', [O, N, H, W])])], { perm: [1, 0, 2, 3] });
});
const feeds = { X: new ort.Tensor('float32', x, [N, C, H, W]), Wt: new ort.Tensor('float32', w, [O, C, K, K]) };
const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3, extra: { session: { intra_op: { allow_spinning: '0' } } } };
printTimed(await timeInterleaved([
  { label: 'Conv, weight a graph input (training graphs)', model: asInput },
  { label: 'Conv, weight an initializer (NCHWc)', model: asInit },
  { label: 'im2col (9 Slices + Concat) + one MatMul', model: im2col },
], feeds, rounds, opts));
