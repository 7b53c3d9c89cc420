/**
 * Inference latency of residual perturbation: the built-in ImageNet-style ResNet-18 at 64x64,
 * batch 32, 2 intra-op threads, original vs perturbed (Strategy I absolute, Strategy II std),
 * runs interleaved so machine noise hits every variant alike. Goal: perturbed within 5%.
 * The perturbed variants run as rp-onnx runs them (noise fed by the runtime's generator, C addon
 * or TypeScript: see `noise backend`), and once more with onnxruntime's own RandomNormalLike
 * kernel (what plain onnxruntime does with the file), for comparison.
 * Run: node --import tsx bench/perturb-latency.ts   (ROUNDS=30 by default)
 */
import { fileURLToPath } from 'node:url';
import { buildResNet } from '../models/resnet.js';
import { perturbModel } from '../src/passes/perturb.js';
import { createSession, ort, type RpSession } from '../src/runtime/session.js';
import { Random } from '../src/random.js';
import { noiseBackend } from '../src/runtime/ziggurat.js';
import { median, printResult, type BenchResult, type Goal } from './result.js';

const BATCH = 32;
const SIZE = 64;
const THREADS = 2;

export async function benchPerturbLatency(): Promise<BenchResult> {
  const rounds = Number(process.env.ROUNDS ?? 30);
  const original = buildResNet('resnet18', { classes: 10, imageSize: SIZE, seed: 1 });
  const one = perturbModel(original, { gamma: 0.1, strategy: 'I', scale: 'absolute', toolVersion: 'bench' }).model;
  const two = perturbModel(original, { gamma: 0.1, strategy: 'II', scale: 'std', toolVersion: 'bench' }).model;
  const variants: [string, RpSession][] = [
    ['original', await createSession(original, { threads: THREADS })],
    ['perturbed I absolute', await createSession(one, { threads: THREADS })],
    ['perturbed II std', await createSession(two, { threads: THREADS })],
    ['perturbed I absolute, onnxruntime RandomNormalLike', await createSession(one, { threads: THREADS, feedNoise: false })],
    ['perturbed II std, onnxruntime RandomNormalLike', await createSession(two, { threads: THREADS, feedNoise: false })],
  ];
  const x = new Float32Array(BATCH * 3 * SIZE * SIZE);
  new Random(0).fillNormal(x);
  const feeds = { input: new ort.Tensor('float32', x, [BATCH, 3, SIZE, SIZE]) };
  const times = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  for (const [, s] of variants) for (let i = 0; i < 3; i++) await s.run(feeds); // warm-up
  for (let r = 0; r < rounds; r++) {
    // Rotate the order each round so no variant always runs right after another.
    for (let k = 0; k < variants.length; k++) {
      const [name, s] = variants[(r + k) % variants.length]!;
      const t0 = performance.now();
      await s.run(feeds);
      times.get(name)!.push(performance.now() - t0);
    }
  }
  for (const [, s] of variants) await s.release();
  const base = median(times.get('original')!);
  const rows = variants.map(([name]) => {
    const ms = median(times.get(name)!);
    return { variant: name, 'median ms': ms, 'min ms': Math.min(...times.get(name)!), ratio: ms / base };
  });
  const worst = Math.max(rows[1]!.ratio, rows[2]!.ratio);
  const goals: Goal[] = rows.slice(1, 3).map((r) => ({ goal: `perturbed / original inference latency, ${r.variant}, rp-onnx runtime`, value: r.ratio, max: 1.05, detail: `ResNet-18 ${SIZE}x${SIZE} b${BATCH}, medians ${r['median ms'].toFixed(1)} / ${base.toFixed(1)} ms, noise ${noiseBackend}` }));
  return {
    name: `residual perturbation latency: ResNet-18 ${SIZE}x${SIZE}, batch ${BATCH}, ${THREADS} threads, ${rounds} interleaved rounds`,
    rows,
    summary: `perturbed/original median latency (noise backend: ${noiseBackend}): ${rows.slice(1).map((r) => `${r.variant} ${r.ratio.toFixed(3)}`).join(', ')} (goal <= 1.05 as rp-onnx runs it: ${worst <= 1.05 ? 'met' : 'NOT met'})`,
    goals,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printResult(await benchPerturbLatency());
}
