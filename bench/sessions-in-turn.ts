/**
 * Four training sessions in one process (ResNet-8 BN, perturbed, GroupNorm, ResNet-20 BN at batch
 * 128, 2 threads), stepped in turn for 10 rounds: the median step of each. What an idle session's
 * threads cost the others; used to measure onnxruntime's `session.force_spinning_stop` (set by
 * createSession), by alternating processes with and without that line of src/runtime/session.ts.
 * Run: node --import tsx bench/sessions-in-turn.ts
 */
import { Trainer } from '../src/train/trainer.js';
import { buildResNet } from '../models/index.js';
import { perturbModel } from '../src/passes/perturb.js';
import { Random } from '../src/random.js';
import { median } from './result.js';

const r8 = buildResNet('resnet8', { inChannels: 1, imageSize: 28, norm: 'batch', seed: 0 });
const models = [
  r8,
  perturbModel(r8, { gamma: 0.5, strategy: 'I', scale: 'absolute', toolVersion: 'bench' }).model,
  buildResNet('resnet8', { inChannels: 1, imageSize: 28, norm: 'group', seed: 0 }),
  buildResNet('resnet20', { inChannels: 3, imageSize: 32, norm: 'batch', seed: 0 }),
];
const rng = new Random(1);
const N = 128;
const trainers = await Promise.all(models.map((m) => Trainer.create(m, { optimizer: 'sgd', momentum: 0.9, weightDecay: 5e-4, threads: 2 })));
const xs = models.map((_, k) => Float32Array.from({ length: N * (k === 3 ? 3 * 32 * 32 : 28 * 28) }, () => rng.uniform()));
const y = Int32Array.from({ length: N }, () => rng.int(10));
for (const [k, t] of trainers.entries()) for (let i = 0; i < 2; i++) await t.step(xs[k]!, y, N, 0.01);
const times = trainers.map(() => [] as number[]);
for (let r = 0; r < 10; r++) {
  for (const [k, t] of trainers.entries()) {
    const t0 = performance.now();
    await t.step(xs[k]!, y, N, 0.01);
    times[k]!.push(performance.now() - t0);
  }
}
console.log(`median ms: resnet8 ${median(times[0]!).toFixed(1)}, perturbed ${median(times[1]!).toFixed(1)}, groupnorm ${median(times[2]!).toFixed(1)}, resnet20 ${median(times[3]!).toFixed(1)}`);
for (const t of trainers) await t.release();
