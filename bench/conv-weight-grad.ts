/**
 * Formulations of a 3x3 convolution's weight gradient (and input gradient) in standard ONNX ops,
 * timed in onnxruntime-node with 2 threads on the DESIGN's reference layer: 16 -> 16 channels,
 * 28x28, batch 128, pads 1. Run: node --import tsx bench/conv-weight-grad.ts
 * With FWDBWD=1, each weight-gradient formulation is timed inside a whole forward + backward
 * (forward Conv, input gradient, weight gradient). THREADS (default 2), ROUNDS, BATCH, and the
 * layer's C, O (default C) and H (= W) for other layers than the reference one.
 * Used to pick the formulation in src/passes/autodiff/rules/conv.ts. Wall-clock minimum and
 * median, and the median CPU time of the process per run (all threads; the fairer number on a
 * shared machine).
 */
import * as ort from 'onnxruntime-node';
import { type Model, makeTensorTypeProto } from '../src/graph/ir.js';
import { GraphBuilder } from '../src/graph/builder.js';
import { encodeModel } from '../src/graph/io.js';
import { Random } from '../src/random.js';
import { makeTensor } from '../src/graph/tensor.js';
import { differentiate } from '../src/passes/autodiff/engine.js';
import { benchModel } from './graph.js';

const N = Number(process.env.BATCH ?? 128), C = Number(process.env.C ?? 16), O = Number(process.env.O ?? C), H = Number(process.env.H ?? 28), W = H, K = 3;
const threads = Number(process.env.THREADS ?? 2);

const model = benchModel;

const offsets = (b: GraphBuilder, x: string, axesHW: [number, number]) => {
  const out: string[] = [];
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) {
    out.push(b.op1('Slice', [x, b.int64s('s', [i, j]), b.int64s('e', [i + H, j + W]), b.int64s('a', axesHW)]));
  }
  return out;
};
const pad = (b: GraphBuilder, x: string) => b.op1('Pad', [x, b.int64s('p', [0, 0, 1, 1, 0, 0, 1, 1])]);

const XI: [string, number[]][] = [['X', [N, C, H, W]], ['dY', [N, O, H, W]]];
const XWI: [string, number[]][] = [['X', [N, C, H, W]], ['Wt', [O, C, K, K]], ['dY', [N, O, H, W]]];
/** Forward Conv + input gradient (flipped-kernel Conv) + the weight gradient `dW` builds; outputs summed to one. */
function fwdBwd(dW: (b: GraphBuilder) => string): Model {
  return model(XWI, (b) => {
    const y = b.op1('Conv', ['X', 'Wt'], { pads: [1, 1, 1, 1] });
    const wt = b.op1('Transpose', ['Wt'], { perm: [1, 0, 2, 3] });
    const flip = b.op1('Slice', [wt, b.int64s('s', [-1, -1]), b.int64s('e', [-(2 ** 62), -(2 ** 62)]), b.int64s('a', [2, 3]), b.int64s('st', [-1, -1])]);
    const dx = b.op1('Conv', ['dY', flip], { pads: [1, 1, 1, 1] });
    const dw = dW(b);
    // One output that depends on all three results.
    const r = (v: string) => b.op1('ReduceSum', [v], { keepdims: 0 });
    return b.op1('Sum', [r(y), r(dx), r(dw)]);
  });
}
const variants: Record<string, Model> = {
  'forward Conv': model([['X', [N, C, H, W]], ['Wt', [O, C, K, K]]], (b) => b.op1('Conv', ['X', 'Wt'], { pads: [1, 1, 1, 1] })),
  'dX ConvTranspose': model([['dY', [N, O, H, W]], ['Wt', [O, C, K, K]]], (b) => b.op1('ConvTranspose', ['dY', 'Wt'], { pads: [1, 1, 1, 1] })),
  'dX Conv(flipped W^T)': model([['dY', [N, O, H, W]], ['Wt', [O, C, K, K]]], (b) => {
    const wt = b.op1('Transpose', ['Wt'], { perm: [1, 0, 2, 3] });
    const flip = b.op1('Slice', [wt, b.int64s('s', [-1, -1]), b.int64s('e', [-(2 ** 62), -(2 ** 62)]), b.int64s('a', [2, 3]), b.int64s('st', [-1, -1])]);
    return b.op1('Conv', ['dY', flip], { pads: [1, 1, 1, 1] });
  }),
};
const dwBuilders: Record<string, (b: GraphBuilder) => string> = {
  'dW A: Conv, batch/channels swapped': (b) => {
    const xt = b.op1('Transpose', ['X'], { perm: [1, 0, 2, 3] });
    const gt = b.op1('Transpose', ['dY'], { perm: [1, 0, 2, 3] });
    return b.op1('Transpose', [b.op1('Conv', [xt, gt], { pads: [1, 1, 1, 1] })], { perm: [1, 0, 2, 3] });
  },
  'dW B: 9 Slices + Concat + batched MatMul + ReduceSum': (b) => {
    const cols = b.op1('Reshape', [b.op1('Concat', offsets(b, pad(b, 'X'), [2, 3]), { axis: 1 }), b.int64s('r', [0, K * K * C, H * W])]);
    const g = b.op1('Transpose', [b.op1('Reshape', ['dY', b.int64s('r', [0, O, H * W])])], { perm: [0, 2, 1] });
    const s = b.op1('ReduceSum', [b.op1('MatMul', [cols, g]), b.int64s('ax', [0])], { keepdims: 0 });
    return b.op1('Transpose', [b.op1('Reshape', [s, b.int64s('r', [K, K, C, O])])], { perm: [3, 2, 0, 1] });
  },
  'dW C: Transpose + 9 Slices + Concat + one Gemm': (b) => {
    const xt = b.op1('Transpose', [pad(b, 'X')], { perm: [1, 0, 2, 3] });
    const cols = b.op1('Reshape', [b.op1('Concat', offsets(b, xt, [2, 3]), { axis: 0 }), b.int64s('r', [K * K * C, -1])]);
    const g = b.op1('Reshape', [b.op1('Transpose', ['dY'], { perm: [1, 0, 2, 3] }), b.int64s('r', [O, -1])]);
    const s = b.op1('Gemm', [g, cols], { transB: 1 });
    return b.op1('Transpose', [b.op1('Reshape', [s, b.int64s('r', [O, K, K, C])])], { perm: [0, 3, 1, 2] });
  },
  'dW C2: Transpose + 9 Slices + 9 Gemm + Concat': (b) => {
    const xt = b.op1('Transpose', [pad(b, 'X')], { perm: [1, 0, 2, 3] });
    const g = b.op1('Reshape', [b.op1('Transpose', ['dY'], { perm: [1, 0, 2, 3] }), b.int64s('r', [O, -1])]);
    const parts = offsets(b, xt, [2, 3]).map((s) => b.op1('Gemm', [g, b.op1('Reshape', [s, b.int64s('r', [C, -1])])], { transB: 1 }));
    const s = b.op1('Concat', parts, { axis: 1 });
    return b.op1('Transpose', [b.op1('Reshape', [s, b.int64s('r', [O, K, K, C])])], { perm: [0, 3, 1, 2] });
  },
  'dW D: 9 Slices + Einsum': (b) => {
    const st = b.op1('Concat', offsets(b, pad(b, 'X'), [2, 3]).map((s) => b.op1('Unsqueeze', [s, b.int64s('u', [1])])), { axis: 1 });
    const e = b.op1('Einsum', [st, 'dY'], { equation: 'nkchw,nohw->okc' });
    return b.op1('Reshape', [b.op1('Transpose', [e], { perm: [0, 2, 1] }), b.int64s('r', [O, C, K, K])]);
  },
  'dW E: NHWC 9 Slices + Concat + one Gemm': (b) => {
    const xn = b.op1('Transpose', [pad(b, 'X')], { perm: [0, 2, 3, 1] });
    const cols = b.op1('Reshape', [b.op1('Concat', offsets(b, xn, [1, 2]), { axis: 3 }), b.int64s('r', [-1, K * K * C])]);
    const g = b.op1('Reshape', [b.op1('Transpose', ['dY'], { perm: [0, 2, 3, 1] }), b.int64s('r', [-1, O])]);
    const s = b.op1('Gemm', [cols, g], { transA: 1 });
    return b.op1('Transpose', [b.op1('Reshape', [s, b.int64s('r', [K, K, C, O])])], { perm: [3, 2, 0, 1] });
  },
  'dW F: 9 Slices + batched MatMul each + ReduceSum': (b) => {
    const g = b.op1('Transpose', [b.op1('Reshape', ['dY', b.int64s('r', [0, O, H * W])])], { perm: [0, 2, 1] });
    const parts = offsets(b, pad(b, 'X'), [2, 3]).map((s) => b.op1('MatMul', [b.op1('Reshape', [s, b.int64s('r', [0, C, H * W])]), g]));
    const s = b.op1('ReduceSum', [b.op1('Concat', parts, { axis: 1 }), b.int64s('ax', [0])], { keepdims: 0 });
    return b.op1('Transpose', [b.op1('Reshape', [s, b.int64s('r', [K, K, C, O])])], { perm: [3, 2, 0, 1] });
  },
  'dW H: flat windows (one Slice of the flattened padded input per offset) + batched MatMul each + ReduceSum': (b) => {
    // X padded to [N, C, H+3, W+2] (one extra bottom row so the last offset's run fits), flattened;
    // offset (i, j) is the contiguous run [i*(W+2)+j, +H*(W+2)); dY padded right to W+2 with zeros
    // so the run's two wrapped columns contribute nothing.
    const Wp = W + 2, L = H * Wp;
    const xf = b.op1('Reshape', [b.op1('Pad', ['X', b.int64s('p', [0, 0, 1, 1, 0, 0, 2, 1])]), b.int64s('r', [0, C, -1])]);
    const gp = b.op1('Reshape', [b.op1('Pad', ['dY', b.int64s('p', [0, 0, 0, 0, 0, 0, 0, 2])]), b.int64s('r', [0, O, L])]);
    const g = b.op1('Transpose', [gp], { perm: [0, 2, 1] });
    const parts: string[] = [];
    for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) {
      const o = i * Wp + j;
      parts.push(b.op1('MatMul', [b.op1('Slice', [xf, b.int64s('s', [o]), b.int64s('e', [o + L]), b.int64s('a', [2])]), g]));
    }
    const s = b.op1('ReduceSum', [b.op1('Concat', parts, { axis: 1 }), b.int64s('ax', [0])], { keepdims: 0 });
    return b.op1('Transpose', [b.op1('Reshape', [s, b.int64s('r', [K, K, C, O])])], { perm: [3, 2, 0, 1] });
  },
  'dW I: batch folded (X, dY transposed to [C, N, ...]), channel-major im2col, one Gemm': (b) => {
    const xt = b.op1('Transpose', [pad(b, 'X')], { perm: [1, 0, 2, 3] });
    const cols = b.op1('Concat', offsets(b, xt, [2, 3]).map((w) => b.op1('Unsqueeze', [w, b.int64s('u', [1])])), { axis: 1 });
    const g = b.op1('Reshape', [b.op1('Transpose', ['dY'], { perm: [1, 0, 2, 3] }), b.int64s('r', [O, -1])]);
    const s = b.op1('Gemm', [g, b.op1('Reshape', [cols, b.int64s('r', [C * K * K, -1])])], { transB: 1 });
    return b.op1('Reshape', [s, b.int64s('r', [O, C, K, K])]);
  },
  'dW J: per image, channel-major im2col, dY as the left operand, no final Transpose': (b) => {
    const rows = b.op1('Concat', offsets(b, pad(b, 'X'), [2, 3]).map((w) => b.op1('Unsqueeze', [w, b.int64s('u', [2])])), { axis: 2 });
    const r2 = b.op1('Reshape', [rows, b.int64s('r', [0, C * K * K, H * W])]);
    const g = b.op1('Reshape', ['dY', b.int64s('r', [0, O, H * W])]);
    const s = b.op1('ReduceSum', [b.op1('MatMul', [g, b.op1('Transpose', [r2], { perm: [0, 2, 1] })]), b.int64s('ax', [0])], { keepdims: 0 });
    return b.op1('Reshape', [s, b.int64s('r', [O, C, K, K])]);
  },
  'dW G: unfold by one Conv (one-hot kernels) + batched MatMul + ReduceSum': (b) => {
    const eye = new Float32Array(K * K * K * K);
    for (let k = 0; k < K * K; k++) eye[k * K * K + k] = 1;
    const planes = b.op1('Reshape', ['X', b.int64s('r', [-1, 1, H, W])]);
    const cols = b.op1('Conv', [planes, b.initializer('eye', [K * K, 1, K, K], eye)], { pads: [1, 1, 1, 1] });
    const c2 = b.op1('Reshape', [cols, b.int64s('r', [-1, C * K * K, H * W])]);
    const g = b.op1('Transpose', [b.op1('Reshape', ['dY', b.int64s('r', [0, O, H * W])])], { perm: [0, 2, 1] });
    const s = b.op1('ReduceSum', [b.op1('MatMul', [c2, g]), b.int64s('ax', [0])], { keepdims: 0 });
    return b.op1('Transpose', [b.op1('Reshape', [s, b.int64s('r', [C, K * K, O])])], { perm: [2, 0, 1] });
  },
};

// What the Conv gradient rule actually emits (forward Conv, dX and dW from the engine).
if (process.env.FWDBWD === '1') {
  const m = model([['X', [N, C, H, W]], ['dY', [N, O, H, W]]], (b) => {
    b.graph.addInitializer(makeTensor('Wt', [O, C, K, K], new Float32Array(O * C * K * K).fill(0.1)));
    b.graph.inputs.push({ name: 'Wt', type: makeTensorTypeProto({ dtype: 'float32', shape: [O, C, K, K] }) });
    const y = b.op1('Conv', ['X', 'Wt'], { pads: [1, 1, 1, 1] });
    const grads = differentiate(b.graph, { wrt: ['X', 'Wt'], seeds: new Map([[y, 'dY']]) });
    const r = (v: string) => b.op1('ReduceSum', [v], { keepdims: 0 });
    return b.op1('Sum', [r(y), r(grads.get('X')!), r(grads.get('Wt')!)]);
  });
  m.graph.initializers.delete('Wt');
  variants['fwd+bwd as emitted by the Conv rule'] = m;
}
for (const [k, build] of Object.entries(dwBuilders)) {
  if (process.env.FWDBWD === '1') variants[`fwd+bwd ${k.slice(3)}`] = fwdBwd(build);
  else variants[k] = model(XI, build);
}

const rng = new Random(1);
const data = (dims: number[]) => { const a = new Float32Array(dims.reduce((x, y) => x * y, 1)); rng.fillNormal(a); return a; };
const only = process.argv[2];
const ref = new Map<string, Float32Array>();
const feeds: Record<string, ort.Tensor> = {
  X: new ort.Tensor('float32', data([N, C, H, W]), [N, C, H, W]),
  dY: new ort.Tensor('float32', data([N, O, H, W]), [N, O, H, W]),
  Wt: new ort.Tensor('float32', data([O, C, K, K]), [O, C, K, K]),
};
// Sessions are timed in interleaved rounds (the machine is shared: noise hits all alike).
const runs: { name: string; s: ort.InferenceSession; f: Record<string, ort.Tensor>; times: number[]; cpu: number[]; out?: Float32Array }[] = [];
for (const [name, m] of Object.entries(variants)) {
  if (only && !name.includes(only)) continue;
  const s = await ort.InferenceSession.create(encodeModel(m.toProto()), { intraOpNumThreads: threads, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: process.env.SPIN ?? '0' } } } });
  const f = Object.fromEntries(s.inputNames.map((n) => [n, feeds[n]!]));
  for (let i = 0; i < 2; i++) await s.run(f);
  runs.push({ name, s, f, times: [], cpu: [] });
}
const rounds = Number(process.env.ROUNDS ?? 15);
for (let k = 0; k < rounds; k++) {
  for (const r of runs) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const o = await r.s.run(r.f);
    r.times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    r.cpu.push((c.user + c.system) / 1000);
    r.out = o[r.s.outputNames[0]!]!.data as Float32Array;
  }
}
for (const r of runs) {
  r.times.sort((a, b) => a - b);
  r.cpu.sort((a, b) => a - b);
  // Every dW formulation must agree with the first one.
  let agree = '';
  if (r.name.startsWith('dW') || r.name.startsWith('fwd+bwd')) {
    const first = ref.get('dW');
    if (!first) ref.set('dW', r.out!);
    else { let e = 0, m = 0; for (let i = 0; i < first.length; i++) { e = Math.max(e, Math.abs(first[i]! - r.out![i]!)); m = Math.max(m, Math.abs(first[i]!)); } agree = ` (max diff vs first ${(e / m).toExponential(1)} rel)`; }
  }
  console.log(`${r.name.padEnd(52)} min ${r.times[0]!.toFixed(1)} ms  median ${r.times[r.times.length >> 1]!.toFixed(1)} ms  cpu ${r.cpu[r.cpu.length >> 1]!.toFixed(1)} ms${agree}`);
  await r.s.release();
}
