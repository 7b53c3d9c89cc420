/**
 * The optimizers of the gradient-inversion attacks, on Float64Array variables:
 * - L-BFGS (Nocedal & Wright, Algorithm 7.4/7.5: two-loop recursion over the last `history`
 *   pairs, initial Hessian scaled by s'y / y'y) with a backtracking Armijo line search, as DLG
 *   uses (torch.optim.LBFGS, history 100). The first step is scaled to min(1, 1 / |g|_1) like
 *   PyTorch's; a direction that is not a descent direction, or a failed line search, resets the
 *   memory and retries along -g.
 * - Adam (Kingma & Ba) as Inverting Gradients runs it: optionally on the sign of the gradient,
 *   the learning rate annealed by a cosine or divided by 10 at 3/8, 5/8 and 7/8 of the
 *   iterations, and a projection after each step (the box [0, 1] of the data).
 */
export type Objective = (x: Float64Array) => Promise<{ f: number; g: Float64Array }>;

export interface Progress {
  iteration: number;
  loss: number;
}

const dot = (a: Float64Array, b: Float64Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

export interface LbfgsOptions {
  iterations: number;
  history?: number;
  /** Stop when max |g| falls below this (PyTorch's tolerance_grad). Default 1e-12. */
  gradTolerance?: number;
  /** Stop when a step changes the loss by less than this (PyTorch's tolerance_change). Default 0. */
  changeTolerance?: number;
  onProgress?: (p: Progress) => void;
  progressEvery?: number;
}

export async function lbfgs(objective: Objective, x0: Float64Array, opts: LbfgsOptions): Promise<{ x: Float64Array; f: number; iterations: number; evaluations: number }> {
  const m = opts.history ?? 100;
  const gtol = opts.gradTolerance ?? 1e-12;
  let x: Float64Array = Float64Array.from(x0);
  const first = await objective(x);
  let f = first.f;
  let g: Float64Array = first.g;
  let evaluations = 1;
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  let it = 0;
  for (; it < opts.iterations; it++) {
    let gmax = 0;
    for (const v of g) gmax = Math.max(gmax, Math.abs(v));
    if (!(gmax > gtol) || !Number.isFinite(f)) break;
    // Two-loop recursion: d = -H g.
    const q = Float64Array.from(g);
    const alpha: number[] = new Array<number>(S.length);
    for (let k = S.length - 1; k >= 0; k--) {
      alpha[k] = rho[k]! * dot(S[k]!, q);
      const yk = Y[k]!;
      for (let i = 0; i < q.length; i++) q[i]! -= alpha[k]! * yk[i]!;
    }
    if (S.length > 0) {
      const last = S.length - 1;
      const gamma = dot(S[last]!, Y[last]!) / dot(Y[last]!, Y[last]!);
      for (let i = 0; i < q.length; i++) q[i]! *= gamma;
    }
    for (let k = 0; k < S.length; k++) {
      const beta = rho[k]! * dot(Y[k]!, q);
      const sk = S[k]!;
      for (let i = 0; i < q.length; i++) q[i]! += (alpha[k]! - beta) * sk[i]!;
    }
    let d: Float64Array = q.map((v) => -v);
    let slope = dot(g, d);
    if (!(slope < 0)) {
      S.length = 0; Y.length = 0; rho.length = 0;
      d = g.map((v) => -v);
      slope = dot(g, d);
    }
    let t = S.length === 0 ? Math.min(1, 1 / g.reduce((s, v) => s + Math.abs(v), 0)) : 1;
    let accepted: { x: Float64Array; f: number; g: Float64Array } | null = null;
    for (let ls = 0; ls < 25; ls++) {
      const xn = x.map((v, i) => v + t * d[i]!);
      const r = await objective(xn);
      evaluations++;
      if (Number.isFinite(r.f) && r.f <= f + 1e-4 * t * slope) { accepted = { x: xn, ...r }; break; }
      t *= 0.5;
    }
    if (!accepted) {
      if (S.length === 0) break; // not even a gradient step decreases the loss: converged in float32
      S.length = 0; Y.length = 0; rho.length = 0;
      continue;
    }
    const s = accepted.x.map((v, i) => v - x[i]!);
    const y = accepted.g.map((v, i) => v - g[i]!);
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.max(1, dot(y, y))) {
      S.push(s); Y.push(y); rho.push(1 / sy);
      if (S.length > m) { S.shift(); Y.shift(); rho.shift(); }
    }
    const change = Math.abs(f - accepted.f);
    x = accepted.x; f = accepted.f; g = accepted.g;
    if (opts.onProgress && ((it + 1) % (opts.progressEvery ?? 100) === 0)) opts.onProgress({ iteration: it + 1, loss: f });
    if (opts.changeTolerance !== undefined && change < opts.changeTolerance) { it++; break; }
  }
  return { x, f, iterations: it, evaluations };
}

export const LR_SCHEDULES = ['cosine', 'step', 'constant'] as const;
export type LrSchedule = (typeof LR_SCHEDULES)[number];

export interface SignedAdamOptions {
  iterations: number;
  lr: number;
  beta1?: number;
  beta2?: number;
  /** Adam on sign(g) (Geiping et al.'s default) or on g itself. Default true. */
  signed?: boolean;
  /**
   * The learning rate over the iterations: 'step' divides it by 10 at 3/8, 5/8 and 7/8 (inversefed,
   * breaching's step-lr), 'cosine' anneals it to 0 (breaching's cosine-decay), 'constant'. Default 'step'.
   */
  schedule?: LrSchedule;
  /** Projection after every step (e.g. clamp to the data range), in place. */
  project?: (x: Float64Array) => void;
  onProgress?: (p: Progress) => void;
  progressEvery?: number;
}

/** The learning rate of iteration t of T under a schedule. */
export function scheduledLr(lr: number, schedule: LrSchedule, t: number, T: number): number {
  if (schedule === 'cosine') return 0.5 * lr * (1 + Math.cos((Math.PI * t) / T));
  if (schedule === 'step') return lr * 0.1 ** [3 / 8, 5 / 8, 7 / 8].filter((q) => t >= Math.floor(q * T)).length;
  return lr;
}

/**
 * Adam (on sign(g) by default, Geiping et al.), projected after every step. Returns the iterate
 * with the lowest loss seen (breaching keeps the best candidate of a trial: with sign steps the
 * loss is not monotone) and that loss.
 */
export async function signedAdam(objective: Objective, x0: Float64Array, opts: SignedAdamOptions): Promise<{ x: Float64Array; f: number }> {
  const b1 = opts.beta1 ?? 0.9;
  const b2 = opts.beta2 ?? 0.999;
  const signed = opts.signed ?? true;
  const schedule = opts.schedule ?? 'step';
  const eps = 1e-8;
  const x = Float64Array.from(x0);
  opts.project?.(x);
  const mom = new Float64Array(x.length);
  const vel = new Float64Array(x.length);
  const T = opts.iterations;
  let best = { x: Float64Array.from(x), f: Infinity };
  for (let t = 0; t < T; t++) {
    const r = await objective(x);
    if (r.f < best.f || !Number.isFinite(best.f)) best = { x: Float64Array.from(x), f: r.f };
    const lr = scheduledLr(opts.lr, schedule, t, T);
    const c1 = 1 - b1 ** (t + 1);
    const c2 = 1 - b2 ** (t + 1);
    for (let i = 0; i < x.length; i++) {
      const gi = signed ? Math.sign(r.g[i]!) : r.g[i]!;
      mom[i] = b1 * mom[i]! + (1 - b1) * gi;
      vel[i] = b2 * vel[i]! + (1 - b2) * gi * gi;
      x[i]! -= (lr * (mom[i]! / c1)) / (Math.sqrt(vel[i]! / c2) + eps);
    }
    opts.project?.(x);
    if (opts.onProgress && (t + 1) % (opts.progressEvery ?? 100) === 0) opts.onProgress({ iteration: t + 1, loss: r.f });
  }
  const last = (await objective(x)).f;
  return last <= best.f || !Number.isFinite(best.f) ? { x, f: last } : best;
}
