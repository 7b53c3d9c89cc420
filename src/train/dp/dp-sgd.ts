/**
 * DP-SGD (Abadi et al. 2016) on the training engine, with the variants of the seed papers:
 * - per-example gradients and clipping to L2 norm C inside the training graph, Gaussian noise
 *   N(0, sigma_t^2 C_t^2) per coordinate added here from the OS CSPRNG, the sum divided by the
 *   expected batch size q*N; Poisson sampling (or shuffled fixed-size batches, see accountant.ts);
 * - dynamic noise (noise-schedule.ts) and adaptive clipping (adaptive-clipping.ts), composed
 *   step by step by the RDP ledger;
 * - gradient encoding (top-k per example) and denoising (encoding.ts), with non-Gaussian noise
 *   families reported without an epsilon (no accountant of ours covers them).
 * A run given a target epsilon is calibrated so the planned steps end at or below it, and a run
 * given a budget stops before the step that would exceed it.
 */
import { Model } from '../../graph/ir.js';
import { Random } from '../../random.js';
import { RpOnnxError } from '../../errors.js';
import { Trainer, type TrainerOptions } from '../trainer.js';
import { evaluate, type EpochReport } from '../fit.js';
import { learningRate } from '../schedules.js';
import { gatherBatch, poissonSample, type Dataset } from '../data/index.js';
import { noiseAt, type NoiseSchedule, type NoiseScheduleName } from './noise-schedule.js';
import { AdaptiveClipper, gradientNoiseMultiplier } from './adaptive-clipping.js';
import { addNoise, type NoiseFamily } from './noise.js';
import { keepTopK, denoise } from './encoding.js';
import { PrivacyLedger, type Sampling } from './accountant.js';
import { planNoise } from './plan.js';
import { publicStatisticsModel } from '../../passes/public-statistics.js';
import { createSession } from '../../runtime/session.js';
import * as ort from 'onnxruntime-node';
import { ParameterAverage, type EmaOptions } from '../ema.js'; // [dp-utility] EMA
import { predict } from '../../runtime/predict.js'; // [dp-utility] EMA evaluation

export interface DpOptions {
  maxGradNorm: number;
  delta: number;
  /** Noise multiplier at the start of training (or calibrated from targetEpsilon). */
  noiseMultiplier?: number;
  targetEpsilon?: number;
  noiseSchedule: NoiseScheduleName;
  /** End value as a fraction of the start value (schedules other than constant). */
  noiseEndRatio: number;
  noisePeriodSteps?: number;
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
  /** Cryptographic noise (default true); false uses `seed` (tests only). */
  secureRng: boolean;
  seed?: number;
}

export interface DpFitOptions extends Omit<TrainerOptions, 'dp'> {
  epochs: number;
  /** A step budget instead of whole epochs. */
  steps?: number;
  /** Shuffle sampling only: false keeps file order (the first batch is the first B examples). */
  shuffle?: boolean;
  batchSize: number;
  lr: number;
  schedule?: string;
  seed?: number;
  dp: DpOptions;
  signal?: AbortSignal;
  /**
   * Public data (disjoint from the private training data) whose batch statistics normalize every
   * BatchNormalization at each step (--norm-fix public-batch); the trainer must use batchNorm 'fed'.
   */
  publicData?: Dataset;
  // [dp-utility] Logical (Poisson) batches run in chunks of at most this many examples (Trainer.dpGradients).
  physicalBatchSize?: number;
  // [dp-utility] Parameter averaging (src/train/ema.ts, post-processing): the returned model holds the average.
  ema?: EmaOptions;
  onProgress?: (p: { epoch: number; epochs: number; step: number; stepsInEpoch: number; loss: number; accuracy: number; epsilon: number | null; clipNorm: number; sigma: number }) => void;
  onEpoch?: (e: DpEpochReport) => void;
}

// [dp-utility] emaTestAccuracy: test accuracy of the averaged parameters (null without EMA or test data).
export type DpEpochReport = EpochReport & { epsilon: number | null; emaTestAccuracy?: number | null };

export interface PrivacyStatement {
  mechanism: string;
  epsilon: number | null;
  delta: number;
  accountant: string;
  statement: string;
}

export interface DpFitResult {
  model: Model;
  epochs: DpEpochReport[];
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

export async function fitPrivate(model: Model, train: Dataset, test: Dataset | undefined, opts: DpFitOptions): Promise<DpFitResult> {
  const dp = opts.dp;
  if (!(dp.maxGradNorm > 0)) throw new RpOnnxError('--max-grad-norm must be > 0');
  if (!(dp.delta > 0 && dp.delta < 1)) throw new RpOnnxError(`--delta must be in (0, 1), got ${dp.delta}`);
  if (dp.encodeTopK !== undefined && !(dp.encodeTopK >= 1)) throw new RpOnnxError('--k must be a positive integer');
  const N = train.count;
  const B = opts.batchSize;
  const q = Math.min(1, B / N);
  const stepsPerEpoch = dp.sampling === 'poisson' ? Math.max(1, Math.round(1 / q)) : Math.ceil(N / B);
  const totalSteps = opts.steps ?? stepsPerEpoch * opts.epochs;
  const epochs = Math.ceil(totalSteps / stepsPerEpoch);
  const schedule = planNoise(dp, q, totalSteps, epochs);
  const noiseRng = dp.secureRng ? Random.secure() : new Random(dp.seed ?? 0);
  const sampleRng = dp.secureRng ? Random.secure() : new Random((dp.seed ?? 0) + 1);
  const countNoise = dp.clipCountNoise ?? Math.max(1, (q * N) / 20);
  const clipper = dp.clip === 'adaptive'
    ? new AdaptiveClipper({ initial: dp.maxGradNorm, targetQuantile: dp.clipQuantile, learningRate: dp.clipLearningRate, countNoise })
    : undefined;
  const accountable = dp.noise === 'gaussian';
  const ledger = new PrivacyLedger(dp.sampling, q, dp.delta);
  const budget = dp.targetEpsilon;
  const mode = dp.encodeTopK !== undefined ? 'per-example' : 'clip';
  const trainer = await Trainer.create(model, { ...opts, dp: { mode } });
  const expectedBatch = q * N;
  const publicStats = opts.publicData ? await publicStatistics(model, trainer, opts.publicData, Math.max(1, Math.round(expectedBatch)), sampleRng) : undefined;
  const started = Date.now();
  const reports: DpEpochReport[] = [];
  const ema = opts.ema ? new ParameterAverage(trainer.params, opts.ema) : undefined; // [dp-utility] EMA
  let interrupted = false;
  let stoppedByBudget = false;
  let clipNorm = dp.maxGradNorm;
  try {
    outer: for (let epoch = 0; epoch < epochs; epoch++) {
      const epochStart = Date.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      const order = dp.sampling === 'shuffle' ? (opts.shuffle === false ? Uint32Array.from({ length: N }, (_, i) => i) : sampleRng.permutation(N)) : undefined;
      for (let s = 0; s < stepsPerEpoch && trainer.stepCount < totalSteps; s++) {
        if (opts.signal?.aborted) {
          interrupted = true;
          break outer;
        }
        const t = trainer.stepCount;
        const sigma = noiseAt(schedule, t);
        if (accountable && budget !== undefined && dp.noiseMultiplier !== undefined && ledger.epsilon(sigma) > budget + 1e-9) {
          stoppedByBudget = true;
          break outer;
        }
        if (publicStats) await publicStats.update();
        const indices = order ? order.subarray(s * B, Math.min(N, (s + 1) * B)) : poissonSample(N, q, sampleRng);
        const sigmaGrad = clipper ? gradientNoiseMultiplier(sigma, countNoise) : sigma;
        const grads = new Map<string, Float32Array>();
        let norms: Float32Array = new Float32Array(0);
        if (indices.length > 0) {
          const batch = gatherBatch(train, indices);
          const r = await trainer.dpGradients(batch.images, batch.labels, batch.size, clipNorm, opts.physicalBatchSize); // [dp-utility] physical batches
          lossSum += r.loss * batch.size;
          correct += r.correct;
          seen += batch.size;
          norms = r.norms;
          if (mode === 'per-example') encodeAndClip(r.grads, trainer, batch.size, dp.encodeTopK!, clipNorm, grads);
          else for (const [k, g] of r.grads) grads.set(k, Float32Array.from(g));
        } else {
          // An empty Poisson batch still releases noise: the mechanism runs every step.
          for (const [k, p] of trainer.params) grads.set(k, new Float32Array(p.length));
        }
        const std = sigmaGrad * clipNorm;
        const denom = dp.sampling === 'poisson' ? expectedBatch : Math.max(1, indices.length);
        for (const g of grads.values()) {
          addNoise(g, std, dp.noise, noiseRng);
          if (dp.denoiseThreshold !== undefined) denoise(g, std, dp.denoiseThreshold);
          for (let i = 0; i < g.length; i++) g[i]! /= denom;
        }
        trainer.applyUpdate(grads, learningRate(opts.schedule ?? 'constant', opts.lr, t, totalSteps));
        ema?.update(trainer.params); // [dp-utility] EMA
        ledger.record(sigma);
        if (clipper) clipNorm = clipper.update(norms, expectedBatch, noiseRng);
        opts.onProgress?.({
          epoch: epoch + 1, epochs, step: s + 1, stepsInEpoch: stepsPerEpoch,
          loss: lossSum / Math.max(1, seen), accuracy: correct / Math.max(1, seen),
          epsilon: accountable ? ledger.epsilon() : null, clipNorm, sigma,
        });
      }
      ledger.endEpoch();
      const seconds = (Date.now() - epochStart) / 1000;
      const e = test ? await evaluate(trainer, test) : null;
      const emaE = ema && test ? await evaluateModel(ema.applyTo(trainer.exportModel()), test, opts.threads) : null; // [dp-utility] EMA
      const report: DpEpochReport = {
        epoch: epoch + 1, trainLoss: lossSum / Math.max(1, seen), trainAccuracy: correct / Math.max(1, seen),
        testAccuracy: e?.accuracy ?? null, testLoss: e?.loss ?? null, seconds, examplesPerSecond: seen / Math.max(1e-3, seconds),
        epsilon: accountable ? ledger.epsilon() : null,
        ...(ema ? { emaTestAccuracy: emaE } : {}), // [dp-utility] EMA
      };
      reports.push(report);
      opts.onEpoch?.(report);
    }
    // The exported model normalizes with the statistics of a final public batch.
    if (publicStats) await publicStats.update();
    await publicStats?.release();
    const eps = accountable ? ledger.epsilon() : null;
    const privacy = statement(dp, eps, schedule);
    const last = reports.at(-1);
    return {
      model: ema ? ema.applyTo(trainer.exportModel()) : trainer.exportModel(), epochs: reports, steps: trainer.stepCount, // [dp-utility] EMA
      seconds: (Date.now() - started) / 1000, interrupted, stoppedByBudget,
      finalTestAccuracy: (ema ? last?.emaTestAccuracy : last?.testAccuracy) ?? null, privacy, noiseMultiplier: schedule.start, // [dp-utility] EMA
      record: {
        mechanism: privacy.mechanism, epsilon: eps, delta: dp.delta, accountant: privacy.accountant,
        sampling: dp.sampling, sampleRate: q, steps: trainer.stepCount, batchSize: B, examples: N,
        maxGradNorm: dp.maxGradNorm, clip: dp.clip, finalClipNorm: clipNorm,
        noise: { family: dp.noise, schedule: schedule.name, start: schedule.start, end: schedule.end, period: schedule.period },
        encodeTopK: dp.encodeTopK ?? null, denoiseThreshold: dp.denoiseThreshold ?? null,
        secureRng: dp.secureRng, statement: privacy.statement,
        physicalBatchSize: opts.physicalBatchSize ?? null, ema: opts.ema ?? null, // [dp-utility]
      },
    };
  } finally {
    await trainer.release();
  }
}

// [dp-utility] Accuracy of an exported model (the EMA average) on a dataset.
async function evaluateModel(model: Model, ds: Dataset, threads?: number): Promise<number> {
  const r = await predict([model], { data: ds.images, count: ds.count, shape: ds.shape, labels: ds.labels }, { threads, batch: 500 });
  return r.accuracy ?? 0;
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

function statement(dp: DpOptions, eps: number | null, s: NoiseSchedule): PrivacyStatement {
  const mechanism = dp.encodeTopK !== undefined ? 'dp-sgd with top-k gradient encoding' : 'dp-sgd';
  if (dp.noise !== 'gaussian') {
    return {
      mechanism, epsilon: null, delta: dp.delta, accountant: 'none',
      statement: `${dp.noise} noise: no accountant of rp-onnx covers it, so no epsilon is claimed (the RDP accountant is for Gaussian noise only)`,
    };
  }
  const sampling = dp.sampling === 'poisson'
    ? 'Poisson sampling, subsampled-Gaussian RDP (Mironov et al. 2019)'
    : 'shuffled fixed-size batches, accounted without subsampling amplification (one Gaussian mechanism per epoch)';
  const clip = dp.clip === 'adaptive' ? ', adaptive clipping accounted with its count query (Andrew et al. 2021)' : '';
  const sched = s.name === 'constant' ? `sigma ${s.start.toFixed(4)}` : `${s.name} noise schedule ${s.start.toFixed(4)} -> ${s.end.toFixed(4)}`;
  return {
    mechanism, epsilon: eps, delta: dp.delta, accountant: 'rdp',
    statement: `(${eps?.toFixed(4)}, ${dp.delta})-DP for each training example: ${sched}, ${sampling}${clip}, improved RDP conversion (Balle et al. 2020)`,
  };
}

/**
 * Public-batch BatchNorm statistics: before each private step, the statistics of a fresh public
 * batch under the current weights become the BatchNorm inputs of the training graph.
 */
async function publicStatistics(model: Model, trainer: Trainer, data: Dataset, batch: number, rng: Random) {
  const stats = trainer.training.inputs.statistics;
  if (!stats || stats.length === 0) throw new RpOnnxError('--public-data needs a model with BatchNormalization trained with public-batch statistics');
  const { model: sm, outputs } = publicStatisticsModel(model, [...trainer.params.keys()]);
  const session = await createSession(sm, { threads: trainer.opts.threads, noiseSeed: trainer.opts.noiseSeed ?? 'secure' });
  const input = sm.graph.realInputs().find((i) => !trainer.params.has(i.name))!.name;
  const size = Math.min(batch, data.count);
  return {
    async update(): Promise<void> {
      const idx = Uint32Array.from(rng.permutation(data.count).subarray(0, size)).sort();
      const b = gatherBatch(data, idx);
      const feeds: Record<string, ort.Tensor> = { [input]: new ort.Tensor('float32', b.images, [b.size, ...data.shape]) };
      for (const [name, value] of trainer.params) feeds[name] = new ort.Tensor('float32', value, model.graph.initializers.get(name)!.dims.map(Number));
      const out = await session.run(feeds);
      for (const [stat, output] of outputs) trainer.state.set(stat, Float32Array.from(out[output]!.data as Float32Array));
    },
    release: () => session.release(),
  };
}
