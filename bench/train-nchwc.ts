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
import { printTimed, timeInterleaved } from './interleaved.js';
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
const runs = await timeInterleaved([{ label: 'as built (generic Conv on fed weights)', model: tg.model }, { label: 'fed-weight Convs on NCHWc', model: blocked.model }], feeds, rounds, opts);
console.log(`${name} (${norm} norm) batch ${N}, ${threads} threads, ${rounds} interleaved rounds, block ${block}; every output (loss, gradients, statistics) compared`);
printTimed(runs);
