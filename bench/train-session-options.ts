/**
 * onnxruntime session options on the plain training graph (forward, loss, backward; BatchNorm in
 * training mode) of a built-in ResNet at batch 128, interleaved in one process: graph
 * optimization level, memory pattern, intra-op spinning, parallel execution mode. Sessions of one
 * process interleaved: an idle session's spinning threads slow the others, so spinning is also
 * to be compared in separate processes (bench/README.md).
 * Run: [MODEL=resnet8|resnet20] [THREADS=2] [ROUNDS=9] node --import tsx bench/train-session-options.ts
 */
import * as ort from 'onnxruntime-node';
import { buildResNet } from '../models/index.js';
import { buildTrainingGraph } from '../src/passes/autodiff/training-graph.js';
import { encodeModel } from '../src/graph/io.js';
import { printTimed, timeInterleaved } from './interleaved.js';
import { trainingFeeds } from './graph.js';

const name = process.env.MODEL ?? 'resnet8';
const N = Number(process.env.BATCH ?? 128);
const threads = Number(process.env.THREADS ?? 2);
const rounds = Number(process.env.ROUNDS ?? 9);
const [cin, size] = name === 'resnet8' ? [1, 28] : [3, 32];
const model = buildResNet(name, { inChannels: cin, imageSize: size, norm: 'batch', seed: 0 });
const tg = buildTrainingGraph(model, { loss: 'cross-entropy', batchNorm: 'train' });
const bytes = encodeModel(tg.model.toProto());
// rp-onnx's options (src/runtime/session.ts): intra-op spinning off.
const base: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3, extra: { session: { intra_op: { allow_spinning: '0' } } } };
const variants: Record<string, ort.InferenceSession.SessionOptions> = {
  'rp-onnx default (all, arena, mem pattern, no spinning)': base,
  'graphOptimizationLevel extended': { ...base, graphOptimizationLevel: 'extended' },
  'graphOptimizationLevel basic': { ...base, graphOptimizationLevel: 'basic' },
  'enableMemPattern false': { ...base, enableMemPattern: false },
  'intra-op spinning on (onnxruntime default)': { ...base, extra: { session: { intra_op: { allow_spinning: '1' } } } },
  'executionMode parallel, 2 inter-op': { ...base, executionMode: 'parallel', interOpNumThreads: 2 },
};
const feeds = trainingFeeds(model, tg, N, [cin, size, size]);
const runs = await timeInterleaved(Object.entries(variants).map(([label, options]) => ({ label, model: bytes, options })), feeds, rounds);
console.log(`${name} batch ${N}, ${threads} threads, ${rounds} interleaved rounds`);
printTimed(runs);
