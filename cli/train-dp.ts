/** The DP-SGD half of `rp-onnx train`: its flags, their validation, and the private run. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { printJson, parseIntOption, parseNumberOption } from './common.js';
import { ProgressLine, interruptOnSigint } from './progress.js';
import { Model } from '../src/graph/ir.js';
import { saveModel } from '../src/graph/io.js';
import { RpOnnxError } from '../src/errors.js';
import { fitPrivate, type DpOptions } from '../src/train/dp/dp-sgd.js';
import { NOISE_SCHEDULES, type NoiseScheduleName } from '../src/train/dp/noise-schedule.js';
import { batchNormToGroupNorm, batchNormStatistics } from '../src/passes/norm-fix.js';
import { loadDataDir, type Dataset } from '../src/train/data/index.js';
import { toolVersion } from './tool-version.js';

export function registerDpOptions(cmd: Command): void {
  cmd
    .option('--dp', 'train with DP-SGD: per-example gradients clipped in the training graph, Gaussian noise from the OS CSPRNG, RDP accounting')
    .option('--max-grad-norm <C>', 'DP: clipping bound C on each example\'s whole gradient (L2)', parseNumberOption('--max-grad-norm'), 1)
    .option('--noise-multiplier <sigma>', 'DP: noise std / C (the start value of a --noise-schedule)', parseNumberOption('--noise-multiplier'))
    .option('--target-epsilon <eps>', 'DP: calibrate sigma so the planned steps spend at most eps (with --noise-multiplier: a budget; training stops before exceeding it)', parseNumberOption('--target-epsilon'))
    .option('--delta <d>', 'DP: delta (default: the largest power of ten <= 1/N, N the training-set size)', parseNumberOption('--delta'))
    .addOption(new Option('--sampling <kind>', 'DP: poisson (rate q = B/N, exact accounting) | shuffle (fixed batches, accounted without amplification)').choices(['poisson', 'shuffle']).default('poisson'))
    .addOption(new Option('--accountant <name>', 'DP: privacy accountant').choices(['rdp']).default('rdp'))
    .addOption(new Option('--noise-schedule <name>', 'DP: sigma_t over T steps, u = t/(T-1): constant; linear start+(end-start)u; exponential start*(end/start)^u; staircase: geometric steps held for --noise-period steps; cyclic end+(start-end)(1+cos(2 pi t/P))/2').choices([...NOISE_SCHEDULES]).default('constant'))
    .option('--noise-end-ratio <r>', 'DP: end sigma = r * start sigma for non-constant schedules', parseNumberOption('--noise-end-ratio'), 0.5)
    .option('--noise-period <steps>', 'DP: period P in steps for staircase and cyclic (default: one epoch)', parseIntOption('--noise-period'))
    .addOption(new Option('--clip-schedule <kind>', 'DP: constant C, or adaptive: C tracks the --clip-quantile of per-example norms, estimated with a noisy count (Andrew et al. 2021; its privacy cost is included in the accounting)').choices(['constant', 'adaptive']).default('constant'))
    .option('--clip-quantile <g>', 'DP: target quantile of unclipped examples for adaptive clipping', parseNumberOption('--clip-quantile'), 0.5)
    .option('--clip-lr <eta>', 'DP: geometric learning rate of the adaptive bound', parseNumberOption('--clip-lr'), 0.2)
    .option('--clip-count-noise <s>', 'DP: noise std of the adaptive clipping count (default: expected batch / 20)', parseNumberOption('--clip-count-noise'))
    .addOption(new Option('--encode <kind>', 'DP: gradient encoding (Nasr et al.): topk keeps the --k largest coordinates of each example\'s gradient before clipping').choices(['topk']))
    .option('--k <k>', 'DP: coordinates kept by --encode topk', parseIntOption('--k'))
    .addOption(new Option('--noise <family>', 'DP: noise family; only gaussian has an accountant (laplace and student-t runs print no epsilon)').choices(['gaussian', 'laplace', 'student-t']).default('gaussian'))
    .option('--denoise [threshold]', 'DP: post-processing: zero the coordinates of the noisy sum below threshold * noise std (default 2)')
    .option('--no-secure-rng', 'DP: draw noise from a seeded generator (--dp-seed): for tests only, never for a model you ship')
    .option('--dp-seed <n>', 'DP: seed of the noise and sampling generator when --no-secure-rng', parseIntOption('--dp-seed'))
    .addOption(new Option('--norm-fix <kind>', 'DP with BatchNorm (batch statistics mix examples): freeze (use running statistics) | group (replace by GroupNorm) | public-batch (normalize with the statistics of a public batch, Davody et al.; needs --public-data)').choices(['freeze', 'group', 'public-batch']))
    .option('--public-data <dir>', 'DP --norm-fix public-batch: public data, disjoint from the private training data (its train split is used); costs no privacy');
}

/** Default delta: the largest power of ten not above 1/N. */
export function defaultDelta(n: number): number {
  // 10^-k written as a decimal literal parse, so 1e-5 is exactly the double of "1e-5".
  return Number(`1e${Math.floor(Math.log10(1 / n))}`);
}

export function dpOptionsFrom(o: Record<string, unknown>, examples: number): DpOptions {
  if (o.encode !== undefined && o.k === undefined) throw new RpOnnxError('--encode topk needs --k');
  if (o.k !== undefined && o.encode === undefined) throw new RpOnnxError('--k needs --encode topk');
  if (o.secureRng === false && o.dpSeed === undefined) throw new RpOnnxError('--no-secure-rng needs --dp-seed');
  const denoise = o.denoise === undefined ? undefined : o.denoise === true ? 2 : Number(o.denoise);
  if (denoise !== undefined && !(denoise > 0)) throw new RpOnnxError(`--denoise threshold must be > 0, got '${String(o.denoise)}'`);
  return {
    maxGradNorm: o.maxGradNorm as number,
    delta: (o.delta as number | undefined) ?? defaultDelta(examples),
    noiseMultiplier: o.noiseMultiplier as number | undefined,
    targetEpsilon: o.targetEpsilon as number | undefined,
    noiseSchedule: o.noiseSchedule as NoiseScheduleName,
    noiseEndRatio: o.noiseEndRatio as number,
    noisePeriodSteps: o.noisePeriod as number | undefined,
    sampling: o.sampling as 'poisson' | 'shuffle',
    clip: o.clipSchedule as 'constant' | 'adaptive',
    clipQuantile: o.clipQuantile as number,
    clipLearningRate: o.clipLr as number,
    clipCountNoise: o.clipCountNoise as number | undefined,
    noise: o.noise as DpOptions['noise'],
    encodeTopK: o.k as number | undefined,
    denoiseThreshold: denoise,
    secureRng: o.secureRng !== false,
    seed: o.dpSeed as number | undefined,
  };
}

export interface PrivateRun {
  model: Model;
  modelPath: string;
  train: Dataset;
  test: Dataset | undefined;
  dataDir: string;
  output: string;
  o: Record<string, unknown>;
  dp: DpOptions;
}

export async function runPrivateTraining(run: PrivateRun): Promise<void> {
  const { o, dp } = run;
  if (dp.noiseMultiplier === undefined && dp.targetEpsilon === undefined) {
    throw new RpOnnxError('--dp needs --noise-multiplier or --target-epsilon');
  }
  let model = run.model;
  let batchNorm: 'train' | 'frozen' | 'fed' = 'train';
  let publicData: Dataset | undefined;
  const hasBatchNorm = batchNormStatistics(model).length > 0;
  if (hasBatchNorm) {
    if (o.normFix === undefined) {
      throw new RpOnnxError('the model has BatchNormalization, whose batch statistics mix examples and break per-example privacy: choose --norm-fix freeze (running statistics), group (GroupNorm) or public-batch --public-data DIR');
    }
    if (o.normFix === 'group') model = batchNormToGroupNorm(model).model;
    else if (o.normFix === 'public-batch') {
      if (!o.publicData) throw new RpOnnxError('--norm-fix public-batch needs --public-data DIR (public examples, disjoint from the private data)');
      publicData = loadDataDir(o.publicData as string, { split: 'train' });
      batchNorm = 'fed';
    } else batchNorm = 'frozen';
  }
  const epochs = o.steps === undefined ? ((o.epochs as number | undefined) ?? 1) : 1;
  const progress = new ProgressLine(true);
  const interrupt = interruptOnSigint(progress);
  const result = await fitPrivate(model, run.train, run.test, {
    epochs, steps: o.steps as number | undefined, shuffle: o.shuffle !== false,
    batchSize: o.batch as number, lr: o.lr as number, optimizer: o.optimizer as string,
    momentum: o.momentum as number, weightDecay: o.weightDecay as number, schedule: o.schedule as string,
    threads: o.threads as number | undefined, freeze: o.freeze as string[], batchNorm,
    executionProvider: o.executionProvider as 'cpu' | 'cuda', signal: interrupt.signal, dp, publicData,
    onProgress: (p) => progress.update(p.step / p.stepsInEpoch,
      `epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.stepsInEpoch} loss ${p.loss.toFixed(4)} acc ${(100 * p.accuracy).toFixed(1)}% eps ${p.epsilon === null ? 'n/a' : p.epsilon.toFixed(3)} C ${p.clipNorm.toPrecision(3)} sigma ${p.sigma.toPrecision(3)}`),
    onEpoch: (e) => progress.done(
      `epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)} acc ${(100 * e.trainAccuracy).toFixed(2)}%` +
      (e.testAccuracy !== null ? `, test acc ${(100 * e.testAccuracy).toFixed(2)}%` : '') +
      `, epsilon ${e.epsilon === null ? 'not accounted' : e.epsilon.toFixed(3)}, ${e.seconds.toFixed(1)} s`),
  });
  interrupt.release();
  if (result.interrupted) throw new RpOnnxError(`training interrupted after ${result.steps} steps; ${run.output} was not written`, { exitCode: 130 });
  if (result.stoppedByBudget) progress.done(`stopped after ${result.steps} steps: the next step would exceed --target-epsilon ${dp.targetEpsilon}`);
  const trained = result.model;
  trained.setMetadata('rp-onnx.version', toolVersion());
  trained.setMetadata('rp-onnx.privacy', JSON.stringify({ ...result.record, normFix: hasBatchNorm ? o.normFix : null }));
  trained.setMetadata('rp-onnx.training', JSON.stringify({
    data: run.dataDir, examples: run.train.count, steps: result.steps, batch: o.batch, lr: o.lr,
    optimizer: o.optimizer, momentum: o.momentum, weightDecay: o.weightDecay, schedule: o.schedule,
    finalTestAccuracy: result.finalTestAccuracy,
  }));
  saveModel(trained, run.output);
  const summary = {
    output: run.output, steps: result.steps, seconds: result.seconds, epochs: result.epochs,
    finalTestAccuracy: result.finalTestAccuracy, noiseMultiplier: result.noiseMultiplier,
    privacy: result.privacy, stoppedByBudget: result.stoppedByBudget,
  };
  if (o.json) printJson(summary);
  else {
    process.stdout.write(`wrote ${run.output} (${result.steps} steps, ${result.seconds.toFixed(1)} s${result.finalTestAccuracy !== null ? `, test accuracy ${(100 * result.finalTestAccuracy).toFixed(2)}%` : ''})\n`);
    process.stdout.write(`privacy: ${result.privacy.statement}\n`);
  }
}
