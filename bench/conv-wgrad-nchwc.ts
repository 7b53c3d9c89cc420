/**
 * A 3x3 convolution's weight gradient as one convolution on onnxruntime's NCHWc kernel:
 * dW[o, i, p, q] = sum_{n, y, x} dY[n, o, y, x] X[n, i, y + p - 1, x + q - 1] is a convolution of
 * X with channels and batch swapped ([C, N, H, W], N as channels) by dY likewise swapped ([O, N,
 * H, W] as O filters of N channels and an HxW kernel), padded by 1, giving [C, O, 3, 3]. Timed
 * against the formulation the autodiff rule emits (shifted windows by Slice + batched MatMul +
 * ReduceSum) on the DESIGN's reference layer (16 -> 16, 28x28, batch 128), interleaved.
 * Run: [THREADS=2] [ROUNDS=15] [C=16] [O=16] [H=28] node --import tsx bench/conv-wgrad-nchwc.ts
 */
import * as ort from 'onnxruntime-node';
import { Random } from '../src/random.js';
import { benchModel } from './graph.js';
import { printTimed, timeInterleaved } from './interleaved.js';
import { differentiate } from '../src/passes/autodiff/engine.js';
import { makeTensorTypeProto } from '../src/graph/ir.js';
import { GraphBuilder } from '../src/graph/builder.js';

const NCHWC = 'com.microsoft.nchwc';
const N = Number(process.env.BATCH ?? 128), C = Number(process.env.C ?? 16), O = Number(process.env.O ?? 16), H = Number(process.env.H ?? 28);
const threads = Number(process.env.THREADS ?? 2), rounds = Number(process.env.ROUNDS ?? 15), B = 8;
const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 };
const rng = new Random(1);
const data = (n: number) => { const a = new Float32Array(n); rng.fillNormal(a); return a; };
const x = data(N * C * H * H), dy = data(N * O * H * H);

// The rule's own weight gradient: differentiate a Conv with respect to its weight, seeded by dY.
const rule = (() => {
  const m = benchModel([['X', [N, C, H, H]], ['Wt', [O, C, 3, 3]]], (b) => b.op1('Conv', ['X', 'Wt'], { pads: [1, 1, 1, 1] }));
  const g = m.graph;
  g.inputs.push({ name: 'dY', type: makeTensorTypeProto({ dtype: 'float32', shape: [N, O, H, H] }) });
  const grads = differentiate(g, { seeds: new Map([[g.outputs[0]!.name, 'dY']]), wrt: ['Wt'] });
  g.outputs = [{ name: grads.get('Wt')!, type: null }];
  return m;
})();
const nchwc = benchModel([['X', [N, C, H, H]], ['dY', [N, O, H, H]]], (b: GraphBuilder) => {
  const xs = b.op1('ReorderInput', [b.op1('Transpose', ['X'], { perm: [1, 0, 2, 3] })], {}, { domain: NCHWC });
  const f = b.op1('Transpose', ['dY'], { perm: [1, 0, 2, 3] });
  const fr = b.op1('Reshape', [b.op1('Transpose', [b.op1('Reshape', [f, b.int64s('s', [O / B, B, N / B, B, H, H])])], { perm: [0, 2, 4, 5, 3, 1] }), b.int64s('s', [O, N, H, H])]);
  const y = b.op1('Conv', [xs, fr], { pads: [1, 1, 1, 1], kernel_shape: [H, H] }, { domain: NCHWC });
  return b.op1('Transpose', [b.op1('ReorderOutput', [y], { channels: O }, { domain: NCHWC })], { perm: [1, 0, 2, 3] });
});
nchwc.proto.opsetImport.push({ domain: NCHWC, version: 1 });
const feeds = { X: new ort.Tensor('float32', x, [N, C, H, H]), dY: new ort.Tensor('float32', dy, [N, O, H, H]), Wt: new ort.Tensor('float32', data(O * C * 9), [O, C, 3, 3]) };
const runs = await timeInterleaved([{ label: 'rule (Slice windows + MatMul)', model: rule }, { label: 'NCHWc conv, batch as channels', model: nchwc }], feeds, rounds, opts);
console.log(`C ${C} O ${O} ${H}x${H} batch ${N}, ${threads} threads`);
printTimed(runs, '  ');
