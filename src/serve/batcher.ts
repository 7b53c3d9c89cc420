/**
 * Micro-batching: concurrent requests wait in a FIFO queue; whenever the session is free, the
 * queued requests (up to maxBatch examples together) run as one batch, and each request gets its
 * own rows back. One session run at a time, nothing dropped: a request larger than maxBatch runs
 * alone, in chunks.
 */
import type { LogitsRunner } from '../runtime/predict.js';

interface Pending {
  data: Float32Array;
  count: number;
  resolve(logits: Float32Array): void;
  reject(err: unknown): void;
}

export interface BatcherStats {
  requests: number;
  examples: number;
  runs: number;
  largestBatch: number;
}

export class MicroBatcher {
  private readonly queue: Pending[] = [];
  private busy = false;
  private idleWaiters: (() => void)[] = [];
  readonly stats: BatcherStats = { requests: 0, examples: 0, runs: 0, largestBatch: 0 };
  /** Classes of the model's logits, known after the first run. */
  classes = 0;

  constructor(private readonly runner: LogitsRunner, private readonly maxBatch: number, private readonly samples: number) {}

  /** Averaged logits (count x classes) of the examples. */
  submit(data: Float32Array, count: number): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.queue.push({ data, count, resolve, reject });
      if (!this.busy) {
        this.busy = true;
        // Yield once so requests arriving in the same tick join the first batch.
        setImmediate(() => void this.pump());
      }
    });
  }

  get pending(): number {
    return this.queue.length + (this.busy ? 1 : 0);
  }

  /** Resolves when the queue is empty and no run is in flight. */
  idle(): Promise<void> {
    if (!this.busy && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private take(): Pending[] {
    const group = [this.queue.shift()!];
    let n = group[0]!.count;
    while (this.queue.length > 0 && n + this.queue[0]!.count <= this.maxBatch) {
      const p = this.queue.shift()!;
      group.push(p);
      n += p.count;
    }
    return group;
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.take();
      const count = group.reduce((a, p) => a + p.count, 0);
      try {
        let data: Float32Array;
        if (group.length === 1) data = group[0]!.data;
        else {
          data = new Float32Array(count * this.runner.exampleSize);
          let off = 0;
          for (const p of group) {
            data.set(p.data, off);
            off += p.data.length;
          }
        }
        const { logits, classes } = await this.runner.run(data, count, this.samples, this.maxBatch);
        this.classes = classes;
        if (this.samples > 1) for (let i = 0; i < logits.length; i++) logits[i] = logits[i]! / this.samples;
        this.stats.runs += Math.ceil(count / this.runner.maxBatch(this.maxBatch));
        this.stats.requests += group.length;
        this.stats.examples += count;
        this.stats.largestBatch = Math.max(this.stats.largestBatch, Math.min(count, this.maxBatch));
        let row = 0;
        for (const p of group) {
          p.resolve(logits.slice(row * classes, (row + p.count) * classes));
          row += p.count;
        }
      } catch (e) {
        for (const p of group) p.reject(e);
      }
    }
    this.busy = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
