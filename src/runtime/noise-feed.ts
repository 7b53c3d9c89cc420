/**
 * The noise a session feeds to its externalized random ops (src/passes/externalize-noise.ts):
 * one generator per random op, as onnxruntime has (so the values an op draws for a set of
 * examples do not depend on how the examples are split into runs), each with fresh OS entropy
 * before every run in secure mode (every run's noise has its own unpredictable key), or
 * reproducible streams derived from a numeric seed.
 */
import * as ort from 'onnxruntime-node';
import type { DimSymbols, ExternalNoise } from '../passes/externalize-noise.js';
import { RpOnnxError } from '../errors.js';
import { ZigguratNormal } from './ziggurat.js';

export class NoiseFeed {
  private readonly gens: ZigguratNormal[];
  /**
   * Buffers of finished runs, per noise op, for reuse: writing a freshly allocated array costs a
   * page fault per 4 KiB, which made the feed cost 5x the generation itself.
   */
  private readonly free: Float32Array[][];

  /**
   * `outputs`: the graph's output names; a noise tensor that is itself an output is never reused
   * (onnxruntime may hand its buffer back as the output).
   */
  constructor(readonly noise: readonly ExternalNoise[], private readonly symbols: DimSymbols, private readonly seed: number | 'secure', private readonly outputs: ReadonlySet<string> = new Set()) {
    const root = seed === 'secure' ? new ZigguratNormal() : new ZigguratNormal(seed);
    this.gens = noise.map(() => root.fork(seed === 'secure'));
    this.free = noise.map(() => []);
  }

  /** Number of noise tensors fed per run. */
  get count(): number {
    return this.noise.length;
  }

  /**
   * Fresh noise tensors for one run with `feeds`; call `release` once the run is over, so their
   * buffers can be refilled for a later run.
   */
  feeds(feeds: Record<string, ort.Tensor>): { tensors: Record<string, ort.Tensor>; release: () => void } {
    const out: Record<string, ort.Tensor> = {};
    const used: Float32Array[] = [];
    for (const [k, spec] of this.noise.entries()) {
      const gen = this.gens[k]!;
      if (this.seed === 'secure') gen.reseed();
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
      const pool = this.free[k]!;
      const at = pool.findIndex((b) => b.length === size);
      const data = at >= 0 ? pool.splice(at, 1)[0]! : new Float32Array(size);
      gen.fill(data, spec.mean, spec.scale);
      used.push(data);
      out[spec.input] = new ort.Tensor('float32', data, dims);
    }
    const release = () => {
      used.forEach((b, k) => {
        if (this.outputs.has(this.noise[k]!.input)) return;
        const pool = this.free[k]!;
        // A few sizes at most (the full batch and a last, smaller one).
        if (pool.length >= 2) pool.shift();
        pool.push(b);
      });
    };
    return { tensors: out, release };
  }
}
