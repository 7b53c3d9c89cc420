/**
 * Optimizers over Float32Array parameters, with PyTorch's update rules so results compare
 * one-to-one with torch.optim:
 * - SGD: g' = g + wd*w; v = mu*v + g' (v = g' on the first step); w -= lr * v
 *   (nesterov: w -= lr * (g' + mu*v)).
 * - Adam: g' = g + wd*w (L2 in the gradient); bias-corrected moments; w -= lr * mhat/(sqrt(vhat)+eps).
 * - AdamW: decoupled decay, w *= (1 - lr*wd), then the Adam step on the raw gradient.
 */
import { RpOnnxError } from '../errors.js';

export type OptimizerName = 'sgd' | 'adam' | 'adamw';

export interface OptimizerOptions {
  momentum?: number;
  weightDecay?: number;
  nesterov?: boolean;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export interface Optimizer {
  readonly name: OptimizerName;
  /** Updates `param` in place from `grad` at learning rate `lr`. `key` identifies the parameter's state. */
  step(key: string, param: Float32Array, grad: Float32Array, lr: number): void;
  /** Marks the end of one optimisation step (advances Adam's step counter). */
  endStep(): void;
  /** Optimizer state for checkpoints. */
  state(): { step: number; buffers: Record<string, Float32Array[]> };
  loadState(s: { step: number; buffers: Record<string, Float32Array[]> }): void;
}

class Sgd implements Optimizer {
  readonly name = 'sgd' as const;
  private velocity = new Map<string, Float32Array>();
  private steps = 0;
  constructor(private readonly mu: number, private readonly wd: number, private readonly nesterov: boolean) {}
  step(key: string, w: Float32Array, g: Float32Array, lr: number): void {
    const { mu, wd } = this;
    if (mu === 0) {
      for (let i = 0; i < w.length; i++) w[i]! -= lr * (g[i]! + wd * w[i]!);
      return;
    }
    let v = this.velocity.get(key);
    const first = v === undefined;
    if (!v) {
      v = new Float32Array(w.length);
      this.velocity.set(key, v);
    }
    for (let i = 0; i < w.length; i++) {
      const gi = g[i]! + wd * w[i]!;
      const vi = first ? gi : mu * v[i]! + gi;
      v[i] = vi;
      w[i]! -= lr * (this.nesterov ? gi + mu * vi : vi);
    }
  }
  endStep(): void {
    this.steps++;
  }
  state() {
    return { step: this.steps, buffers: Object.fromEntries([...this.velocity].map(([k, v]) => [k, [v]])) };
  }
  loadState(s: { step: number; buffers: Record<string, Float32Array[]> }): void {
    this.steps = s.step;
    this.velocity = new Map(Object.entries(s.buffers).map(([k, v]) => [k, v[0]!]));
  }
}

class Adam implements Optimizer {
  private m = new Map<string, Float32Array>();
  private v = new Map<string, Float32Array>();
  private t = 1;
  constructor(readonly name: 'adam' | 'adamw', private readonly b1: number, private readonly b2: number, private readonly eps: number, private readonly wd: number) {}
  step(key: string, w: Float32Array, g: Float32Array, lr: number): void {
    let m = this.m.get(key);
    let v = this.v.get(key);
    if (!m || !v) {
      m = new Float32Array(w.length);
      v = new Float32Array(w.length);
      this.m.set(key, m);
      this.v.set(key, v);
    }
    const { b1, b2, eps, wd } = this;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    const decoupled = this.name === 'adamw';
    for (let i = 0; i < w.length; i++) {
      let wi = w[i]!;
      let gi = g[i]!;
      if (decoupled) wi *= 1 - lr * wd;
      else gi += wd * wi;
      const mi = b1 * m[i]! + (1 - b1) * gi;
      const vi = b2 * v[i]! + (1 - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      w[i] = wi - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
    }
  }
  endStep(): void {
    this.t++;
  }
  state() {
    const buffers: Record<string, Float32Array[]> = {};
    for (const [k, m] of this.m) buffers[k] = [m, this.v.get(k)!];
    return { step: this.t, buffers };
  }
  loadState(s: { step: number; buffers: Record<string, Float32Array[]> }): void {
    this.t = s.step;
    this.m = new Map(Object.entries(s.buffers).map(([k, b]) => [k, b[0]!]));
    this.v = new Map(Object.entries(s.buffers).map(([k, b]) => [k, b[1]!]));
  }
}

export function createOptimizer(name: string, opts: OptimizerOptions = {}): Optimizer {
  const wd = opts.weightDecay ?? 0;
  switch (name) {
    case 'sgd': return new Sgd(opts.momentum ?? 0, wd, opts.nesterov ?? false);
    case 'adam': return new Adam('adam', opts.beta1 ?? 0.9, opts.beta2 ?? 0.999, opts.eps ?? 1e-8, wd);
    case 'adamw': return new Adam('adamw', opts.beta1 ?? 0.9, opts.beta2 ?? 0.999, opts.eps ?? 1e-8, opts.weightDecay ?? 0.01);
    default: throw new RpOnnxError(`optimizer must be sgd, adam or adamw, got '${name}'`, { param: 'optimizer' });
  }
}
