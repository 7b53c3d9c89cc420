/**
 * Inference latency of ResNet-18 64x64 batch 32 (original, perturbed I absolute, II std; 3
 * sessions, 20 rotated rounds) with onnxruntime's intra-op spinning on or off (SPIN=1|0): run
 * the two settings as separate processes, alternated, since an idle session's spinning threads
 * slow the others in one process.
 * Run: for i in 1 2 3 4; do SPIN=0 node --import tsx bench/perturb-spinning.ts; SPIN=1 node --import tsx bench/perturb-spinning.ts; done
 */
import { buildResNet } from '../models/resnet.js';
import { perturbModel } from '../src/passes/perturb.js';
import { createSession, ort } from '../src/runtime/session.js';
import { Random } from '../src/random.js';
import { median } from './result.js';
const spin = process.env.SPIN === '1';
const o = buildResNet('resnet18', { classes: 10, imageSize: 64, seed: 1 });
const p1 = perturbModel(o, { gamma: 0.1, strategy: 'I', scale: 'absolute', toolVersion: 'b' }).model;
const p2 = perturbModel(o, { gamma: 0.1, strategy: 'II', scale: 'std', toolVersion: 'b' }).model;
const ss = [await createSession(o, { threads: 2, intraOpSpinning: spin }), await createSession(p1, { threads: 2, intraOpSpinning: spin }), await createSession(p2, { threads: 2, intraOpSpinning: spin })];
const x = new Float32Array(32 * 3 * 64 * 64); new Random(0).fillNormal(x);
const feeds = { input: new ort.Tensor('float32', x, [32, 3, 64, 64]) };
for (const s of ss) for (let i = 0; i < 3; i++) await s.run(feeds);
const t = ss.map(() => [] as number[]);
for (let r = 0; r < 20; r++) for (let k = 0; k < 3; k++) { const j = (r + k) % 3; const t0 = performance.now(); await ss[j]!.run(feeds); t[j]!.push(performance.now() - t0); }
const m = t.map(median);
console.log(`spin ${spin}: original ${m[0]!.toFixed(1)} ms, I ${(m[1]! / m[0]!).toFixed(3)}, II ${(m[2]! / m[0]!).toFixed(3)}`);
