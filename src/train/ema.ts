/**
 * Parameter averaging: an exponential moving average (EMA) of the weights, as De, Berrada,
 * Hayes, Smith, Balle 2022 ("Unlocking high-accuracy differentially private image
 * classification through scale", section 3.2) use for DP-SGD, with their warm-up: at step t
 * (1-based, after t updates) the decay is min(decay, (1 + t) / (10 + t)), so early averages
 * forget the random initialisation quickly, and
 *
 *     ema_t = mu_t * ema_{t-1} + (1 - mu_t) * theta_t,   ema_0 = theta_0.
 *
 * Privacy: the average is a function of the released (noisy) iterates theta_1..theta_T only,
 * never of the data, so under DP-SGD it is post-processing and costs no privacy: the
 * accountant's epsilon for the iterates covers the averaged model too.
 */
import type { Model } from '../graph/ir.js';
import { makeTensor } from '../graph/tensor.js';
import { RpOnnxError } from '../errors.js';

export interface EmaOptions {
  /** Upper bound of the per-step decay (De et al.: 0.999 to 0.99999). */
  decay: number;
  /** De et al.'s warm-up min(decay, (1 + t) / (10 + t)). Default true. */
  warmup?: boolean;
}

export class ParameterAverage {
  readonly averages = new Map<string, Float64Array>();
  private steps = 0;

  constructor(params: ReadonlyMap<string, Float32Array>, readonly opts: EmaOptions) {
    if (!(opts.decay >= 0 && opts.decay < 1)) throw new RpOnnxError(`EMA decay must be in [0, 1), got ${opts.decay}`);
    for (const [name, p] of params) this.averages.set(name, Float64Array.from(p));
  }

  /** The decay applied at update number t (1-based). */
  decayAt(t: number): number {
    return this.opts.warmup === false ? this.opts.decay : Math.min(this.opts.decay, (1 + t) / (10 + t));
  }

  /** Folds in the parameters after one more optimisation step. */
  update(params: ReadonlyMap<string, Float32Array>): void {
    this.steps++;
    const mu = this.decayAt(this.steps);
    for (const [name, avg] of this.averages) {
      const p = params.get(name);
      if (!p || p.length !== avg.length) throw new RpOnnxError(`EMA: parameter '${name}' is missing or changed size`);
      for (let i = 0; i < avg.length; i++) avg[i] = mu * avg[i]! + (1 - mu) * p[i]!;
    }
  }

  get updates(): number {
    return this.steps;
  }

  /** `model` (a trained export) with its averaged parameters written in; other initializers kept. */
  applyTo(model: Model): Model {
    for (const [name, avg] of this.averages) {
      const old = model.graph.initializers.get(name);
      if (!old) throw new RpOnnxError(`EMA: parameter '${name}' is not an initializer of the model`);
      model.graph.initializers.set(name, makeTensor(name, old.dims.map(Number), Float32Array.from(avg)));
    }
    return model;
  }
}
