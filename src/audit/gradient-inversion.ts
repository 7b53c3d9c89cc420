/**
 * Optimization-based gradient leakage on any ONNX classifier our autodiff differentiates
 * (conv nets, ResNets, MLPs): the attacker sees the gradient g of one example's softmax
 * cross-entropy with respect to every parameter (one training step on a batch of one, maybe
 * clipped and noised by DP-SGD) and searches for an input x' whose gradient matches it.
 *
 * - DLG (Zhu et al. 2019): L2 matching sum |dL(x', y')/dtheta - g|^2 over x' and soft-label
 *   logits y', minimized with L-BFGS; the label guess is argmax y'.
 * - iDLG (Zhao et al. 2020): the label first, from the sign of the last layer's gradient (only
 *   the true class has p - 1 < 0), then L2 matching over x' alone.
 * - Inverting Gradients (Geiping et al. 2020): 1 - cosine(dL(x', y)/dtheta, g) over all
 *   parameters + tv * TV(x'), Adam (on the sign of the input's gradient with `signed`), the
 *   learning rate annealed (cosine) or divided by 10 at 3/8, 5/8 and 7/8 of the iterations, x'
 *   clamped to the data range [0, 1] after every step, the best iterate of each run and the best
 *   of `restarts` runs by matching loss; the label by iDLG's rule.
 *
 * The matching loss and its input gradient come from one ONNX graph (./gradient-inversion-graph.ts):
 * the model's parameter gradient built by our autodiff, differentiated again. Metrics as the
 * analytic attack's: MSE, PSNR and SSIM against the original with data range 1, label accuracy,
 * plus the final gradient cosine distance 1 - cos(dL(x^, y^)/dtheta, g).
 *
 * DP: the example's whole gradient is clipped to L2 norm C and N(0, sigma^2 C^2) is added to
 * every coordinate (DP-SGD with a batch of one) before the attacker sees it. The noise is drawn
 * from a seeded generator so experiments repeat: it measures what DP's noise does to the attack,
 * and is not itself a private release.
 */
import type { Model } from '../graph/ir.js';
import { createSession, ort, type RpSession } from '../runtime/session.js';
import { exampleSize, type Dataset } from '../data/index.js';
import { noiseAt, validateSchedule, type NoiseSchedule } from '../train/dp/noise-schedule.js';
import { Random } from '../random.js';
import { RpOnnxError } from '../errors.js';
import { clipFactor } from '../clipping.js';
import { mse, psnr, ssim } from './image-metrics.js';
import { buildInversionGraphs, type InversionGraphs } from './gradient-inversion-graph.js';
import { lbfgs, signedAdam, LR_SCHEDULES, type LrSchedule, type Objective } from './gradient-inversion-optim.js';
import { clipAndNoise, type DpOptions, type ReconstructedExample, type ScheduleLeakageRow } from './gradient-leakage.js';

export const INVERSION_METHODS = ['dlg', 'idlg', 'inverting-gradients'] as const;
export type InversionMethod = (typeof INVERSION_METHODS)[number];
export const INVERSION_INITS = ['randn', 'uniform', 'grey'] as const;
export type InversionInit = (typeof INVERSION_INITS)[number];

export interface InversionSettings {
  /** L-BFGS iterations (DLG, iDLG) or Adam steps (Inverting Gradients). */
  iterations: number;
  /** Adam's learning rate (Inverting Gradients). */
  lr: number;
  /** Weight of the total-variation prior (Inverting Gradients). */
  tvWeight: number;
  restarts: number;
  init: InversionInit;
  /** Adam on the sign of the input gradient (Geiping et al.'s choice) or on the gradient itself (Inverting Gradients). */
  signed: boolean;
  /** Adam's learning-rate schedule (Inverting Gradients). */
  lrSchedule: LrSchedule;
}

/**
 * DLG: its 300 L-BFGS steps are up to 20 iterations each (torch.optim.LBFGS's max_iter), so 6000
 * iterations, stopped early once the matching loss no longer changes.
 * Inverting Gradients: Adam at lr 0.1 for 4800 iterations from a randn init, one restart
 * (inversefed), with the learning rate annealed by a cosine (breaching's cosine-decay), on the
 * gradient itself (inversefed's default; the paper's signed steps are --signed) and without the
 * TV prior. Measured on the sigmoid LeNet, Fashion-MNIST train image 0 (docs/experiment-gradient-leakage.md):
 * signed Adam with step decay, inversefed's paper setting, stalls at 25-31 dB because sign steps of
 * a fixed size circle a minimum they cannot approach until the rate drops (PyTorch shows the same,
 * scripts/dev/inverting-gradients-reference.py); unsigned with step decay reaches 50 dB; unsigned
 * with cosine decay 84 dB. Any TV weight that matters caps an exact reconstruction of these small
 * images (1e-6: 52.6 dB), so the prior is for noisy gradients and larger models (--tv-weight;
 * breaching uses 0.2 on ImageNet).
 */
export const INVERSION_DEFAULTS: Readonly<Record<InversionMethod, InversionSettings>> = {
  dlg: { iterations: 6000, lr: 1, tvWeight: 0, restarts: 1, init: 'randn', signed: false, lrSchedule: 'constant' },
  idlg: { iterations: 6000, lr: 1, tvWeight: 0, restarts: 1, init: 'randn', signed: false, lrSchedule: 'constant' },
  'inverting-gradients': { iterations: 4800, lr: 0.1, tvWeight: 0, restarts: 1, init: 'randn', signed: false, lrSchedule: 'cosine' },
};

export interface InversionOptions extends Partial<InversionSettings> {
  method: InversionMethod;
  dp?: DpOptions;
  /** Seed of the DP noise (default 0). */
  seed?: number;
  /** Seed of the attacker's initialization (default 1). */
  attackSeed?: number;
  threads?: number;
  /** Progress lines (iteration, matching loss) for long attacks. */
  onProgress?: (line: string) => void;
  progressEvery?: number;
}

export interface InversionExample extends ReconstructedExample {
  /** 1 - cos between the reconstruction's gradient (with the inferred label) and the observed one. */
  gradientCosineDistance: number;
  matchingLoss: number;
  seconds: number;
}

export interface InversionReport {
  method: InversionMethod;
  settings: InversionSettings;
  examples: InversionExample[];
  meanMse: number;
  meanPsnr: number;
  meanSsim: number | null;
  labelAccuracy: number;
  meanGradientCosineDistance: number;
  secondsPerAttack: number;
  dp: DpOptions | null;
}

const flatLength = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Total variation as breaching/inversefed define it: mean |horizontal diff| + mean |vertical diff|, and its gradient. */
export function totalVariation(x: ArrayLike<number>, shape: readonly [number, number, number]): { tv: number; grad: Float64Array } {
  const [c, h, w] = shape;
  const grad = new Float64Array(c * h * w);
  let sx = 0;
  let sy = 0;
  const nx = c * h * (w - 1);
  const ny = c * (h - 1) * w;
  for (let ch = 0; ch < c; ch++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const k = (ch * h + i) * w + j;
        if (j + 1 < w && nx > 0) {
          const d = x[k + 1]! - x[k]!;
          sx += Math.abs(d);
          const s = Math.sign(d) / nx;
          grad[k + 1]! += s;
          grad[k]! -= s;
        }
        if (i + 1 < h && ny > 0) {
          const d = x[k + w]! - x[k]!;
          sy += Math.abs(d);
          const s = Math.sign(d) / ny;
          grad[k + w]! += s;
          grad[k]! -= s;
        }
      }
    }
  }
  return { tv: (nx > 0 ? sx / nx : 0) + (ny > 0 ? sy / ny : 0), grad };
}

/** The attacker's tools for one model: the gradient a step shares, and the matching objectives. */
export class GradientInverter {
  private constructor(
    private readonly graphs: { l2: InversionGraphs; soft?: InversionGraphs; cosine?: InversionGraphs },
    private readonly gradient: RpSession,
    private readonly sessions: Map<string, RpSession>,
  ) {}

  /** Builds the graphs and sessions the given methods need (default: all). */
  static async create(model: Model, opts: { threads?: number; methods?: readonly InversionMethod[] } = {}): Promise<GradientInverter> {
    const methods = opts.methods ?? INVERSION_METHODS;
    const l2 = buildInversionGraphs(model, { loss: 'l2', softLabel: false });
    const soft = methods.includes('dlg') ? buildInversionGraphs(model, { loss: 'l2', softLabel: true }) : undefined;
    const cosine = methods.includes('inverting-gradients') ? buildInversionGraphs(model, { loss: 'cosine', softLabel: false }) : undefined;
    const make = (m: Model) => createSession(m, { threads: opts.threads, noiseSeed: 'model' });
    const sessions = new Map<string, RpSession>();
    if (soft) sessions.set('soft', await make(soft.matching));
    if (methods.includes('idlg')) sessions.set('l2', await make(l2.matching));
    if (cosine) sessions.set('cosine', await make(cosine.matching));
    return new GradientInverter({ l2, soft, cosine }, await make(l2.gradient), sessions);
  }

  get exampleShape(): number[] {
    return this.graphs.l2.exampleShape;
  }

  get classes(): number {
    return this.graphs.l2.classes;
  }

  /** The per-example gradient of the cross-entropy at (x, label), one Float32Array per parameter. */
  async gradientOf(x: Float32Array, label: number): Promise<Float32Array[]> {
    const g = this.graphs.l2;
    const out = await this.gradient.run({
      [g.input]: new ort.Tensor('float32', x, [1, ...g.exampleShape]),
      label: new ort.Tensor('int64', BigInt64Array.of(BigInt(label)), [1]),
    }, g.gradientOutputs);
    return g.gradientOutputs.map((o) => Float32Array.from(out[o]!.data as Float32Array));
  }

  /** iDLG's label: the class whose last-layer gradient is negative (the most negative). */
  inferLabel(observed: readonly Float32Array[]): number {
    const g = this.graphs.l2;
    const k = g.params.findIndex((p) => p.name === g.lastLayer.param);
    const grad = observed[k]!;
    const shape = g.params[k]!.shape;
    const K = g.classes;
    const score = new Float64Array(K);
    if (g.lastLayer.kind === 'bias') for (let c = 0; c < K; c++) score[c] = grad[c]!;
    else if (g.lastLayer.kind === 'rows') {
      const d = shape[1]!;
      for (let c = 0; c < K; c++) for (let i = 0; i < d; i++) score[c]! += grad[c * d + i]!;
    } else {
      const d = shape[0]!;
      for (let i = 0; i < d; i++) for (let c = 0; c < K; c++) score[c]! += grad[i * K + c]!;
    }
    let best = 0;
    for (let c = 1; c < K; c++) if (score[c]! < score[best]!) best = c;
    return best;
  }

  /** An objective over x' (and the soft-label logits for DLG) for one observed gradient. */
  objective(kind: 'soft' | 'l2' | 'cosine', observed: readonly Float32Array[], label: number, tv?: { weight: number; shape: readonly [number, number, number] }): Objective {
    const g = this.graphs[kind];
    const session = this.sessions.get(kind);
    if (!g || !session) throw new Error(`GradientInverter: created without the ${kind} matching graph`);
    const n = flatLength(g.exampleShape);
    const obs = Object.fromEntries(g.observedInputs.map((name, i) => [name, new ort.Tensor('float32', observed[i]!, g.params[i]!.shape)]));
    const fetch = [g.outputs.loss, g.outputs.dx, ...(g.outputs.dLabel ? [g.outputs.dLabel] : [])];
    return async (v: Float64Array) => {
      const x = Float32Array.from(v.subarray(0, n));
      const feeds: Record<string, ort.Tensor> = { ...obs, [g.input]: new ort.Tensor('float32', x, [1, ...g.exampleShape]) };
      feeds[g.labelInput] = kind === 'soft'
        ? new ort.Tensor('float32', Float32Array.from(v.subarray(n)), [1, g.classes])
        : new ort.Tensor('int64', BigInt64Array.of(BigInt(label)), [1]);
      const out = await session.run(feeds, fetch);
      let f = Number((out[g.outputs.loss]!.data as Float32Array)[0]);
      const grad = new Float64Array(v.length);
      grad.set(out[g.outputs.dx]!.data as Float32Array, 0);
      if (g.outputs.dLabel) grad.set(out[g.outputs.dLabel]!.data as Float32Array, n);
      if (tv && tv.weight > 0) {
        const t = totalVariation(v.subarray(0, n), tv.shape);
        f += tv.weight * t.tv;
        for (let i = 0; i < n; i++) grad[i]! += tv.weight * t.grad[i]!;
      }
      return { f, g: grad };
    };
  }

  async release(): Promise<void> {
    await this.gradient.release();
    for (const s of this.sessions.values()) await s.release();
  }
}

/** L2 norm over all parameters. */
export function gradientNorm(grads: readonly ArrayLike<number>[]): number {
  let s = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
  return Math.sqrt(s);
}

/** 1 - cos over all parameters together. */
export function cosineDistance(a: readonly ArrayLike<number>[], b: readonly ArrayLike<number>[]): number {
  let dot = 0;
  a.forEach((x, k) => { for (let i = 0; i < x.length; i++) dot += x[i]! * b[k]![i]!; });
  const den = gradientNorm(a) * gradientNorm(b);
  return den > 0 ? 1 - dot / den : 1;
}

function initial(init: InversionInit, n: number, rng: Random): Float64Array {
  const x = new Float64Array(n);
  if (init === 'grey') x.fill(0.5);
  else if (init === 'uniform') for (let i = 0; i < n; i++) x[i] = rng.uniform();
  else for (let i = 0; i < n; i++) x[i] = rng.normal();
  return x;
}

function resolveSettings(opts: InversionOptions): InversionSettings {
  const d = INVERSION_DEFAULTS[opts.method];
  if (!d) throw new RpOnnxError(`method must be one of ${[...INVERSION_METHODS, 'analytic'].join(', ')}, got '${opts.method}'`, { param: 'method' });
  const s: InversionSettings = {
    iterations: opts.iterations ?? d.iterations, lr: opts.lr ?? d.lr, tvWeight: opts.tvWeight ?? d.tvWeight,
    restarts: opts.restarts ?? d.restarts, init: opts.init ?? d.init, signed: opts.signed ?? d.signed, lrSchedule: opts.lrSchedule ?? d.lrSchedule,
  };
  if (!(Number.isInteger(s.iterations) && s.iterations >= 1)) throw new RpOnnxError(`iterations must be a positive integer, got ${s.iterations}`, { param: 'iterations' });
  if (!(s.lr > 0)) throw new RpOnnxError(`lr must be positive, got ${s.lr}`, { param: 'lr' });
  if (!(s.tvWeight >= 0)) throw new RpOnnxError(`tvWeight must be >= 0, got ${s.tvWeight}`, { param: 'tvWeight' });
  if (!(Number.isInteger(s.restarts) && s.restarts >= 1)) throw new RpOnnxError(`restarts must be a positive integer, got ${s.restarts}`, { param: 'restarts' });
  if (!INVERSION_INITS.includes(s.init)) throw new RpOnnxError(`init must be one of ${INVERSION_INITS.join(', ')}, got '${s.init}'`, { param: 'init' });
  if (!LR_SCHEDULES.includes(s.lrSchedule)) throw new RpOnnxError(`lrSchedule must be one of ${LR_SCHEDULES.join(', ')}, got '${s.lrSchedule}'`, { param: 'lrSchedule' });
  return s;
}

/** One attack on one observed gradient: the reconstruction, its label and final matching loss. */
export async function invertGradient(
  inv: GradientInverter, observed: readonly Float32Array[], method: InversionMethod, s: InversionSettings,
  rng: Random, shape: readonly [number, number, number], progress?: (iteration: number, loss: number, restart: number) => void, progressEvery = 100,
): Promise<{ x: Float32Array; label: number; loss: number }> {
  const n = flatLength(inv.exampleShape);
  let best: { x: Float32Array; label: number; loss: number } | null = null;
  for (let r = 0; r < s.restarts; r++) {
    const onProgress = progress ? (p: { iteration: number; loss: number }) => progress(p.iteration, p.loss, r) : undefined;
    let result: { x: Float32Array; label: number; loss: number };
    if (method === 'dlg') {
      const v0 = new Float64Array(n + inv.classes);
      v0.set(initial(s.init, n, rng));
      for (let k = 0; k < inv.classes; k++) v0[n + k] = rng.normal();
      const out = await lbfgs(inv.objective('soft', observed, 0), v0, { iterations: s.iterations, changeTolerance: 0, onProgress, progressEvery });
      const logits = out.x.subarray(n);
      let label = 0;
      for (let k = 1; k < logits.length; k++) if (logits[k]! > logits[label]!) label = k;
      result = { x: Float32Array.from(out.x.subarray(0, n)), label, loss: out.f };
    } else if (method === 'idlg') {
      const label = inv.inferLabel(observed);
      const out = await lbfgs(inv.objective('l2', observed, label), initial(s.init, n, rng), { iterations: s.iterations, changeTolerance: 0, onProgress, progressEvery });
      result = { x: Float32Array.from(out.x), label, loss: out.f };
    } else {
      const label = inv.inferLabel(observed);
      const clamp = (x: Float64Array) => { for (let i = 0; i < x.length; i++) x[i] = Math.min(1, Math.max(0, x[i]!)); };
      const out = await signedAdam(inv.objective('cosine', observed, label, { weight: s.tvWeight, shape }), initial(s.init, n, rng), { iterations: s.iterations, lr: s.lr, signed: s.signed, schedule: s.lrSchedule, project: clamp, onProgress, progressEvery });
      result = { x: Float32Array.from(out.x), label, loss: out.f };
    }
    if (!best || result.loss < best.loss || !Number.isFinite(best.loss)) best = result;
  }
  return best!;
}

/** Runs the attack on the examples at `indices` of `ds`, each from its own (privatized) gradient. */
export async function gradientInversion(model: Model | GradientInverter, ds: Dataset, indices: readonly number[], opts: InversionOptions): Promise<InversionReport> {
  const settings = resolveSettings(opts);
  const inv = model instanceof GradientInverter ? model : await GradientInverter.create(model, { threads: opts.threads, methods: [opts.method] });
  try {
    const per = exampleSize(ds);
    if (flatLength(inv.exampleShape) !== per) {
      throw new RpOnnxError(`the model takes inputs of shape [${inv.exampleShape.join(', ')}] but ${ds.name} has examples of shape [${ds.shape.join(', ')}]`);
    }
    if (inv.classes < ds.classes) throw new RpOnnxError(`the model has ${inv.classes} classes but ${ds.name} has ${ds.classes}`);
    if (indices.length === 0) throw new RpOnnxError('no examples to attack');
    const noise = new Random(opts.seed ?? 0);
    const init = new Random(opts.attackSeed ?? 1);
    const [, h, w] = ds.shape;
    const window = Math.min(h, w) >= 11 ? 11 : Math.min(h, w) >= 7 ? 7 : 0;
    const examples: InversionExample[] = [];
    for (const index of indices) {
      if (!(Number.isInteger(index) && index >= 0 && index < ds.count)) throw new RpOnnxError(`index ${index} is outside ${ds.name} (0..${ds.count - 1})`, { param: 'index' });
      const original = ds.images.slice(index * per, (index + 1) * per);
      const label = ds.labels[index]!;
      const clean = await inv.gradientOf(original, label);
      const observed = opts.dp ? clipAndNoise(clean, opts.dp, noise) : clean;
      const started = performance.now();
      const progress = opts.onProgress
        ? (it: number, loss: number, r: number) => opts.onProgress!(`${opts.method} example ${index}${settings.restarts > 1 ? ` restart ${r + 1}/${settings.restarts}` : ''}: iteration ${it}/${settings.iterations}, matching loss ${loss.toExponential(4)}`)
        : undefined;
      const rec = await invertGradient(inv, observed, opts.method, settings, init, ds.shape, progress, opts.progressEvery);
      const seconds = (performance.now() - started) / 1000;
      const reconstruction = Float32Array.from(rec.x, (v) => Math.min(1, Math.max(0, v)));
      const recGrad = await inv.gradientOf(reconstruction, rec.label);
      examples.push({
        index, label, inferredLabel: rec.label, labelCorrect: rec.label === label,
        mse: mse(original, reconstruction), psnr: psnr(original, reconstruction, 1),
        ssim: window ? ssim(original, reconstruction, ds.shape, { window }) : null,
        gradientNorm: gradientNorm(clean), gradientCosineDistance: cosineDistance(recGrad, observed),
        matchingLoss: rec.loss, seconds, original, reconstruction,
      });
    }
    const mean = (f: (e: InversionExample) => number) => examples.reduce((s, e) => s + f(e), 0) / examples.length;
    return {
      method: opts.method, settings, examples,
      meanMse: mean((e) => e.mse), meanPsnr: mean((e) => e.psnr), meanSsim: window ? mean((e) => e.ssim!) : null,
      labelAccuracy: mean((e) => (e.labelCorrect ? 1 : 0)), meanGradientCosineDistance: mean((e) => e.gradientCosineDistance),
      secondsPerAttack: mean((e) => e.seconds), dp: opts.dp ?? null,
    };
  } finally {
    if (!(model instanceof GradientInverter)) await inv.release();
  }
}

/** One step of a dynamic noise schedule, as the analytic attack reports it, plus the gradient match. */
export interface ScheduleInversionRow extends ScheduleLeakageRow {
  meanGradientCosineDistance: number;
}

/**
 * The optimization attack along a dynamic noise schedule (Wei, Liu et al.): the same examples
 * and weights at each of `steps`, privatized with that step's sigma_t and clipping bound C.
 */
export async function inversionOverSchedule(model: Model, ds: Dataset, indices: readonly number[], maxGradNorm: number, schedule: NoiseSchedule, steps: readonly number[], opts: InversionOptions): Promise<ScheduleInversionRow[]> {
  validateSchedule(schedule);
  const inv = await GradientInverter.create(model, { threads: opts.threads, methods: [opts.method] });
  try {
    const rows: ScheduleInversionRow[] = [];
    for (const [k, step] of steps.entries()) {
      if (!(Number.isInteger(step) && step >= 0 && step < schedule.totalSteps)) throw new RpOnnxError(`step ${step} is outside the schedule's ${schedule.totalSteps} steps`);
      const noiseMultiplier = noiseAt(schedule, step);
      const r = await gradientInversion(inv, ds, indices, { ...opts, dp: { maxGradNorm, noiseMultiplier }, seed: (opts.seed ?? 0) + k });
      rows.push({ step, noiseMultiplier, meanPsnr: r.meanPsnr, meanSsim: r.meanSsim, meanMse: r.meanMse, labelAccuracy: r.labelAccuracy, meanGradientCosineDistance: r.meanGradientCosineDistance });
    }
    return rows;
  } finally {
    await inv.release();
  }
}
