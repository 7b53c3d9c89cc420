/**
 * DP-SGD (Abadi et al. 2016) as a step of the one training loop (fit.ts), the way Opacus's
 * DPOptimizer wraps a plain optimizer: per-example gradients clipped to L2 norm C and summed in
 * the training graph, Gaussian noise N(0, sigma_t^2 C_t^2) per coordinate, the sum divided by
 * the expected batch size q*N (Poisson) or the batch size (shuffle), the optimizer's step, then
 * the ledger's hook. With the seed papers' variants:
 * - dynamic noise (noise-schedule.ts) and adaptive clipping (adaptive-clipping.ts), composed
 *   step by step by the ledger;
 * - gradient encoding (top-k per example) and denoising (encoding.ts), with non-Gaussian noise
 *   families reported without an epsilon;
 * - public-batch BatchNorm statistics (Davody et al.).
 * Every accountable run given a target epsilon stops before a step that would exceed it.
 * Randomness: the OS CSPRNG for noise and sampling unless `secureRng` is false, in which case
 * every step's generators derive from (seed, step), so a resumed run replays an uninterrupted one.
 */
import * as ort from 'onnxruntime-node';
import { Model } from '../../graph/ir.js';
import { Random } from '../../random.js';
import { RpOnnxError } from '../../errors.js';
import type { Trainer, TrainerOptions, StepResult } from '../trainer.js';
import { fit, type EpochReport } from '../fit.js';
import type { EmaOptions } from '../ema.js';
import { gatherBatch, type Batch, type Dataset } from '../../data/index.js';
import { noiseAt, type NoiseSchedule, type NoiseScheduleName } from './noise-schedule.js';
import { AdaptiveClipper, gradientNoiseMultiplier } from './adaptive-clipping.js';
import { addNoise, type NoiseFamily } from './noise.js';
import { keepTopK, denoise } from './encoding.js';
import type { Sampling } from './accountant.js';
import { RunLedger, planRunNoise } from './ledger-factory.js';
import { privacyStatement, type PrivacyStatement } from './statement.js';
import { DP_DEFAULTS, type AccountantName } from './defaults.js';
import { derivedSeed, poissonSampler, shuffleSampler, type BatchSampler } from '../batch-sampler.js';
import type { StepContext, StepNotes, StepStrategy } from '../step-strategy.js';
import { publicStatisticsModel } from '../../passes/public-statistics.js';
import { createSession, type RpSession } from '../../runtime/session.js';

export type { PrivacyStatement } from './statement.js';

export interface DpOptions {
  maxGradNorm: number;
  delta: number;
  /** Noise multiplier at the start of training (or calibrated from targetEpsilon). */
  noiseMultiplier?: number;
  /** Calibrate sigma to it (without noiseMultiplier); in every accountable run, a budget never exceeded. */
  targetEpsilon?: number;
  noiseSchedule: NoiseScheduleName;
  /** End value as a fraction of the start value (schedules other than constant). */
  noiseEndRatio: number;
  noisePeriodSteps?: number;
  /** Accountant by registry name (default DP_DEFAULTS.accountant, PRV). */
  accountant?: AccountantName;
  sampling: Sampling;
  clip: 'constant' | 'adaptive';
  clipQuantile: number;
  clipLearningRate: number;
  /** Noise std of the adaptive-clipping count query, in examples (default: expected batch / 20). */
  clipCountNoise?: number;
  noise: NoiseFamily;
  /** Keep the top-k coordinates of each example's gradient (per-example mode). */
  encodeTopK?: number;
  /** Hard-threshold denoising at this many noise standard deviations. */
  denoiseThreshold?: number;
  /** Cryptographic noise and sampling (default true); false uses `seed` and is NOT private (tests only). */
  secureRng: boolean;
  seed?: number;
}

export interface PrivateStepOptions {
  dp: DpOptions;
  batchSize: number;
  /** Training-set size N (q = B / N). */
  examples: number;
  /** Shuffle sampling only: false keeps file order (the first batch is the first B examples). */
  shuffle?: boolean;
  /**
   * Public data (disjoint from the private training data) whose batch statistics normalize every
   * BatchNormalization at each step; the trainer must use batchNorm 'fed'.
   */
  publicData?: Dataset;
  /**
   * The logical (Poisson) batch runs through the training graph in chunks of at most this many
   * examples (Opacus's BatchMemoryManager): memory is bounded, the step is unchanged.
   */
  physicalBatchSize?: number;
}

interface PrivateStepState {
  ledger: unknown;
  clipNorm: number;
  /** What the ledger's history means: a resume under other settings would misaccount it. */
  accounting: { sampling: string; sampleRate: number; delta: number; noise: string; secureRng: boolean };
}

export function validateDpOptions(dp: DpOptions): void {
  if (!(dp.maxGradNorm > 0)) throw new RpOnnxError(`maxGradNorm must be > 0, got ${dp.maxGradNorm}`);
  if (!(dp.delta > 0 && dp.delta < 1)) throw new RpOnnxError(`delta must be in (0, 1), got ${dp.delta}`);
  if (dp.noiseMultiplier !== undefined && !(dp.noiseMultiplier >= 0)) throw new RpOnnxError(`noiseMultiplier must be >= 0, got ${dp.noiseMultiplier}`);
  if (dp.targetEpsilon !== undefined && !(dp.targetEpsilon > 0)) throw new RpOnnxError(`targetEpsilon must be > 0, got ${dp.targetEpsilon}`);
  if (dp.noiseMultiplier === undefined && dp.targetEpsilon === undefined) throw new RpOnnxError('DP-SGD needs noiseMultiplier or targetEpsilon');
  if (dp.encodeTopK !== undefined && !(Number.isInteger(dp.encodeTopK) && dp.encodeTopK >= 1)) throw new RpOnnxError('encodeTopK must be a positive integer');
  if (!dp.secureRng && dp.seed === undefined) throw new RpOnnxError('seeded DP noise (secureRng false) needs a seed');
}

/** The private step (Opacus's DPOptimizer.pre_step + step + the accountant's hook). */
export class PrivateStep implements StepStrategy {
  readonly name = 'dp-sgd';
  readonly sampleRate: number;
  readonly expectedBatch: number;
  readonly countNoise: number;
  ledger: RunLedger;
  schedule!: NoiseSchedule;
  private clipNorm: number;
  private readonly clipper: AdaptiveClipper | undefined;
  private readonly accountable: boolean;
  private readonly secureNoise: Random | undefined;
  private readonly mode: 'clip' | 'per-example';
  private trainer!: Trainer;
  private publicStats: PublicStatistics | undefined;
  private lastSigma = 0;

  constructor(readonly o: PrivateStepOptions) {
    const dp = o.dp;
    validateDpOptions(dp);
    if (!(o.examples >= 1)) throw new RpOnnxError('DP-SGD needs at least one training example');
    this.sampleRate = Math.min(1, o.batchSize / o.examples);
    this.expectedBatch = this.sampleRate * o.examples;
    this.countNoise = dp.clipCountNoise ?? Math.max(1, this.expectedBatch / 20);
    this.clipNorm = dp.maxGradNorm;
    this.clipper = dp.clip === 'adaptive'
      ? new AdaptiveClipper({ initial: dp.maxGradNorm, targetQuantile: dp.clipQuantile, learningRate: dp.clipLearningRate, countNoise: this.countNoise })
      : undefined;
    this.accountable = dp.noise === 'gaussian';
    this.ledger = new RunLedger(this.ledgerSettings());
    this.secureNoise = dp.secureRng ? Random.secure() : undefined;
    this.mode = dp.encodeTopK !== undefined ? 'per-example' : 'clip';
  }

  private ledgerSettings() {
    return { accountant: this.o.dp.accountant ?? DP_DEFAULTS.accountant, sampling: this.o.dp.sampling, sampleRate: this.sampleRate, delta: this.o.dp.delta };
  }

  trainerOptions(): Partial<TrainerOptions> {
    return { dp: { mode: this.mode } };
  }

  sampler(train: Dataset): BatchSampler {
    const seed = this.o.dp.secureRng ? null : this.o.dp.seed!;
    if (this.o.dp.sampling === 'poisson') return poissonSampler({ count: train.count, sampleRate: this.sampleRate, seed });
    return shuffleSampler({
      count: train.count, batchSize: this.o.batchSize, shuffle: this.o.shuffle ?? true,
      rngForEpoch: seed === null ? null : (epoch) => new Random(derivedSeed(seed, 'shuffle', epoch)),
    });
  }

  async start(ctx: StepContext): Promise<void> {
    this.trainer = ctx.trainer;
    if (this.ledger.steps !== ctx.trainer.stepCount) {
      throw new RpOnnxError(`checkpoint: the privacy ledger has ${this.ledger.steps} steps but the model ${ctx.trainer.stepCount}; the checkpoint is corrupt`);
    }
    this.schedule = planRunNoise(this.o.dp, { sampleRate: this.sampleRate, stepsPerEpoch: ctx.stepsPerEpoch, totalSteps: ctx.totalSteps });
    this.lastSigma = noiseAt(this.schedule, ctx.trainer.stepCount);
    if (this.o.publicData) this.publicStats = await PublicStatistics.create(ctx.trainer, this.o.publicData, Math.max(1, Math.round(this.expectedBatch)), this.o.dp.seed ?? 0);
  }

  allows(t: number): boolean {
    const target = this.o.dp.targetEpsilon;
    if (!this.accountable || target === undefined) return true;
    return this.ledger.epsilon(noiseAt(this.schedule, t)) <= target;
  }

  private noiseRng(t: number): Random {
    return this.secureNoise ?? new Random(derivedSeed(this.o.dp.seed!, 'noise', t));
  }

  async step(trainer: Trainer, batch: Batch, lr: number, t: number): Promise<StepResult> {
    const dp = this.o.dp;
    const sigma = noiseAt(this.schedule, t);
    if (this.publicStats) await this.publicStats.update(t);
    const sigmaGrad = this.clipper ? gradientNoiseMultiplier(sigma, this.countNoise) : sigma;
    const grads = new Map<string, Float32Array>();
    let norms: Float32Array = new Float32Array(0);
    let result: StepResult = { loss: NaN, correct: 0, size: 0 };
    if (batch.size > 0) {
      const r = await trainer.dpGradients(batch.images, batch.labels, batch.size, this.clipNorm, this.o.physicalBatchSize);
      result = { loss: r.loss, correct: r.correct, size: r.size };
      norms = r.norms;
      if (this.mode === 'per-example') encodeAndClip(r.grads, trainer, batch.size, dp.encodeTopK!, this.clipNorm, grads);
      else for (const [k, g] of r.grads) grads.set(k, Float32Array.from(g));
    } else {
      // An empty Poisson batch still releases noise: the mechanism runs every step.
      for (const [k, p] of trainer.params) grads.set(k, new Float32Array(p.length));
    }
    const rng = this.noiseRng(t);
    const std = sigmaGrad * this.clipNorm;
    // Opacus scales by the expected batch size under Poisson sampling: dividing by the actual
    // size would make the divisor depend on who was sampled.
    const denom = dp.sampling === 'poisson' ? this.expectedBatch : Math.max(1, batch.size);
    for (const g of grads.values()) {
      addNoise(g, std, dp.noise, rng);
      if (dp.denoiseThreshold !== undefined) denoise(g, std, dp.denoiseThreshold);
      for (let i = 0; i < g.length; i++) g[i]! /= denom;
    }
    trainer.applyUpdate(grads, lr);
    this.ledger.record(sigma);
    this.lastSigma = sigma;
    if (this.clipper) this.clipNorm = this.clipper.update(norms, this.expectedBatch, rng);
    return result;
  }

  endEpoch(): void {
    this.ledger.endEpoch();
  }

  /** Epsilon spent so far, null when none is claimed (seeded or non-Gaussian noise). */
  epsilon(): number | null {
    return this.accountable && this.o.dp.secureRng ? this.ledger.epsilon() : null;
  }

  notes(): StepNotes {
    return { epsilon: this.epsilon(), sigma: this.lastSigma, clipNorm: this.clipNorm };
  }

  private accounting(): PrivateStepState['accounting'] {
    const dp = this.o.dp;
    return { sampling: dp.sampling, sampleRate: this.sampleRate, delta: dp.delta, noise: dp.noise, secureRng: dp.secureRng };
  }

  state(): PrivateStepState {
    return { ledger: this.ledger.state(), clipNorm: this.clipNorm, accounting: this.accounting() };
  }

  load(state: unknown): void {
    const s = state as PrivateStepState | null;
    if (!s || typeof s !== 'object' || !(s.clipNorm > 0) || !s.accounting) throw new RpOnnxError('checkpoint: the DP-SGD state is missing or corrupt');
    const now = this.accounting();
    for (const k of Object.keys(now) as (keyof typeof now)[]) {
      if (s.accounting[k] !== now[k]) {
        throw new RpOnnxError(`checkpoint: the run was accounted with ${k} ${String(s.accounting[k])}, this one has ${String(now[k])}: resume with the same DP settings (batchSize, sampling, delta, noise)`);
      }
    }
    this.ledger = RunLedger.restore(this.ledgerSettings(), s.ledger);
    this.clipNorm = s.clipNorm;
    if (this.clipper) this.clipper.bound = s.clipNorm;
  }

  async finish(): Promise<void> {
    // The exported model normalizes with the statistics of a final public batch.
    if (this.publicStats) {
      await this.publicStats.update(this.trainer.stepCount);
      await this.publicStats.release();
    }
  }

  statement(): PrivacyStatement {
    return privacyStatement(this.o.dp, this.ledger, this.schedule);
  }

  /** Everything needed to recompute epsilon, for `rp-onnx.privacy`. */
  record(): Record<string, unknown> {
    const dp = this.o.dp;
    const st = this.statement();
    const s = this.schedule;
    return {
      mechanism: st.mechanism, private: st.private, epsilon: st.epsilon, delta: dp.delta,
      accountant: this.ledger.accountant,
      sampling: dp.sampling, adjacency: this.ledger.adjacency, sampleRate: this.sampleRate,
      expectedBatchSize: this.expectedBatch, physicalBatchSize: this.o.physicalBatchSize ?? null, examples: this.o.examples, steps: this.ledger.steps,
      noise: {
        family: dp.noise, source: dp.secureRng ? 'secure' : 'seeded', ...(dp.secureRng ? {} : { seed: dp.seed }),
        schedule: { name: s.name, start: s.start, end: s.end, period: s.period, totalSteps: s.totalSteps },
        // The sigma of every step taken, run-length encoded, with epoch ends ('end').
        steps: this.ledger.state(),
      },
      clipping: {
        mode: dp.clip, maxGradNorm: dp.maxGradNorm, finalClipNorm: this.clipNorm,
        ...(dp.clip === 'adaptive' ? { quantile: dp.clipQuantile, learningRate: dp.clipLearningRate, countNoise: this.countNoise } : {}),
      },
      encodeTopK: dp.encodeTopK ?? null, denoiseThreshold: dp.denoiseThreshold ?? null,
      targetEpsilon: dp.targetEpsilon ?? null,
      covers: 'released parameters only (not the training loss/accuracy printed per epoch)',
      statement: st.statement,
    };
  }
}

/** Top-k per example, then clipping of each example's whole encoded gradient, summed into `out`. */
function encodeAndClip(perExample: Map<string, Float32Array>, trainer: Trainer, n: number, k: number, clip: number, out: Map<string, Float32Array>): void {
  const names = [...trainer.params.keys()];
  const sizes = names.map((name) => trainer.params.get(name)!.length);
  const D = sizes.reduce((a, b) => a + b, 0);
  for (const [i, name] of names.entries()) out.set(name, new Float32Array(sizes[i]!));
  const flat = new Float32Array(D);
  for (let e = 0; e < n; e++) {
    let off = 0;
    names.forEach((name, i) => {
      flat.set(perExample.get(name)!.subarray(e * sizes[i]!, (e + 1) * sizes[i]!), off);
      off += sizes[i]!;
    });
    keepTopK(flat, k);
    let sq = 0;
    for (let j = 0; j < D; j++) sq += flat[j]! * flat[j]!;
    const scale = Math.min(1, clip / (Math.sqrt(sq) + 1e-6));
    off = 0;
    names.forEach((name, i) => {
      const o = out.get(name)!;
      for (let j = 0; j < sizes[i]!; j++) o[j]! += scale * flat[off + j]!;
      off += sizes[i]!;
    });
  }
}

/**
 * Public-batch BatchNorm statistics: before each private step, the statistics of a public batch
 * under the current weights become the BatchNorm inputs of the training graph. The batch of step
 * t is drawn from (seed, t): public data needs no secret randomness, and a resume replays it.
 */
class PublicStatistics {
  private constructor(
    private readonly trainer: Trainer,
    private readonly session: RpSession,
    private readonly input: string,
    private readonly outputs: Map<string, string>,
    private readonly data: Dataset,
    private readonly size: number,
    private readonly seed: number,
  ) {}

  static async create(trainer: Trainer, data: Dataset, batch: number, seed: number): Promise<PublicStatistics> {
    const stats = trainer.training.inputs.statistics;
    if (!stats || stats.length === 0) throw new RpOnnxError('public data needs a model with BatchNormalization trained with public-batch statistics (batchNorm fed)');
    const { model: sm, outputs } = publicStatisticsModel(trainer.model, [...trainer.params.keys()]);
    const session = await createSession(sm, { threads: trainer.opts.threads, noiseSeed: trainer.opts.noiseSeed ?? 'secure' });
    const input = sm.graph.realInputs().find((i) => !trainer.params.has(i.name))!.name;
    return new PublicStatistics(trainer, session, input, outputs, data, Math.min(batch, data.count), seed);
  }

  async update(t: number): Promise<void> {
    const rng = new Random(derivedSeed(this.seed, 'public-batch', t));
    const idx = Uint32Array.from(rng.permutation(this.data.count).subarray(0, this.size)).sort();
    const b = gatherBatch(this.data, idx);
    const feeds: Record<string, ort.Tensor> = { [this.input]: new ort.Tensor('float32', b.images, [b.size, ...this.data.shape]) };
    for (const [name, value] of this.trainer.params) feeds[name] = new ort.Tensor('float32', value, this.trainer.model.graph.initializers.get(name)!.dims.map(Number));
    const out = await this.session.run(feeds);
    for (const [stat, output] of this.outputs) this.trainer.state.set(stat, Float32Array.from(out[output]!.data as Float32Array));
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

// ---- the former entry point, kept for library callers (src/experiments) ----

export interface DpFitOptions extends Omit<TrainerOptions, 'dp'> {
  epochs: number;
  steps?: number;
  shuffle?: boolean;
  batchSize: number;
  lr: number;
  schedule?: string;
  seed?: number;
  dp: DpOptions;
  signal?: AbortSignal;
  publicData?: Dataset;
  physicalBatchSize?: number;
  ema?: EmaOptions;
  evalEvery?: number;
  checkpointDir?: string;
  resume?: boolean;
  onProgress?: (p: { epoch: number; epochs: number; step: number; stepsInEpoch: number; loss: number; accuracy: number; epsilon: number | null; clipNorm: number; sigma: number }) => void;
  onEpoch?: (e: EpochReport & { epsilon: number | null }) => void;
}

/** An epoch of a DP run: epsilon always present (null: not claimed). */
export type DpEpochReport = EpochReport & { epsilon: number | null };

export interface DpFitResult {
  model: Model;
  epochs: (EpochReport & { epsilon: number | null })[];
  steps: number;
  seconds: number;
  interrupted: boolean;
  stoppedByBudget: boolean;
  finalTestAccuracy: number | null;
  privacy: PrivacyStatement;
  noiseMultiplier: number;
  /** Everything needed to reproduce the accounting, for metadata_props. */
  record: Record<string, unknown>;
}

/** `fit` with the private step: a thin wrapper for callers of the former DP loop. */
export async function fitPrivate(model: Model, train: Dataset, test: Dataset | undefined, opts: DpFitOptions): Promise<DpFitResult> {
  const { dp, ...rest } = opts;
  const { physicalBatchSize, ...loop } = rest;
  const strategy = new PrivateStep({ dp, batchSize: opts.batchSize, examples: train.count, shuffle: opts.shuffle, publicData: opts.publicData, physicalBatchSize });
  const r = await fit(model, train, test, {
    ...loop, epochs: opts.steps === undefined ? opts.epochs : undefined, strategy,
    onProgress: opts.onProgress && ((p) => opts.onProgress!({ ...p, epsilon: p.epsilon ?? null, clipNorm: p.clipNorm ?? dp.maxGradNorm, sigma: p.sigma ?? 0 })),
    onEpoch: opts.onEpoch && ((e) => opts.onEpoch!({ ...e, epsilon: e.epsilon ?? null })),
  });
  return {
    model: r.model, epochs: r.epochs.map((e) => ({ ...e, epsilon: e.epsilon ?? null })), steps: r.steps, seconds: r.seconds,
    interrupted: r.interrupted, stoppedByBudget: r.stoppedByBudget, finalTestAccuracy: r.finalTestAccuracy,
    privacy: strategy.statement(), noiseMultiplier: strategy.schedule.start, record: strategy.record(),
  };
}
