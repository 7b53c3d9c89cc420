/**
 * The plain training graph (forward, loss, backward; BatchNorm in training mode) of a built-in
 * ResNet at batch 128 as built, against the same graph with its fed-weight convolutions on
 * onnxruntime's NCHWc kernel (src/passes/nchwc-conv.ts), interleaved in one process; every output
 * (loss, gradients, batch statistics) compared.
 * Run: [MODEL=resnet8|resnet20] [THREADS=2] [ROUNDS=9] [SPIN=0] node --import tsx bench/train-nchwc.ts
 */
import * as ort from 'onnxruntime-node';
import { buildResNet } from '../models/index.js';
import { buildTrainingGraph } from '../src/passes/autodiff/training-graph.js';
import { nchwcConvolutions } from '../src/passes/nchwc-conv.js';
import { encodeModel } from '../src/graph/io.js';
import { median } from './result.js';
import { trainingFeeds } from './graph.js';

const name = process.env.MODEL ?? 'resnet8';
const N = Number(process.env.BATCH ?? 128);
const threads = Number(process.env.THREADS ?? 2);
const rounds = Number(process.env.ROUNDS ?? 9);
const block = Number(process.env.BLOCK ?? 8);
const norm = (process.env.NORM ?? 'batch') as 'batch' | 'group';
const [cin, size] = name === 'resnet8' ? [1, 28] : [3, 32];
const model = buildResNet(name, { inChannels: cin, imageSize: size, norm, seed: 0 });
const tg = buildTrainingGraph(model, { loss: 'cross-entropy', batchNorm: 'train' });
const blocked = nchwcConvolutions(tg.model, block);
console.log(`${blocked.rewritten} convolutions rewritten; skipped: ${blocked.skipped.map((s) => `${s.node} (${s.reason})`).join('; ') || 'none'}`);
const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3, extra: { session: { intra_op: { allow_spinning: process.env.SPIN === '0' ? '0' : '1' } } } };
const feeds = trainingFeeds(model, tg, N, [cin, size, size]);
const runs = await Promise.all(([['as built (generic Conv on fed weights)', tg.model], ['fed-weight Convs on NCHWc', blocked.model]] as const)
  .map(async ([label, m]) => ({ label, s: await ort.InferenceSession.create(encodeModel(m.toProto()), opts), t: [] as number[], out: {} as ort.InferenceSession.ReturnType })));
for (const r of runs) r.out = await r.s.run(feeds);
for (const other of runs.slice(1)) {
  let worst = 0;
  for (const k of Object.keys(runs[0]!.out)) {
    const a = runs[0]!.out[k]!.data as Float32Array, c = other.out[k]!.data as Float32Array;
    let num = 0, den = 0;
    for (let i = 0; i < a.length; i++) { num = Math.max(num, Math.abs(a[i]! - c[i]!)); den = Math.max(den, Math.abs(a[i]!)); }
    worst = Math.max(worst, num / (den || 1));
  }
  console.log(`${other.label}: ${Object.keys(runs[0]!.out).length} outputs, worst max|diff| / max|value| against the first ${worst.toExponential(2)}`);
}
for (let i = 0; i < rounds; i++) for (const r of runs) { const t0 = performance.now(); await r.s.run(feeds); r.t.push(performance.now() - t0); }
const b0 = median(runs[0]!.t);
console.log(`${name} (${norm} norm) batch ${N}, ${threads} threads, ${rounds} interleaved rounds, block ${block}`);
for (const r of runs) console.log(`${r.label.padEnd(44)} median ${median(r.t).toFixed(1).padStart(7)} ms  ratio ${(median(r.t) / b0).toFixed(3)}`);
