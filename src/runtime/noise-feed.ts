/**
 * The noise a session feeds to its externalized random ops (src/passes/externalize-noise.ts):
 * one generator per random op, as onnxruntime has (so the values an op draws for a set of
 * examples do not depend on how the examples are split into runs), each with fresh OS entropy
 * before every run in secure mode (every run's noise has its own unpredictable key), or
 * reproducible streams derived from a numeric seed.
 *
 * In secure mode with the C generator, the noise of the next run is drawn ahead, on a worker
 * thread, while onnxruntime computes the current one (with a fresh key of its own, used once:
 * drawn ahead for a shape the next run does not have, it is dropped). Drawing 2.8M values took
 * 7 ms of a 143 ms perturbed ResNet-8 training step at batch 128, which made it 4-10% slower
 * than the plain step (bench/README.md). Seeded streams are drawn in order at each run, so their
 * values do not depend on how examples are split into runs.
 */
import * as ort from 'onnxruntime-node';
import type { DimSymbols, ExternalNoise } from '../passes/externalize-noise.js';
import { RpOnnxError } from '../errors.js';
import { ZigguratNormal, noiseBackend } from './ziggurat.js';

/** One noise tensor drawn ahead for the next run. */
interface Ahead {
  data: Float32Array;
  ready: Promise<void>;
}

export interface NoiseFeedRun {
  tensors: Record<string, ort.Tensor>;
  /** Call once the run is over: its buffers may then be refilled for a later run. */
  release: () => void;
  /** Checks the fetched shapes of the perturbed tensors against the noise fed. */
  verify: (fetches: Record<string, ort.Tensor>) => void;
}

export class NoiseFeed {
  private readonly gens: ZigguratNormal[];
  /**
   * Buffers of finished runs, per noise op, for reuse: writing a freshly allocated array costs a
   * page fault per 4 KiB, which made the feed cost 5x the generation itself.
   */
  private readonly free: Float32Array[][];
  /** Graph outputs with the run-time shapes the noise must have (fetch them with every run). */
  readonly checkOutputs: readonly string[];
  /** Noise drawn ahead for the next run, per noise op (secure mode with the C generator only). */
  private readonly ahead: (Ahead | undefined)[];
  private readonly drawAhead: boolean;
  /** Calls of `feeds` one after another (a generator drawing ahead must not be used meanwhile). */
  private queue: Promise<unknown> = Promise.resolve();

  /**
   * `outputs`: the graph's output names; a noise tensor that is itself an output is never reused
   * (onnxruntime may hand its buffer back as the output).
   */
  constructor(readonly noise: readonly ExternalNoise[], private readonly symbols: DimSymbols, private readonly seed: number | 'secure', private readonly outputs: ReadonlySet<string> = new Set()) {
    const root = seed === 'secure' ? new ZigguratNormal() : new ZigguratNormal(seed);
    this.gens = noise.map(() => root.fork(seed === 'secure'));
    this.free = noise.map(() => []);
    this.checkOutputs = noise.flatMap((n) => (n.check ? [n.check] : []));
    this.ahead = noise.map(() => undefined);
    this.drawAhead = seed === 'secure' && noiseBackend === 'native' && process.env.RP_ONNX_NOISE_AHEAD !== '0';
  }

  /** Number of noise tensors fed per run. */
  get count(): number {
    return this.noise.length;
  }

  /**
   * Fresh noise tensors for one run with `feeds`; call `release` once the run is over, so their
   * buffers can be refilled for a later run.
   */
  feeds(feeds: Record<string, ort.Tensor>): Promise<NoiseFeedRun> {
    const run = this.queue.then(() => this.draw(feeds));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Keeps a finished buffer of op k for reuse: a few at most (the full batch and a last, smaller one). */
  private recycle(k: number, buffer: Float32Array): void {
    const pool = this.free[k]!;
    if (pool.length >= 2) pool.shift();
    pool.push(buffer);
  }

  /** A buffer of `size` values from op k's finished runs, or a new one. */
  private buffer(k: number, size: number): Float32Array {
    const pool = this.free[k]!;
    const at = pool.findIndex((b) => b.length === size);
    return at >= 0 ? pool.splice(at, 1)[0]! : new Float32Array(size);
  }

  private async draw(feeds: Record<string, ort.Tensor>): Promise<NoiseFeedRun> {
    const out: Record<string, ort.Tensor> = {};
    const used: Float32Array[] = [];
    const fed: number[][] = [];
    for (const [k, spec] of this.noise.entries()) {
      const gen = this.gens[k]!;
      const dims = spec.shape.map((d) => {
        if (typeof d === 'number') return d;
        const at = this.symbols.get(d)!;
        const t = feeds[at.input];
        if (!t) throw new RpOnnxError(`input '${at.input}' is missing (it sets dimension '${d}')`);
        const v = t.dims[at.axis];
        if (v === undefined) throw new RpOnnxError(`input '${at.input}' has rank ${t.dims.length}; axis ${at.axis} sets dimension '${d}'`);
        return v;
      });
      const size = dims.reduce((a, b) => a * b, 1);
      let data: Float32Array | undefined;
      const ahead = this.ahead[k];
      this.ahead[k] = undefined;
      if (ahead) {
        await ahead.ready;
        if (ahead.data.length === size) data = ahead.data;
        else this.recycle(k, ahead.data);
      }
      if (!data) {
        if (this.seed === 'secure') gen.reseed();
        data = this.buffer(k, size);
        gen.fill(data, spec.mean, spec.scale);
      }
      used.push(data);
      fed.push(dims);
      out[spec.input] = new ort.Tensor('float32', data, dims);
    }
    if (this.drawAhead) {
      // The next run's noise, on a worker thread while this run computes, each with a fresh key.
      this.noise.forEach((spec, k) => {
        const data = this.buffer(k, used[k]!.length);
        this.gens[k]!.reseed();
        this.ahead[k] = { data, ready: this.gens[k]!.fillAsync(data, spec.mean, spec.scale) };
      });
    }
    const release = () => {
      used.forEach((b, k) => {
        if (!this.outputs.has(this.noise[k]!.input)) this.recycle(k, b);
      });
    };
    // The shape of the tensor each noise is added to, as onnxruntime computed it, must be the shape
    // fed: otherwise broadcasting would reuse noise values (see externalize-noise.ts).
    const verify = (fetches: Record<string, ort.Tensor>) => {
      this.noise.forEach((spec, k) => {
        if (!spec.check) return;
        const got = Array.from(fetches[spec.check]!.data as BigInt64Array, Number);
        const want = fed[k]!;
        if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
          throw new RpOnnxError(`internal error: the noise '${spec.input}' was fed with shape [${want.join(', ')}] but the tensor it perturbs has shape [${got.join(', ')}] (rp-onnx's shape inference is wrong here; please report this model)`);
        }
      });
    };
    return { tensors: out, release, verify };
  }
}
