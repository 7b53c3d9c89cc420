/**
 * onnxruntime session options on dp-cnn's DP-SGD training graph (static batch 512, 'clip' mode,
 * the graph of the trainer's full physical chunks), interleaved in one process: graph
 * optimization level, memory pattern, CPU memory arena, intra-op spinning (2 threads only).
 * Run: [THREADS=1] [ROUNDS=7] node --import tsx bench/dp-session-options.ts
 */
import * as ort from 'onnxruntime-node';
import { buildModel } from '../models/index.js';
import { buildTrainingGraph } from '../src/passes/autodiff/training-graph.js';
import { encodeModel } from '../src/graph/io.js';
import { tensorToFloat32 } from '../src/graph/tensor.js';
import { Random } from '../src/random.js';
import { median } from './result.js';

const N = Number(process.env.BATCH ?? 512);
const threads = Number(process.env.THREADS ?? 1);
const rounds = Number(process.env.ROUNDS ?? 7);
const model = buildModel('dp-cnn', { inChannels: 1, imageSize: 28, classes: 10 });
const tg = buildTrainingGraph(model, { loss: 'cross-entropy', batchNorm: 'frozen', dp: { mode: 'clip' }, batchSize: N });
const bytes = encodeModel(tg.model.toProto());
const base: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
const variants: Record<string, ort.InferenceSession.SessionOptions> = {
  'rp-onnx default (all, arena, mem pattern)': base,
  'graphOptimizationLevel extended': { ...base, graphOptimizationLevel: 'extended' },
  'graphOptimizationLevel basic': { ...base, graphOptimizationLevel: 'basic' },
  'enableMemPattern false': { ...base, enableMemPattern: false },
  'enableCpuMemArena false': { ...base, enableCpuMemArena: false },
  ...(threads > 1 ? { 'intra-op spinning off': { ...base, extra: { session: { intra_op: { allow_spinning: '0' } } } } } : {}),
};
const rng = new Random(1);
const x = new Float32Array(N * 784); rng.fillNormal(x);
const feeds: Record<string, ort.Tensor> = {
  [tg.inputs.data[0]!]: new ort.Tensor('float32', x, [N, 1, 28, 28]),
  [tg.inputs.labels]: new ort.Tensor('int64', BigInt64Array.from({ length: N }, (_, i) => BigInt(i % 10)), [N]),
  [tg.dp!.clipInput!]: new ort.Tensor('float32', Float32Array.of(0.1), []),
};
for (const p of tg.params) feeds[p.name] = new ort.Tensor('float32', tensorToFloat32(model.graph.initializers.get(p.name)!), p.shape);
const runs = await Promise.all(Object.entries(variants).map(async ([name, o]) => ({ name, s: await ort.InferenceSession.create(bytes, o), t: [] as number[] })));
for (const r of runs) await r.s.run(feeds);
for (let i = 0; i < rounds; i++) for (const r of runs) { const t0 = performance.now(); await r.s.run(feeds); r.t.push(performance.now() - t0); }
const b0 = median(runs[0]!.t);
for (const r of runs) console.log(`${r.name.padEnd(44)} median ${median(r.t).toFixed(1).padStart(7)} ms  ratio ${(median(r.t) / b0).toFixed(3)}`);
