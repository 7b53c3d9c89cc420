/**
 * onnxruntime's per-node profile of one training-graph run of the built-in dp-cnn: the DP-SGD
 * graph ('clip' mode) or, with DP=0, the plain one; the nodes that take the most time and the
 * totals per op type. Env: BATCH (default 512), THREADS (1), ROUNDS (5), TOP (25), PROFILE=1 for
 * the per-node table, FREEZE=pattern to freeze parameters, STATIC=1 for the static-batch graph
 * the trainer uses for full physical chunks, MODEL (default dp-cnn; e.g. resnet8) and NORM
 * (batch|group|none) for another built-in model.
 * Run: PROFILE=1 node --import tsx bench/dp-profile.ts
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { buildModel } from '../models/index.js';
import { buildTrainingGraph } from '../src/passes/autodiff/training-graph.js';
import { encodeModel } from '../src/graph/io.js';
import { tensorToFloat32 } from '../src/graph/tensor.js';
import { Random } from '../src/random.js';
const N = Number(process.env.BATCH ?? 512);
const dp = process.env.DP !== '0';
const modelName = process.env.MODEL ?? 'dp-cnn';
const model = buildModel(modelName, { inChannels: 1, imageSize: 28, classes: 10, ...(process.env.NORM ? { norm: process.env.NORM as 'batch' | 'group' | 'none' } : {}) });
const tg = buildTrainingGraph(model, { loss: 'cross-entropy', batchNorm: 'frozen', dp: dp ? { mode: 'clip' } : undefined, freeze: process.env.FREEZE ? [process.env.FREEZE] : undefined, batchSize: process.env.STATIC === '1' ? N : undefined });
const profile = process.env.PROFILE === '1';
const s = await ort.InferenceSession.create(encodeModel(tg.model.toProto()), { intraOpNumThreads: Number(process.env.THREADS ?? 1), interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', enableProfiling: profile, profileFilePrefix: '/tmp/rp-dp-profile' });
const rng = new Random(1);
const x = new Float32Array(N * 28 * 28); rng.fillNormal(x);
const feeds: Record<string, ort.Tensor> = {
  [tg.inputs.data[0]!]: new ort.Tensor('float32', x, [N, 1, 28, 28]),
  [tg.inputs.labels]: new ort.Tensor('int64', BigInt64Array.from({ length: N }, (_, i) => BigInt(i % 10)), [N]),
};
for (const p of tg.params) feeds[p.name] = new ort.Tensor('float32', tensorToFloat32(model.graph.initializers.get(p.name)!), p.shape);
if (tg.dp?.clipInput) feeds[tg.dp.clipInput] = new ort.Tensor('float32', Float32Array.of(0.1), []);
for (let i = 0; i < 2; i++) await s.run(feeds);
const times: number[] = [];
const R = Number(process.env.ROUNDS ?? 5);
for (let i = 0; i < R; i++) { const a = performance.now(); await s.run(feeds); times.push(performance.now() - a); }
times.sort((a, b) => a - b);
console.log(`${modelName}${process.env.NORM ? ` ${process.env.NORM}` : ''} dp ${dp} batch ${N}: ${tg.model.graph.nodes.length} nodes, min ${times[0]!.toFixed(1)} median ${times[times.length >> 1]!.toFixed(1)} ms => ${(N*1000/times[times.length>>1]!).toFixed(0)} ex/s`);
if (profile) {
  const file = (await (s.endProfiling() as unknown as Promise<string | undefined>)) ?? readdirSync('/tmp').filter((f) => f.startsWith('rp-dp-profile')).map((f) => `/tmp/${f}`)[0]!;
  const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string; output_type_shape?: unknown; input_type_shape?: unknown } }[];
  const byNode = new Map<string, {us:number; op:string; shape:string}>();
  for (const e of events) if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) { const k = e.name; const o = byNode.get(k) ?? {us:0, op: e.args?.op_name ?? '?', shape: JSON.stringify(e.args?.input_type_shape ?? '') + '->' + JSON.stringify(e.args?.output_type_shape ?? '')}; o.us += e.dur; byNode.set(k, o); }
  const total = [...byNode.values()].reduce((a, b) => a + b.us, 0);
  console.log('total kernel ms/step', (total/1000/(R+2)).toFixed(1));
  for (const [n, o] of [...byNode].sort((a, b) => b[1].us - a[1].us).slice(0, Number(process.env.TOP ?? 25))) console.log(`  ${(o.us / 1000 / (R + 2)).toFixed(2).padStart(7)} ms ${((100 * o.us) / total).toFixed(1).padStart(5)}% ${o.op.padEnd(14)} ${n.slice(0,60).padEnd(60)} ${o.shape.slice(0,200)}`);
  const byOp = new Map<string, number>();
  for (const o of byNode.values()) byOp.set(o.op, (byOp.get(o.op) ?? 0) + o.us);
  console.log([...byOp].sort((a,b)=>b[1]-a[1]).map(([k,v])=>`${k} ${(v/1000/(R+2)).toFixed(1)}`).join(' | '));
  rmSync(file);
}
