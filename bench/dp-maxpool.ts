/**
 * dp-cnn's pool1 (MaxPool 2x2, stride 1, [512, 16, 14, 14]) forward + backward in two
 * formulations, interleaved: the current rule (forward with Indices, ScatterElements 'add' of dY)
 * and a tie-exact mask formulation without indices (the plain MaxPool forward, then per window
 * offset in scan order Equal(X_k, Y) minus the offsets that already won, Where, Pad, Add: ties go
 * to the first maximum, as with indices). Input with ties (values rounded to 1/8) so the tie rule
 * is exercised; the check column must agree. Run: [THREADS=1] node --import tsx bench/dp-maxpool.ts
 */
import * as ort from 'onnxruntime-node';
import type { Model } from '../src/graph/ir.js';
import type { GraphBuilder } from '../src/graph/builder.js';
import { encodeModel } from '../src/graph/io.js';
import { makeTensor } from '../src/graph/tensor.js';
import { Random } from '../src/random.js';
import { benchModel } from './graph.js';
import { median } from './result.js';

const N = Number(process.env.BATCH ?? 512), C = 16, H = 14, HO = 13;
const threads = Number(process.env.THREADS ?? 1);
const inputs: [string, number[]][] = [['X', [N, C, H, H]], ['dY', [N, C, HO, HO]], ['Wt', [N, C, H, H]]];
const a = { kernel_shape: [2, 2], strides: [1, 1] };
// One output: forward result and the input gradient weighted (so both are computed and checked).
const out = (b: GraphBuilder, y: string, dx: string) => b.op1('Add', [b.op1('ReduceSum', [y], { keepdims: 0 }), b.op1('ReduceSum', [b.op1('Mul', [dx, 'Wt'])], { keepdims: 0 })]);
const variants: Record<string, Model> = {
  'indices + ScatterElements add (current rule)': benchModel(inputs, (b) => {
    const [y, idx] = b.op('MaxPool', ['X'], a, { outputs: 2 });
    const flat = b.int64s('f', [-1]);
    const z = b.op1('ConstantOfShape', [b.op1('Reshape', [b.op1('Size', ['X']), b.int64s('one', [1])])], { value: makeTensor('v', [1], new Float32Array(1)) });
    const sc = b.op1('ScatterElements', [z, b.op1('Reshape', [idx!, flat]), b.op1('Reshape', ['dY', flat])], { axis: 0, reduction: 'add' });
    return out(b, y!, b.op1('Reshape', [sc, b.op1('Shape', ['X'])]));
  }),
  'no indices: first-max masks, Where, Pad, Add': benchModel(inputs, (b) => {
    const y = b.op1('MaxPool', ['X'], a);
    const zero = b.scalar('z', 0);
    let taken: string | undefined;
    const parts: string[] = [];
    for (const [i, j] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) {
      const xk = b.op1('Slice', ['X', b.int64s('s', [i, j]), b.int64s('e', [i + HO, j + HO]), b.int64s('ax', [2, 3])]);
      const eq = b.op1('Equal', [xk, y]);
      const win = taken ? b.op1('And', [eq, b.op1('Not', [taken])]) : eq;
      taken = taken ? b.op1('Or', [taken, eq]) : eq;
      const g = b.op1('Where', [win, 'dY', zero]);
      parts.push(b.op1('Pad', [g, b.int64s('p', [0, 0, i, j, 0, 0, 1 - i, 1 - j])]));
    }
    return out(b, y, b.op1('Sum', parts));
  }),
};
const rng = new Random(1);
const data = inputs.map(([n, dims]) => {
  const v = new Float32Array(dims.reduce((p, c) => p * c, 1)); rng.fillNormal(v);
  if (n === 'X') for (let i = 0; i < v.length; i++) v[i] = Math.round(v[i]! * 8) / 8;
  return [n, new ort.Tensor('float32', v, dims)] as const;
});
const feeds = Object.fromEntries(data);
const runs = await Promise.all(Object.entries(variants).map(async ([name, m]) => ({ name, s: await ort.InferenceSession.create(encodeModel(m.toProto()), { intraOpNumThreads: threads, interOpNumThreads: 1 }), t: [] as number[], check: 0 })));
for (const r of runs) r.check = Number((Object.values(await r.s.run(feeds))[0]!.data as Float32Array)[0]);
for (let k = 0; k < Number(process.env.ROUNDS ?? 9); k++) for (const r of runs) { const t0 = performance.now(); await r.s.run(feeds); r.t.push(performance.now() - t0); }
const b0 = median(runs[0]!.t);
for (const r of runs) console.log(`${r.name.padEnd(48)} median ${median(r.t).toFixed(1).padStart(7)} ms  ratio ${(median(r.t) / b0).toFixed(2)}  check ${r.check.toPrecision(7)}`);
