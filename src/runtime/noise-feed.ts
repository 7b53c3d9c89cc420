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
  /** Graph outputs with the run-time shapes the noise must have (fetch them with every run). */
  readonly checkOutputs: readonly string[];

  /**
   * `outputs`: the graph's output names; a noise tensor that is itself an output is never reused
   * (onnxruntime may hand its buffer back as the output).
   */
  constructor(readonly noise: readonly ExternalNoise[], private readonly symbols: DimSymbols, private readonly seed: number | 'secure', private readonly outputs: ReadonlySet<string> = new Set()) {
    const root = seed === 'secure' ? new ZigguratNormal() : new ZigguratNormal(seed);
    this.gens = noise.map(() => root.fork(seed === 'secure'));
    this.free = noise.map(() => []);
    this.checkOutputs = noise.flatMap((n) => (n.check ? [n.check] : []));
  }

  /** Number of noise tensors fed per run. */
  get count(): number {
    return this.noise.length;
  }



  /**
   * Fresh noise tensors for one run with `feeds`; call `release` once the run is over, so their
   * buffers can be refilled for a later run.
   */
  feeds(feeds: Record<string, ort.Tensor>): { tensors: Record<string, ort.Tensor>; release: () => void; verify: (fetches: Record<string, ort.Tensor>) => void } {
    const out: Record<string, ort.Tensor> = {};
    const used: Float32Array[] = [];
    const fed: number[][] = [];
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
      fed.push(dims);
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
