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
import { encodeModel } from '../src/graph/io.js';
import { Random } from '../src/random.js';
import { benchModel } from './graph.js';
import { median } from './result.js';
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
const runs = await Promise.all(([['rule (Slice windows + MatMul)', rule], ['NCHWc conv, batch as channels', nchwc]] as const).map(async ([label, m]) => {
  const s = await ort.InferenceSession.create(encodeModel(m.toProto()), opts);
  return { label, s, f: Object.fromEntries(s.inputNames.map((n) => [n, feeds[n as 'X']])), t: [] as number[], out: undefined as Float32Array | undefined };
}));
for (const r of runs) r.out = (await r.s.run(r.f))[r.s.outputNames[0]!]!.data as Float32Array;
for (let i = 0; i < rounds; i++) for (const r of runs) { const t0 = performance.now(); await r.s.run(r.f); r.t.push(performance.now() - t0); }
let e = 0, m = 0;
for (let i = 0; i < runs[0]!.out!.length; i++) { e = Math.max(e, Math.abs(runs[0]!.out![i]! - runs[1]!.out![i]!)); m = Math.max(m, Math.abs(runs[0]!.out![i]!)); }
console.log(`C ${C} O ${O} ${H}x${H} batch ${N}, ${threads} threads: max |diff| / max ${(e / m).toExponential(1)}`);
for (const r of runs) console.log(`  ${r.label.padEnd(34)} median ${median(r.t).toFixed(2).padStart(7)} ms  ratio ${(median(r.t) / median(runs[0]!.t)).toFixed(3)}`);
