/**
 * One Trainer step (forward, loss, backward, SGD momentum update; what `rp-onnx train` runs) of a
 * built-in ResNet at batch 128, 2 threads, in THIS process: run it in separate processes with
 * RP_ONNX_NCHWC=0 and =1 alternated to compare the convolution kernels without one session's
 * threads disturbing the other's (bench/README.md).
 * Run: [MODEL=resnet8|resnet20] [NORM=batch|group] [ROUNDS=15] node --import tsx bench/trainer-step-ab.ts
 */
import { Trainer } from '../src/train/trainer.js';
import { buildResNet } from '../models/index.js';
import { Random } from '../src/random.js';
import { median } from './result.js';

const name = process.env.MODEL ?? 'resnet8';
const norm = (process.env.NORM ?? 'batch') as 'batch' | 'group';
const [cin, size] = name === 'resnet8' ? [1, 28] : [3, 32];
const N = 128;
const t = await Trainer.create(buildResNet(name, { inChannels: cin, imageSize: size, norm, seed: 0 }), { optimizer: 'sgd', momentum: 0.9, weightDecay: 5e-4, threads: 2 });
const rng = new Random(1);
const x = Float32Array.from({ length: N * cin * size * size }, () => rng.uniform());
const y = Int32Array.from({ length: N }, () => rng.int(10));
for (let i = 0; i < 3; i++) await t.step(x, y, N, 0.01);
const times: number[] = [];
for (let i = 0; i < Number(process.env.ROUNDS ?? 15); i++) {
  const t0 = performance.now();
  await t.step(x, y, N, 0.01);
  times.push(performance.now() - t0);
}
console.log(`${name} ${norm} b${N} RP_ONNX_NCHWC=${process.env.RP_ONNX_NCHWC ?? '(default)'} RP_ONNX_SPIN=${process.env.RP_ONNX_SPIN ?? '(default)'}: median ${median(times).toFixed(1)} ms, min ${Math.min(...times).toFixed(1)} ms`);
await t.release();
