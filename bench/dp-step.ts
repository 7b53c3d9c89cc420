/**
 * DP-SGD step of the built-in dp-cnn (1x28x28) at the `experiment dp-sgd` recipe's logical
 * batch with its physical batch (2048 in runs of 512), against our own plain step on the same
 * 2048 examples, interleaved in one process: ms per logical step and examples/s.
 * Run: [THREADS=1] [ROUNDS=5] [BATCH=2048] [PHYSICAL=512] node --import tsx bench/dp-step.ts
 */
import { Trainer } from '../src/train/trainer.js';
import { buildModel } from '../models/index.js';
import { Random } from '../src/random.js';
import { median, type BenchResult } from './result.js';

export async function benchDpStep(o: { threads: number; rounds: number; batch: number; physical: number }): Promise<BenchResult> {
  const model = buildModel('dp-cnn', { inChannels: 1, imageSize: 28, classes: 10 });
  const rng = new Random(1);
  const x = Float32Array.from({ length: o.batch * 784 }, () => rng.uniform());
  const y = Int32Array.from({ length: o.batch }, () => rng.int(10));
  const common = { optimizer: 'sgd', momentum: 0.9, weightDecay: 0, threads: o.threads } as const;
  const dp = await Trainer.create(model, { ...common, dp: { mode: 'clip' } });
  const plain = await Trainer.create(model, { ...common, batchNorm: 'frozen' });
  const runs = [
    { label: `dp-cnn DP-SGD (clip in graph, runs of ${o.physical})`, step: async () => { const g = await dp.dpGradients(x, y, o.batch, 0.1, o.physical); dp.applyUpdate(g.grads, 0.01); }, t: [] as number[] },
    { label: 'dp-cnn plain step', step: async () => { await plain.step(x, y, o.batch, 0.01); }, t: [] as number[] },
  ];
  for (const r of runs) await r.step();
  for (let i = 0; i < o.rounds; i++) for (const r of runs) { const t0 = performance.now(); await r.step(); r.t.push(performance.now() - t0); }
  await dp.release();
  await plain.release();
  const ms = runs.map((r) => median(r.t));
  return {
    name: `dp-cnn step, logical batch ${o.batch}, ${o.threads} thread(s) (median of ${o.rounds} interleaved rounds)`,
    rows: runs.map((r, k) => ({ variant: r.label, 'ms/step': ms[k]!, 'examples/s': (o.batch * 1000) / ms[k]! })),
    summary: `DP-SGD/plain ${(ms[0]! / ms[1]!).toFixed(3)} (goal <= 1.1x plain)`,
    goals: [{ goal: `DP-SGD / plain step, dp-cnn ${o.batch} in runs of ${o.physical}, ${o.threads} thread(s)`, value: ms[0]! / ms[1]!, max: 1.1, detail: `${ms[0]!.toFixed(0)} / ${ms[1]!.toFixed(0)} ms interleaved` }],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printResult } = await import('./result.js');
  const env = (k: string, d: number) => Number(process.env[k] ?? d);
  printResult(await benchDpStep({ threads: env('THREADS', 1), rounds: env('ROUNDS', 5), batch: env('BATCH', 2048), physical: env('PHYSICAL', 512) }));
}
