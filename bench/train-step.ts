/**
 * Training-step benchmarks, measured side by side in one run (interleaved, so machine noise
 * hits every variant alike): ms/step (median after warm-up) and examples/s at batch 128 with 2
 * threads for the built-in ResNet-8 (1x28x28) and ResNet-20 (3x32x32), the perturbed ResNet-8
 * against the plain one, the DP-SGD step against the non-private step (ResNet-8, GroupNorm),
 * and, when Debian's python3-torch is installed, PyTorch on the same networks: a PyTorch twin
 * process per network takes one step right after each of ours, so both are timed within the same
 * seconds (this shared machine's speed drifts by 2x and more within minutes; timings taken
 * minutes apart do not compare).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Trainer } from '../src/train/trainer.js';
import { buildResNet } from '../models/index.js';
import { perturbModel } from '../src/passes/perturb.js';
import { Random } from '../src/random.js';
import { median, type BenchResult } from './result.js';
import type { Model } from '../src/graph/ir.js';

const BATCH = 128;
const THREADS = 2;

interface Variant {
  label: string;
  model: Model;
  shape: [number, number, number];
  dp?: boolean;
  /** Twin network of bench/pytorch/train_step.py: [name, in channels, image size]. */
  pytorch?: [string, number, number];
}

/** A PyTorch process that runs one training step of its network per request. */
class PytorchTwin {
  private pending: ((line: string) => void)[] = [];
  private buffer = '';
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        this.pending.shift()?.(line);
      }
    });
  }

  /** The twin, or null where /usr/bin/python3 with torch is missing. */
  static async start(name: string, cin: number, size: number): Promise<PytorchTwin | null> {
    if (!existsSync('/usr/bin/python3')) return null;
    const script = fileURLToPath(new URL('./pytorch/train_step.py', import.meta.url));
    const child = spawn('/usr/bin/python3', [script, name, String(cin), String(size), String(BATCH), 'serve', String(THREADS)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const twin = new PytorchTwin(child);
    const ready = await Promise.race([
      new Promise<string>((resolve) => twin.pending.push(resolve)),
      new Promise<string>((resolve) => child.on('exit', () => resolve('exit'))),
    ]);
    if (ready !== 'ready') return null;
    return twin;
  }

  /** One step; its milliseconds as PyTorch timed them. */
  step(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending.push((line) => (Number.isFinite(Number(line)) ? resolve(Number(line)) : reject(new Error(`PyTorch twin: ${line}`))));
      this.child.stdin.write('step\n');
    });
  }

  close(): void {
    this.child.stdin.end();
  }
}

async function timeSteps(variants: Variant[], rounds: number): Promise<{ ours: number[][]; torch: (number[] | null)[] }> {
  const rng = new Random(1);
  const runners = await Promise.all(variants.map(async (v) => {
    const t = await Trainer.create(v.model, { optimizer: 'sgd', momentum: 0.9, weightDecay: 5e-4, threads: THREADS, dp: v.dp ? { mode: 'clip' } : undefined });
    const per = v.shape[0] * v.shape[1] * v.shape[2];
    const x = Float32Array.from({ length: BATCH * per }, () => rng.uniform());
    const y = Int32Array.from({ length: BATCH }, () => rng.int(10));
    return async () => {
      if (v.dp) {
        const g = await t.dpGradients(x, y, BATCH, 1);
        t.applyUpdate(g.grads, 0.01);
      } else await t.step(x, y, BATCH, 0.01);
    };
  }));
  const twins = await Promise.all(variants.map((v) => (v.pytorch ? PytorchTwin.start(...v.pytorch) : Promise.resolve(null))));
  for (let w = 0; w < 3; w++) {
    for (const r of runners) await r();
    for (const t of twins) await t?.step();
  }
  const times = variants.map(() => [] as number[]);
  const torch = twins.map((t) => (t ? [] as number[] : null));
  for (let i = 0; i < rounds; i++) {
    for (const [k, r] of runners.entries()) {
      const t0 = performance.now();
      await r();
      times[k]!.push(performance.now() - t0);
      // The twin's step right after ours: the same machine state for both.
      if (twins[k]) torch[k]!.push(await twins[k]!.step());
    }
  }
  for (const t of twins) t?.close();
  return { ours: times, torch };
}

export async function benchTrainStep(quick: boolean): Promise<BenchResult> {
  const rounds = quick ? 8 : 20;
  const r8 = buildResNet('resnet8', { inChannels: 1, imageSize: 28, norm: 'batch', seed: 0 });
  const r8gn = buildResNet('resnet8', { inChannels: 1, imageSize: 28, norm: 'group', seed: 0 });
  const r20 = buildResNet('resnet20', { inChannels: 3, imageSize: 32, norm: 'batch', seed: 0 });
  const perturbed = perturbModel(r8, { gamma: 0.5, strategy: 'I', scale: 'absolute', toolVersion: 'bench' }).model;
  const variants: Variant[] = [
    { label: 'resnet8 1x28x28 (BN)', model: r8, shape: [1, 28, 28], pytorch: ['resnet8', 1, 28] },
    { label: 'resnet8 perturbed (gamma 0.5)', model: perturbed, shape: [1, 28, 28] },
    { label: 'resnet8 GroupNorm', model: r8gn, shape: [1, 28, 28] },
    { label: 'resnet8 GroupNorm DP-SGD', model: r8gn, shape: [1, 28, 28], dp: true },
    ...(quick ? [] : [{ label: 'resnet20 3x32x32 (BN)', model: r20, shape: [3, 32, 32] as [number, number, number], pytorch: ['resnet20', 3, 32] as [string, number, number] }]),
  ];
  const times = await timeSteps(variants, rounds);
  const ms = times.ours.map(median);
  const torchMs = times.torch.map((t) => (t ? median(t) : null));
  const torch8 = torchMs[0] ?? null;
  const rows = variants.map((v, k) => {
    const torch = torchMs[k] ?? null;
    return {
      variant: v.label, 'ms/step': ms[k]!, 'examples/s': (BATCH * 1000) / ms[k]!,
      'PyTorch ms/step': torch ?? '-', 'ratio vs PyTorch': torch ? ms[k]! / torch : '-',
    };
  });
  const rss = process.resourceUsage().maxRSS / 1024;
  const perturbRatio = ms[1]! / ms[0]!;
  const dpRatio = ms[3]! / ms[2]!;
  return {
    name: `training step, batch ${BATCH}, ${THREADS} threads (median of ${rounds} interleaved rounds)`,
    rows,
    summary: `perturbed/plain ${perturbRatio.toFixed(3)}; DP-SGD/non-private ${dpRatio.toFixed(3)} (DP step ${ms[3]!.toFixed(0)} ms; Opacus measured 313 ms here); ` +
      (torch8 ? `ours/PyTorch (interleaved): ${variants.map((v, k) => (torchMs[k] ? `${v.label.split(' ')[0]} ${(ms[k]! / torchMs[k]!).toFixed(2)}` : '')).filter(Boolean).join(', ')}; ` : 'PyTorch not available (/usr/bin/python3 with torch); ') +
      `peak RSS ${rss.toFixed(0)} MiB`,
  };
}
