/**
 * A benchmark variant in a process of its own, driven over stdin/stdout: in `serve` mode the
 * process prints "ready", then runs one step (a training step, an inference) per "step" line and
 * prints its milliseconds; given a number of rounds instead, it runs WARMUP steps and that many
 * timed ones alone and prints one JSON line with `medianMs`. Our variants (bench/train-step-worker.ts,
 * bench/perturb-latency.ts) and the PyTorch twins (bench/pytorch/train_step.py) speak it alike,
 * so that no variant shares a process, and the threads of its idle sessions, with another.
 */
import { spawn, execFile, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { promisify } from 'node:util';
import { createInterface } from 'node:readline';
import { median } from './result.js';

/** A command line that runs one variant's step: `mode` is 'serve' or a number of timed rounds. */
export interface StepCommand {
  file: string;
  args: (mode: string) => string[];
  env: Record<string, string>;
}

/** A process that runs one step per request (ours or a PyTorch twin: the same protocol). */
export class StepProcess {
  private pending: ((line: string) => void)[] = [];
  private buffer = '';
  private constructor(private readonly child: ChildProcessWithoutNullStreams, private readonly what: string) {
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

  /** The process once it says "ready", or null where it exits first (a peer that is not installed). */
  static async start(cmd: StepCommand, what: string, env: Record<string, string> = {}): Promise<StepProcess | null> {
    const child = spawn(cmd.file, cmd.args('serve'), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...cmd.env, ...env } });
    const proc = new StepProcess(child, what);
    const ready = await Promise.race([
      new Promise<string>((resolve) => proc.pending.push(resolve)),
      new Promise<string>((resolve) => child.on('exit', () => resolve('exit'))),
    ]);
    return ready === 'ready' ? proc : null;
  }

  /** One step; its milliseconds as the process timed them. */
  step(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending.push((line) => (Number.isFinite(Number(line)) ? resolve(Number(line)) : reject(new Error(`${this.what}: ${line}`))));
      this.child.stdin.write('step\n');
    });
  }

  close(): void {
    this.child.stdin.end();
  }
}

/** One fresh process of `cmd` run alone: WARMUP steps, then `rounds` timed; its median, or null where it fails (a peer that is not installed). */
export async function standaloneRun(cmd: StepCommand, rounds: number, warmup: number, env: Record<string, string> = {}): Promise<{ ms: number; peakRssMiB?: number } | null> {
  try {
    const { stdout } = await promisify(execFile)(cmd.file, cmd.args(String(rounds)), { env: { ...process.env, ...cmd.env, WARMUP: String(warmup), ...env }, maxBuffer: 1 << 20 });
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as { medianMs: number; peakRssMiB?: number };
    return { ms: r.medianMs, peakRssMiB: r.peakRssMiB };
  } catch {
    return null;
  }
}


/**
 * The child's side of the protocol for one of our variants: `mode` 'serve' answers "step" lines
 * until stdin closes; a number runs WARMUP (default 3) steps, then that many timed, and prints
 * the median and this process's peak RSS.
 */
export async function serveSteps(mode: string, label: string, step: () => Promise<void>): Promise<void> {
  const timed = async () => {
    const t0 = performance.now();
    await step();
    return performance.now() - t0;
  };
  if (mode === 'serve') {
    process.stdout.write('ready\n');
    for await (const line of createInterface({ input: process.stdin })) {
      if (line.trim() === 'step') process.stdout.write(`${await timed()}\n`);
    }
    return;
  }
  for (let i = 0; i < Number(process.env.WARMUP ?? 3); i++) await step();
  const times: number[] = [];
  for (let i = 0; i < Number(mode); i++) times.push(await timed());
  process.stdout.write(`${JSON.stringify({ label, medianMs: median(times), peakRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`);
}
