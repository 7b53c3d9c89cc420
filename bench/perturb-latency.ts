/**
 * Inference latency of residual perturbation: the built-in ImageNet-style ResNet-18 at 64x64,
 * batch 32, 2 intra-op threads, original vs perturbed (Strategy I absolute, Strategy II std),
 * runs interleaved so machine noise hits every variant alike, each variant in a process of its
 * own (in one process, the other sessions' threads had slowed the original by 40%, which made
 * the ratio look better than a user with one model meets). Goal: perturbed within 5%.
 * The perturbed variants run as rp-onnx runs them (noise fed by the runtime's generator, C addon
 * or TypeScript: see `noise backend`), and once more with onnxruntime's own RandomNormalLike
 * kernel (what plain onnxruntime does with the file), for comparison.
 * Run: node --import tsx bench/perturb-latency.ts   (ROUNDS=30 by default)
 */
import { fileURLToPath } from 'node:url';
import { buildResNet } from '../models/resnet.js';
import { perturbModel } from '../src/passes/perturb.js';
import { createSession, ort } from '../src/runtime/session.js';
import type { Model } from '../src/graph/ir.js';
import { StepProcess, serveSteps } from './step-process.js';
import { Random } from '../src/random.js';
import { noiseBackend } from '../src/runtime/ziggurat.js';
import { median, printResult, type BenchResult, type Goal } from './result.js';

const BATCH = 32;
const SIZE = 64;
const THREADS = 2;
const SELF = fileURLToPath(import.meta.url);
const CHILD = '--child';

/** The variants, by index (a child process builds the one it is given). */
function variants(): { name: string; model: () => Model; feedNoise: boolean }[] {
  const original = () => buildResNet('resnet18', { classes: 10, imageSize: SIZE, seed: 1 });
  const one = () => perturbModel(original(), { gamma: 0.1, strategy: 'I', scale: 'absolute', toolVersion: 'bench' }).model;
  const two = () => perturbModel(original(), { gamma: 0.1, strategy: 'II', scale: 'std', toolVersion: 'bench' }).model;
  return [
    { name: 'original', model: original, feedNoise: true },
    { name: 'perturbed I absolute', model: one, feedNoise: true },
    { name: 'perturbed II std', model: two, feedNoise: true },
    { name: 'perturbed I absolute, onnxruntime RandomNormalLike', model: one, feedNoise: false },
    { name: 'perturbed II std, onnxruntime RandomNormalLike', model: two, feedNoise: false },
  ];
}

/** Child process: one variant's session, one inference per "step" (bench/step-process.ts). */
async function child(index: number, mode: string): Promise<void> {
  const v = variants()[index]!;
  const s = await createSession(v.model(), { threads: THREADS, feedNoise: v.feedNoise });
  const x = new Float32Array(BATCH * 3 * SIZE * SIZE);
  new Random(0).fillNormal(x);
  const feeds = { input: new ort.Tensor('float32', x, [BATCH, 3, SIZE, SIZE]) };
  await serveSteps(mode, v.name, async () => {
    await s.run(feeds);
  });
  await s.release();
}

export async function benchPerturbLatency(): Promise<BenchResult> {
  const rounds = Number(process.env.ROUNDS ?? 30);
  const list = variants();
  const procs = await Promise.all(list.map(async (v, k) => {
    const p = await StepProcess.start({ file: process.execPath, args: (mode) => ['--import', 'tsx', SELF, CHILD, String(k), mode], env: {} }, v.name);
    if (!p) throw new Error(`perturb-latency: the process of '${v.name}' did not start`);
    return p;
  }));
  const times = new Map<string, number[]>(list.map((v) => [v.name, []]));
  try {
    for (const p of procs) for (let i = 0; i < 3; i++) await p.step(); // warm-up
    for (let r = 0; r < rounds; r++) {
      // Rotate the order each round so no variant always runs right after another.
      for (let k = 0; k < list.length; k++) {
        const j = (r + k) % list.length;
        times.get(list[j]!.name)!.push(await procs[j]!.step());
      }
    }
  } finally {
    for (const p of procs) p.close();
  }
  const variantNames = list.map((v) => v.name);
  const base = median(times.get('original')!);
  const rows = variantNames.map((name) => {
    const ms = median(times.get(name)!);
    return { variant: name, 'median ms': ms, 'min ms': Math.min(...times.get(name)!), ratio: ms / base };
  });
  const worst = Math.max(rows[1]!.ratio, rows[2]!.ratio);
  const goals: Goal[] = rows.slice(1, 3).map((r) => ({ goal: `perturbed / original inference latency, ${r.variant}, rp-onnx runtime`, value: r.ratio, max: 1.05, detail: `ResNet-18 ${SIZE}x${SIZE} b${BATCH}, medians ${r['median ms'].toFixed(1)} / ${base.toFixed(1)} ms, noise ${noiseBackend}` }));
  return {
    name: `residual perturbation latency: ResNet-18 ${SIZE}x${SIZE}, batch ${BATCH}, ${THREADS} threads, each variant in its own process, ${rounds} interleaved rounds`,
    rows,
    summary: `perturbed/original median latency (noise backend: ${noiseBackend}): ${rows.slice(1).map((r) => `${r.variant} ${r.ratio.toFixed(3)}`).join(', ')} (goal <= 1.05 as rp-onnx runs it: ${worst <= 1.05 ? 'met' : 'NOT met'})`,
    goals,
  };
}

if (process.argv[1] === SELF) {
  if (process.argv[2] === CHILD) await child(Number(process.argv[3]), process.argv[4] ?? 'serve');
  else printResult(await benchPerturbLatency());
}
