/** The DP-SGD flags of `rp-onnx train`: their registration (defaults from DP_DEFAULTS) and their one typed parse. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { parseIntOption, parseNumberOption, UsageError } from './common.js';
import { Flags } from './flags.js';
import type { DpOptions } from '../src/train/dp/dp-sgd.js';
import { NOISE_SCHEDULES, type NoiseScheduleName } from '../src/train/dp/noise-schedule.js';
import { ACCOUNTANTS, DP_DEFAULTS, defaultDelta, type AccountantName } from '../src/train/dp/defaults.js';
import type { NormFix } from '../src/passes/norm-fix.js';
import type { TrainPrivately } from '../src/train/train-model.js';
import type { NoiseFamily } from '../src/train/dp/noise.js';
import type { Sampling } from '../src/train/dp/accountant.js';

export function registerDpOptions(cmd: Command): void {
  const d = DP_DEFAULTS;
  cmd
    .option('--dp', 'train with DP-SGD: per-example gradients clipped in the training graph, Gaussian noise and Poisson sampling from the OS CSPRNG, a privacy accountant')
    .option('--max-grad-norm <C>', 'DP: clipping bound C on each example\'s whole gradient (L2)', parseNumberOption('--max-grad-norm'), d.maxGradNorm)
    .option('--noise-multiplier <sigma>', 'DP: noise std / C (the start value of a --noise-schedule)', parseNumberOption('--noise-multiplier'))
    .option('--target-epsilon <eps>', 'DP: never spend more than eps: calibrates sigma to it (without --noise-multiplier); training stops before a step that would exceed it', parseNumberOption('--target-epsilon'))
    .option('--delta <d>', 'DP: delta (default: the largest power of ten <= 0.1/N, N the training-set size)', parseNumberOption('--delta'))
    .addOption(new Option('--sampling <kind>', 'DP: poisson (rate q = B/N, add/remove adjacency) | shuffle (fixed batches, accounted without amplification, replace-one adjacency)').choices(['poisson', 'shuffle']).default(d.sampling))
    .addOption(new Option('--accountant <name>', 'DP: privacy accountant').choices([...ACCOUNTANTS]).default(d.accountant))
    .addOption(new Option('--noise-schedule <name>', 'DP: sigma_t over T steps, u = t/(T-1): constant; linear start+(end-start)u; exponential start*(end/start)^u; staircase: geometric steps held for --noise-period steps; cyclic end+(start-end)(1+cos(2 pi t/P))/2').choices([...NOISE_SCHEDULES]).default(d.noiseSchedule))
    .option('--noise-end-ratio <r>', 'DP: end sigma = r * start sigma for non-constant schedules', parseNumberOption('--noise-end-ratio'), d.noiseEndRatio)
    .option('--noise-period <steps>', 'DP: period P in steps for staircase and cyclic (default: one epoch)', parseIntOption('--noise-period'))
    .addOption(new Option('--clip-schedule <kind>', 'DP: constant C, or adaptive: C tracks the --clip-quantile of per-example norms, estimated with a noisy count (Andrew et al. 2021; its privacy cost is included in the accounting)').choices(['constant', 'adaptive']).default(d.clip))
    .option('--clip-quantile <g>', 'DP: target quantile of unclipped examples for adaptive clipping', parseNumberOption('--clip-quantile'), d.clipQuantile)
    .option('--clip-lr <eta>', 'DP: geometric learning rate of the adaptive bound', parseNumberOption('--clip-lr'), d.clipLearningRate)
    .option('--physical-batch <n>', 'DP: run each (Poisson) logical batch through the graph in chunks of at most n examples: bounds memory, the step is unchanged (Opacus BatchMemoryManager)', parseIntOption('--physical-batch'))
    .option('--clip-count-noise <s>', 'DP: noise std of the adaptive clipping count (default: expected batch / 20)', parseNumberOption('--clip-count-noise'))
    .addOption(new Option('--encode <kind>', 'DP: gradient encoding (Nasr et al.): topk keeps the --k largest coordinates of each example\'s gradient before clipping').choices(['topk']))
    .option('--k <k>', 'DP: coordinates kept by --encode topk', parseIntOption('--k'))
    .addOption(new Option('--noise <family>', 'DP: noise family; only gaussian has an accountant (laplace and student-t runs print no epsilon)').choices(['gaussian', 'laplace', 'student-t']).default(d.noise))
    .option('--denoise [threshold]', `DP: post-processing: zero the coordinates of the noisy sum below threshold * noise std (default ${d.denoiseThreshold})`)
    .option('--no-secure-rng', 'DP: draw noise and sampling from a seeded generator (--dp-seed): replayable, so NOT private (no epsilon is claimed); for tests only')
    .option('--dp-seed <n>', 'DP: seed of the noise and sampling generator with --no-secure-rng', parseIntOption('--dp-seed'))
    .addOption(new Option('--norm-fix <kind>', 'DP with BatchNorm (batch statistics mix examples): freeze (use running statistics) | group (replace by GroupNorm) | public-batch (normalize with the statistics of a public batch, Davody et al.; needs --public-data)').choices(['freeze', 'group', 'public-batch']))
    .option('--public-data <dir>', 'DP --norm-fix public-batch: public data, disjoint from the private training data (refused if they share an example; its train split is used); costs no privacy');
}

/** The DP flags as commander stores them (attribute name -> value). */
interface DpFlags {
  dp?: boolean;
  physicalBatch?: number;
  maxGradNorm: number;
  noiseMultiplier?: number;
  targetEpsilon?: number;
  delta?: number;
  sampling: Sampling;
  accountant: AccountantName;
  noiseSchedule: NoiseScheduleName;
  noiseEndRatio: number;
  noisePeriod?: number;
  clipSchedule: 'constant' | 'adaptive';
  clipQuantile: number;
  clipLr: number;
  clipCountNoise?: number;
  encode?: 'topk';
  k?: number;
  noise: NoiseFamily;
  denoise?: boolean | string;
  secureRng: boolean;
  dpSeed?: number;
  normFix?: NormFix;
  publicData?: string;
}

const DP_ONLY: readonly (keyof DpFlags)[] = [
  'maxGradNorm', 'noiseMultiplier', 'targetEpsilon', 'delta', 'sampling', 'accountant', 'noiseSchedule', 'noiseEndRatio',
  'noisePeriod', 'clipSchedule', 'clipQuantile', 'clipLr', 'clipCountNoise', 'encode', 'k', 'noise', 'denoise', 'secureRng',
  'dpSeed', 'normFix', 'publicData', 'physicalBatch',
];

/**
 * The DP part of `train`'s options: undefined without --dp (where any DP flag is an error:
 * silently training without privacy is the worst outcome), else the library's request.
 */
export function readDpFlags(cmd: Command, examples: number): TrainPrivately | undefined {
  const o = cmd.opts<DpFlags>();
  const f = new Flags(cmd);
  if (!o.dp) {
    const stray = DP_ONLY.filter((k) => f.given(k));
    if (stray.length > 0) throw new UsageError(`${stray.map((k) => f.flag(k)).join(', ')} ${stray.length > 1 ? 'are DP-SGD options' : 'is a DP-SGD option'}: add --dp to train privately`);
    return undefined;
  }
  if (o.noiseMultiplier === undefined && o.targetEpsilon === undefined) throw new UsageError('--dp needs --noise-multiplier or --target-epsilon');
  if (o.encode !== undefined && o.k === undefined) throw new UsageError('--encode topk needs --k');
  if (o.k !== undefined && o.encode === undefined) throw new UsageError('--k needs --encode topk');
  if (!o.secureRng && o.dpSeed === undefined) throw new UsageError('--no-secure-rng needs --dp-seed');
  if (o.secureRng && o.dpSeed !== undefined) throw new UsageError('--dp-seed needs --no-secure-rng (secure noise takes no seed)');
  if (f.given('seed')) {
    throw new UsageError('--seed with --dp: batch sampling is drawn from the OS CSPRNG (a seeded sampler is replayable); for a replayable, non-private run use --no-secure-rng --dp-seed N');
  }
  if (o.publicData !== undefined && o.normFix !== 'public-batch') throw new UsageError('--public-data needs --norm-fix public-batch');
  if (o.normFix === 'public-batch' && o.publicData === undefined) throw new UsageError('--norm-fix public-batch needs --public-data DIR (public examples, disjoint from the private data)');
  if (o.sampling === 'poisson' && f.given('shuffle')) throw new UsageError('--no-shuffle needs --sampling shuffle: Poisson sampling has no order');
  const denoise = o.denoise === undefined ? undefined : o.denoise === true ? DP_DEFAULTS.denoiseThreshold : Number(o.denoise);
  if (denoise !== undefined && !(denoise > 0)) throw new UsageError(`--denoise threshold must be > 0, got '${String(o.denoise)}'`);
  if (o.delta !== undefined && !(o.delta > 0 && o.delta < 1)) throw new UsageError(`--delta must be in (0, 1), got ${o.delta}`);
  if (!(o.maxGradNorm > 0)) throw new UsageError('--max-grad-norm must be > 0');
  if (o.targetEpsilon !== undefined && !(o.targetEpsilon > 0)) throw new UsageError('--target-epsilon must be > 0');
  if (o.noiseMultiplier !== undefined && !(o.noiseMultiplier >= 0)) throw new UsageError('--noise-multiplier must be >= 0');
  const options: DpOptions = {
    maxGradNorm: o.maxGradNorm,
    delta: o.delta ?? defaultDelta(examples),
    noiseMultiplier: o.noiseMultiplier,
    targetEpsilon: o.targetEpsilon,
    noiseSchedule: o.noiseSchedule,
    noiseEndRatio: o.noiseEndRatio,
    noisePeriodSteps: o.noisePeriod,
    accountant: o.accountant,
    sampling: o.sampling,
    clip: o.clipSchedule,
    clipQuantile: o.clipQuantile,
    clipLearningRate: o.clipLr,
    clipCountNoise: o.clipCountNoise,
    noise: o.noise,
    encodeTopK: o.k,
    denoiseThreshold: denoise,
    secureRng: o.secureRng,
    seed: o.dpSeed,
  };
  if (o.physicalBatch !== undefined && !(o.physicalBatch >= 1)) throw new UsageError(`--physical-batch must be a positive integer, got ${o.physicalBatch}`);
  return { options, normFix: o.normFix, publicData: o.publicData, physicalBatchSize: o.physicalBatch };
}
