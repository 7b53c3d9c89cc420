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

  constructor(readonly noise: readonly ExternalNoise[], private readonly symbols: DimSymbols, private readonly seed: number | 'secure') {
    const root = seed === 'secure' ? new ZigguratNormal() : new ZigguratNormal(seed);
    this.gens = noise.map(() => root.fork(seed === 'secure'));
  }

  /** Number of noise tensors fed per run. */
  get count(): number {
    return this.noise.length;
  }

  /** Fresh noise tensors for one run with `feeds`. */
  feeds(feeds: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
    const out: Record<string, ort.Tensor> = {};
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
      const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
      gen.fill(data, spec.mean, spec.scale);
      out[spec.input] = new ort.Tensor('float32', data, dims);
    }
    return out;
  }
}
