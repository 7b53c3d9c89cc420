/**
 * Formulations of the per-example weight gradient of dp-cnn's first convolution (1 -> 16
 * channels, 8x8 kernel, stride 2, pads 3, 28x28 input, 14x14 output), followed by what DP-SGD's
 * 'clip' mode does with it: the per-example squared norms and the clipped sum over the batch.
 * Interleaved rounds in one process (the machine is shared). Used to pick the formulation in
 * src/passes/autodiff/rules/conv.ts. Run: [THREADS=1] [BATCH=512] node --import tsx bench/dp-conv1.ts
 */
import * as ort from 'onnxruntime-node';
import type { Model } from '../src/graph/ir.js';
import type { GraphBuilder } from '../src/graph/builder.js';
import { encodeModel } from '../src/graph/io.js';
import { Random } from '../src/random.js';
import { benchModel } from './graph.js';

const N = Number(process.env.BATCH ?? 512);
const threads = Number(process.env.THREADS ?? 1);
const rounds = Number(process.env.ROUNDS ?? 9);
const O = 16, H = 28, K = 8, S = 2, P = 3, OH = 14, HP = H + 2 * P;
const inputs: [string, number[]][] = [['X', [N, 1, H, H]], ['dY', [N, O, OH, OH]], ['f', [1, N]]];

/** Norms [N] and the clipped sum [1, D] of a per-example gradient [N, ...]. */
function clip(b: GraphBuilder, g: string): string {
  const flat = b.op1('Reshape', [g, b.int64s('flat', [0, -1])]);
  const sq = b.op1('ReduceSumSquare', [flat], { axes: [1], keepdims: 0 });
  const sum = b.op1('MatMul', ['f', flat]);
  return b.op1('Add', [b.op1('ReduceSum', [sq], { keepdims: 0 }), b.op1('ReduceSum', [sum], { keepdims: 0 })]);
}
const dYm = (b: GraphBuilder) => b.op1('Transpose', [b.op1('Reshape', ['dY', b.int64s('s', [0, 1, O, -1])])], { perm: [0, 1, 3, 2] });

const variants: Record<string, Model> = {
  'A 64 strided Slices + Concat + MatMul (current)': benchModel(inputs, (b) => {
    const xp = b.op1('Pad', ['X', b.int64s('p', [0, 0, P, P, 0, 0, P, P])]);
    const rows: string[] = [];
    for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) {
      const s = b.op1('Slice', [xp, b.int64s('s', [i, j]), b.int64s('e', [i + S * (OH - 1) + 1, j + S * (OH - 1) + 1]), b.int64s('a', [2, 3]), b.int64s('st', [S, S])]);
      rows.push(b.op1('Reshape', [s, b.int64s('r', [0, 1, 1, -1])]));
    }
    return clip(b, b.op1('MatMul', [b.op1('Concat', rows, { axis: 2 }), dYm(b)]));
  }),
  'B grouped Conv (group N, dY as kernel, dilation 2)': benchModel(inputs, (b) => {
    const x1 = b.op1('Reshape', ['X', b.int64s('s', [1, N, H, H])]);
    const w = b.op1('Reshape', ['dY', b.int64s('s', [N * O, 1, OH, OH])]);
    const dw = b.op1('Conv', [x1, w], { group: N, dilations: [S, S], pads: [P, P, P, P] });
    return clip(b, b.op1('Reshape', [dw, b.int64s('s', [N, O, 1, K, K])]));
  }),
  'C space-to-depth + 16 Slices + Concat + MatMul': benchModel(inputs, (b) => {
    const xp = b.op1('Pad', ['X', b.int64s('p', [0, 0, P, P, 0, 0, P, P])]);
    // [N,1,34,34] -> [N,17,2,17,2] -> [N,2,2,17,17] = phases (a, b) of x[2u + a, 2v + b]
    const s2d = b.op1('Reshape', [b.op1('Transpose', [b.op1('Reshape', [xp, b.int64s('s', [0, HP / S, S, HP / S, S])])], { perm: [0, 2, 4, 1, 3] }), b.int64s('s', [0, S * S, HP / S, HP / S])]);
    const rows: string[] = [];
    for (let i = 0; i < K / S; i++) for (let j = 0; j < K / S; j++) {
      const s = b.op1('Slice', [s2d, b.int64s('s', [i, j]), b.int64s('e', [i + OH, j + OH]), b.int64s('a', [2, 3])]);
      rows.push(b.op1('Reshape', [s, b.int64s('r', [0, 1, S * S, -1])]));
    }
    return clip(b, b.op1('MatMul', [b.op1('Concat', rows, { axis: 2 }), dYm(b)]));
  }),
  'D im2col by one-hot Conv + MatMul': benchModel(inputs, (b) => {
    const eye = new Float32Array(K * K * K * K);
    for (let k = 0; k < K * K; k++) eye[k * K * K + k] = 1;
    const e = b.initializer('eye', [K * K, 1, K, K], eye);
    const cols = b.op1('Conv', ['X', e], { strides: [S, S], pads: [P, P, P, P] });
    const c3 = b.op1('Reshape', [cols, b.int64s('s', [0, 1, K * K, -1])]);
    return clip(b, b.op1('MatMul', [c3, dYm(b)]));
  }),
  'F one Gather of the padded image (constant indices) + MatMul': benchModel(inputs, (b) => {
    const flat = b.op1('Pad', [b.op1('Reshape', ['X', b.int64s('s', [0, -1])]), b.int64s('p', [0, 0, 0, 1])]);
    const idx = new BigInt64Array(K * K * OH * OH);
    for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) for (let u = 0; u < OH; u++) for (let v = 0; v < OH; v++) {
      const r = S * u + i - P, c = S * v + j - P;
      idx[((i * K + j) * OH + u) * OH + v] = BigInt(r >= 0 && r < H && c >= 0 && c < H ? r * H + c : H * H);
    }
    const ix = b.initializer('idx', [1, K * K, OH * OH], idx, 'int64');
    const cols = b.op1('Gather', [flat, ix], { axis: 1 });
    return clip(b, b.op1('MatMul', [cols, dYm(b)]));
  }),
  'E summed only: Conv batch/channels swapped (not per example)': benchModel(inputs, (b) => {
    const xt = b.op1('Transpose', ['X'], { perm: [1, 0, 2, 3] });
    const dyt = b.op1('Transpose', ['dY'], { perm: [1, 0, 2, 3] });
    const dw = b.op1('Conv', [xt, dyt], { dilations: [S, S], pads: [P, P, P, P] });
    return b.op1('ReduceSum', [dw], { keepdims: 0 });
  }),
};

const rng = new Random(1);
const runs: { name: string; s: ort.InferenceSession; f: Record<string, ort.Tensor>; t: number[]; out: number }[] = [];
const data: Record<string, Float32Array> = {};
for (const [n, dims] of inputs) { data[n] = new Float32Array(dims.reduce((a, c) => a * c, 1)); rng.fillNormal(data[n]!); }
for (const [name, m] of Object.entries(variants)) {
  const s = await ort.InferenceSession.create(encodeModel(m.toProto()), { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  const f: Record<string, ort.Tensor> = {};
  for (const [n, dims] of inputs) if (s.inputNames.includes(n)) f[n] = new ort.Tensor('float32', data[n]!, dims);
  const o = await s.run(f);
  runs.push({ name, s, f, t: [], out: Number((Object.values(o)[0]!.data as Float32Array)[0]) });
}
for (let k = 0; k < rounds; k++) for (const r of runs) { const t0 = performance.now(); await r.s.run(r.f); r.t.push(performance.now() - t0); }
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const base = med(runs[0]!.t);
for (const r of runs) console.log(`${r.name.padEnd(62)} median ${med(r.t).toFixed(1).padStart(6)} ms  ratio ${(med(r.t) / base).toFixed(2)}  check ${r.out.toPrecision(6)}`);
