/**
 * MaxPool gradient formulations timed in onnxruntime-node (2 threads), 2x2/2 and 3x3/2 windows
 * on [128, 16, 28, 28]. Run: [THREADS=1] node --import tsx bench/pool-grad.ts
 */
import * as ort from 'onnxruntime-node';
import type { Model } from '../src/graph/ir.js';
import { GraphBuilder } from '../src/graph/builder.js';
import { encodeModel } from '../src/graph/io.js';
import { makeTensor } from '../src/graph/tensor.js';
import { Random } from '../src/random.js';
import { benchModel } from './graph.js';

const N = 128, C = 16, H = 28;
const model = benchModel;
const zeros = (b: GraphBuilder, like: string) => b.op1('ConstantOfShape', [b.op1('Shape', [like])], { value: makeTensor('v', [1], new Float32Array(1)) });
const variants: Record<string, Model> = {};
for (const [k, s] of [[2, 2], [3, 2]]) {
  const Ho = Math.floor((H - k) / s) + 1;
  const X: [string, number[]] = ['X', [N, C, H, H]];
  const dY: [string, number[]] = ['dY', [N, C, Ho, Ho]];
  const a = { kernel_shape: [k, k], strides: [s, s] };
  variants[`${k}x${k}/${s} MaxPool forward`] = model([X], (b) => b.op1('MaxPool', ['X'], a));
  variants[`${k}x${k}/${s} MaxPool forward + indices`] = model([X], (b) => b.op('MaxPool', ['X'], a, { outputs: 2 })[1]!);
  variants[`${k}x${k}/${s} fwd+bwd ScatterElements add`] = model([X, dY], (b) => {
    const [, idx] = b.op('MaxPool', ['X'], a, { outputs: 2 });
    const flat = b.int64s('f', [-1]);
    const z = b.op1('Reshape', [zeros(b, 'X'), flat]);
    const sc = b.op1('ScatterElements', [z, b.op1('Reshape', [idx!, flat]), b.op1('Reshape', ['dY', flat])], { reduction: 'add' });
    return b.op1('Reshape', [sc, b.op1('Shape', ['X'])]);
  });
  if (k === s) {
    variants[`${k}x${k}/${s} fwd+bwd MaxUnpool`] = model([X, dY], (b) => {
      const [, idx] = b.op('MaxPool', ['X'], a, { outputs: 2 });
      return b.op1('MaxUnpool', ['dY', idx!, b.op1('Shape', ['X'])], a);
    });
    variants[`${k}x${k}/${s} fwd+bwd Equal mask (Resize)`] = model([X, dY], (b) => {
      const y = b.op1('MaxPool', ['X'], a);
      const scales = b.initializer('sc', [4], Float32Array.of(1, 1, k, k));
      const up = (v: string) => b.op1('Resize', [v, '', scales], { mode: 'nearest' });
      const mask = b.op1('Cast', [b.op1('Equal', ['X', up(y)])], { to: 1 });
      return b.op1('Mul', [mask, up('dY')]);
    });
  }
}
const rng = new Random(1);
const runs: { name: string; s: ort.InferenceSession; f: Record<string, ort.Tensor>; times: number[] }[] = [];
for (const [name, m] of Object.entries(variants)) {
  const s = await ort.InferenceSession.create(encodeModel(m.toProto()), { intraOpNumThreads: Number(process.env.THREADS ?? 2), interOpNumThreads: 1 });
  const f: Record<string, ort.Tensor> = {};
  for (const n of s.inputNames) {
    const dims = m.graph.inputs.find((i) => i.name === n)!.type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue));
    const a = new Float32Array(dims.reduce((x, y) => x * y, 1)); rng.fillNormal(a);
    f[n] = new ort.Tensor('float32', a, dims);
  }
  await s.run(f);
  runs.push({ name, s, f, times: [] });
}
for (let k = 0; k < 15; k++) for (const r of runs) { const t0 = performance.now(); await r.s.run(r.f); r.times.push(performance.now() - t0); }
for (const r of runs) { r.times.sort((a, b) => a - b); console.log(`${r.name.padEnd(44)} min ${r.times[0]!.toFixed(1)} ms  median ${r.times[7]!.toFixed(1)} ms`); }
