/**
 * The NCHWc blocking of a fed 3x3 conv weight (src/passes/nchwc-conv.ts), OIHW [O, I, 3, 3] ->
 * OIHWBiBo, timed as one 6-D Transpose (what the pass emitted first) and as two Transposes that
 * each move contiguous runs: [O/B, Bo, I/B, Bi*9] -> [O/B, I/B, Bo, Bi*9], then within each
 * (O/B, I/B) block [Bo, Bi, 9] -> [9, Bi, Bo]. 2 threads, interleaved.
 * Run: [C=512] node --import tsx bench/weight-blocking.ts
 */
import * as ort from 'onnxruntime-node';
import { benchModel } from './graph.js';
import { printTimed, timeInterleaved } from './interleaved.js';
import { Random } from '../src/random.js';

const C = Number(process.env.C ?? 512), B = 8;
const one = benchModel([['W', [C, C, 3, 3]]], (b) =>
  b.op1('Transpose', [b.op1('Reshape', ['W', b.int64s('v', [C / B, B, C / B, B, 3, 3])])], { perm: [0, 2, 4, 5, 3, 1] }));
const two = benchModel([['W', [C, C, 3, 3]]], (b) => {
  const outer = b.op1('Transpose', [b.op1('Reshape', ['W', b.int64s('v', [C / B, B, C / B, B * 9])])], { perm: [0, 2, 1, 3] });
  const inner = b.op1('Transpose', [b.op1('Reshape', [outer, b.int64s('v2', [-1, B, B, 9])])], { perm: [0, 3, 2, 1] });
  return b.op1('Reshape', [inner, b.int64s('v3', [C / B, C / B, 3, 3, B, B])]);
});
const w = new Float32Array(C * C * 9);
new Random(1).fillNormal(w);
const runs = await timeInterleaved([{ label: 'one 6-D Transpose', model: one }, { label: 'two Transposes (contiguous runs, then within blocks)', model: two }],
  { W: new ort.Tensor('float32', w, [C, C, 3, 3]) }, Number(process.env.ROUNDS ?? 15), { intraOpNumThreads: 2 });
printTimed(runs);
