/**
 * Peak resident memory of a process that trains the built-in ResNet-20 (3x32x32, BatchNorm in
 * training mode) at batch 128 with 2 threads: a fresh child process takes STEPS steps and
 * reports its own peak RSS (getrusage's ru_maxrss), so nothing else the benchmark loaded counts.
 * Goal: under 1 GiB.
 * Run: node --import tsx bench/peak-rss.ts
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Trainer } from '../src/train/trainer.js';
import { buildResNet } from '../models/index.js';
import { Random } from '../src/random.js';
import { printResult, type BenchResult } from './result.js';

const BATCH = 128;
const STEPS = 6;
const CHILD = '--child';

async function child(): Promise<void> {
  const model = buildResNet('resnet20', { inChannels: 3, imageSize: 32, norm: 'batch', seed: 0 });
  const t = await Trainer.create(model, { optimizer: 'sgd', momentum: 0.9, weightDecay: 5e-4, threads: 2 });
  const rng = new Random(1);
  const x = Float32Array.from({ length: BATCH * 3 * 32 * 32 }, () => rng.uniform());
  const y = Int32Array.from({ length: BATCH }, () => rng.int(10));
  const after: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    await t.step(x, y, BATCH, 0.01);
    after.push(process.resourceUsage().maxRSS / 1024);
  }
  process.stdout.write(`${JSON.stringify({ peakMiB: after[after.length - 1], afterEachStep: after })}\n`);
}

export async function benchPeakRss(): Promise<BenchResult> {
  const self = fileURLToPath(import.meta.url);
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', self, CHILD], { maxBuffer: 1 << 20 });
  const r = JSON.parse(stdout) as { peakMiB: number; afterEachStep: number[] };
  return {
    name: `peak RSS of a process training resnet20 3x32x32 at batch ${BATCH}, 2 threads (${STEPS} steps, child process)`,
    rows: r.afterEachStep.map((mib, i) => ({ 'after step': i + 1, 'peak RSS MiB': Math.round(mib) })),
    summary: `peak RSS ${r.peakMiB.toFixed(0)} MiB (goal < 1024 MiB)`,
    goals: [{ goal: `peak RSS, resnet20 b${BATCH} training process (MiB)`, value: r.peakMiB, max: 1024, detail: `child process, ${STEPS} steps, ru_maxrss` }],
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes(CHILD)) await child();
  else printResult(await benchPeakRss());
}
