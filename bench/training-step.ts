/**
 * One training step (forward + loss + backward, no optimizer) of the built-in ResNet-8 on
 * 1x28x28 inputs at batch 128, onnxruntime-node with 2 threads. With PROFILE=1 also prints the
 * ops that take the most time (onnxruntime's profiler); with NCHWC=1 the graph's fed-weight
 * convolutions run on the NCHWc kernel (src/passes/nchwc-conv.ts, as createSession does).
 * Run: [NCHWC=1] [PROFILE=1] [BATCH=128] [CIN=1 SIZE=28 CLASSES=10] node --import tsx bench/training-step.ts [resnet8] [batchNorm: train|frozen]
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { buildModel } from '../models/index.js';
import { buildTrainingGraph } from '../src/passes/autodiff/training-graph.js';
import { encodeModel } from '../src/graph/io.js';
import { trainingFeeds } from './graph.js';
import { nchwcConvolutions } from '../src/passes/nchwc-conv.js';
import { nchwcBlockSize } from '../src/runtime/nchwc.js';

const name = process.argv[2] ?? 'resnet8';
const bn = (process.argv[3] ?? 'train') as 'train' | 'frozen';
const N = Number(process.env.BATCH ?? 128);
const cin = Number(process.env.CIN ?? 1), size = Number(process.env.SIZE ?? 28);
const model = buildModel(name, { inChannels: cin, imageSize: size, classes: Number(process.env.CLASSES ?? 10) });
const t0 = performance.now();
const tg = buildTrainingGraph(model, { loss: 'cross-entropy', batchNorm: bn });
const buildMs = performance.now() - t0;
const profile = process.env.PROFILE === '1';
const block = process.env.NCHWC === '1' ? await nchwcBlockSize() : null;
const graph = block ? nchwcConvolutions(tg.model, block).model : tg.model;
const s = await ort.InferenceSession.create(encodeModel(graph.toProto()), { intraOpNumThreads: Number(process.env.THREADS ?? 2), interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } }, enableProfiling: profile, profileFilePrefix: '/tmp/rp-train-profile' });
const feeds = trainingFeeds(model, tg, N, [cin, size, size]);
for (let i = 0; i < 3; i++) await s.run(feeds);
const times: number[] = [];
for (let i = 0; i < Number(process.env.ROUNDS ?? 15); i++) {
  const a = performance.now();
  await s.run(feeds);
  times.push(performance.now() - a);
}
times.sort((a, b) => a - b);
console.log(`${name} batch ${N} BN ${bn}${block ? `, NCHWc block ${block}` : ''}: ${graph.graph.nodes.length} nodes (built in ${buildMs.toFixed(0)} ms), step min ${times[0]!.toFixed(1)} ms, median ${times[times.length >> 1]!.toFixed(1)} ms`);
if (profile) {
  const file = (await (s.endProfiling() as unknown as Promise<string | undefined>)) ?? readdirSync("/tmp").filter((f) => f.startsWith("rp-train-profile")).map((f) => `/tmp/${f}`)[0]!;
  const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
  const byOp = new Map<string, number>();
  for (const e of events) if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) byOp.set(e.args?.op_name ?? '?', (byOp.get(e.args?.op_name ?? '?') ?? 0) + e.dur);
  const total = [...byOp.values()].reduce((a, b) => a + b, 0);
  for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1]).slice(0, 18)) console.log(`  ${op.padEnd(22)} ${(us / 1000 / (times.length + 3)).toFixed(2)} ms/step  ${((100 * us) / total).toFixed(1)}%`);
  // NODES=Op: that op's heaviest nodes with their shapes.
  if (process.env.NODES) {
    const byNode = new Map<string, { us: number; shape: string }>();
    for (const e of events as { cat: string; name: string; dur: number; args?: { op_name?: string; input_type_shape?: unknown; output_type_shape?: unknown } }[]) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.args?.op_name !== process.env.NODES) continue;
      const n = byNode.get(e.name) ?? { us: 0, shape: `${JSON.stringify(e.args.input_type_shape)} -> ${JSON.stringify(e.args.output_type_shape)}` };
      n.us += e.dur;
      byNode.set(e.name, n);
    }
    for (const [n, v] of [...byNode].sort((a, b) => b[1].us - a[1].us).slice(0, 12)) console.log(`    ${(v.us / 1000 / (times.length + 3)).toFixed(2).padStart(8)} ms ${n.slice(0, 50).padEnd(50)} ${v.shape.slice(0, 160)}`);
  }
  rmSync(file);
}
