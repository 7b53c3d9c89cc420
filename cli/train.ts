/** `rp-onnx train MODEL --data DIR -o OUT`: fine-tune any ONNX model with our autodiff engine, optionally with DP-SGD. */
import { TRAINING_DEFAULTS } from '../src/train/defaults.js';
import type { Command } from 'commander';
import { Option } from 'commander';
import { basename, dirname, join } from 'node:path';
import { action, printJson, parseIntOption, parseNumberOption } from './common.js';
import { ProgressLine, interruptOnSigint } from './progress.js';
import { loadModel, saveModel } from '../src/graph/io.js';
import { checkOutputPath } from '../src/fs-atomic.js';
import { loadDataDir, hasSplit, defaultDataDir, subset, fitSplitsToModel, type Layout } from '../src/data/index.js';
import { RpOnnxError } from '../src/errors.js';
import { toolVersion } from './tool-version.js';
import { readDpFlags, registerDpOptions } from './train-dp.js';
import { trainModel } from '../src/train/train-model.js';
import { NOT_COVERED } from '../src/train/dp/statement.js';
import type { Progress, EpochReport } from '../src/train/fit.js';

function defaultOutput(model: string): string {
  return join(dirname(model), `${basename(model).replace(/\.onnx$/i, '')}.trained.onnx`);
}

const collect = (v: string, prev: string[]) => [...prev, ...v.split(',').filter(Boolean)];

/** `train`'s non-DP flags as commander stores them. */
interface TrainFlags {
  data?: string;
  testData?: string;
  output?: string;
  epochs?: number;
  steps?: number;
  batch: number;
  lr: number;
  optimizer: string;
  momentum: number;
  weightDecay: number;
  schedule: string;
  seed: number;
  shuffle: boolean;
  threads?: number;
  freeze: string[];
  batchNorm: 'train' | 'frozen';
  limit?: number;
  emaDecay?: number;
  layout?: Layout;
  evalEvery: number;
  checkpointDir?: string;
  resume?: boolean;
  executionProvider: 'cpu' | 'cuda';
  force?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description('fine-tune an ONNX model on onnxruntime-node (our own autodiff builds the training graph) and export it')
    .argument('<model>', 'ONNX model to train (perturbation nodes are kept and train with fresh noise)')
    .option('--data <dir>', 'training data folder (IDX, CIFAR binary, NPY/NPZ); default: the embedded Fashion-MNIST subset')
    .option('--test-data <dir>', 'test data folder (default: the test split of --data when present)')
    .option('-o, --output <file>', 'output model (default: <model>.trained.onnx beside the input)')
    .option('--epochs <n>', 'epochs over the training data (DP with Poisson sampling: 1/q steps each)', parseIntOption('--epochs'))
    .option('--steps <n>', 'optimisation steps instead of epochs', parseIntOption('--steps'))
    .option('--batch <n>', 'batch size (DP with Poisson sampling: the expected batch size, q = B/N)', parseIntOption('--batch'), TRAINING_DEFAULTS.batchSize)
    .option('--lr <x>', 'learning rate', parseNumberOption('--lr'), TRAINING_DEFAULTS.lr)
    .option('--optimizer <name>', 'sgd | adam | adamw', TRAINING_DEFAULTS.optimizer)
    .option('--momentum <x>', 'SGD momentum (PyTorch semantics)', parseNumberOption('--momentum'), TRAINING_DEFAULTS.momentum)
    .option('--weight-decay <x>', 'L2 weight decay (decoupled for adamw)', parseNumberOption('--weight-decay'), TRAINING_DEFAULTS.weightDecay)
    .option('--schedule <name>', 'learning-rate schedule per step: constant | cosine (to 0) | step (x0.1 at 50% and 75%)', TRAINING_DEFAULTS.schedule)
    .option('--seed <n>', 'seed for shuffling (noise of perturbation nodes stays cryptographically random; under --dp sampling is too)', parseIntOption('--seed'), TRAINING_DEFAULTS.seed)
    .option('--no-shuffle', 'batches in file order: the first batch is the first B training examples')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', parseIntOption('--threads'))
    .option('--freeze <patterns>', 'comma-separated initializer name patterns to keep fixed (* wildcard)', collect, [])
    .addOption(new Option('--batch-norm <mode>', 'BatchNormalization while training: train (batch statistics) | frozen (running statistics)').choices(['train', 'frozen']).default(TRAINING_DEFAULTS.batchNorm))
    .option('--limit <n>', 'use only the first N training examples', parseIntOption('--limit'))
    .option('--ema-decay <d>', 'export (and evaluate) an exponential moving average of the weights, decay min(d, (1+t)/(10+t)) (De et al. 2022); under --dp it is post-processing, no privacy cost', parseNumberOption('--ema-decay'))
    .option('--eval-every <n>', 'also evaluate on the test data every N steps', parseIntOption('--eval-every'), 0)
    .option('--checkpoint-dir <dir>', 'write an atomic checkpoint after every epoch (a folder holding another run\'s checkpoints needs --resume or --force)')
    .option('--resume', 'continue from the latest checkpoint in --checkpoint-dir (DP: the ledger, clipping bound and schedule position too)')
    .addOption(new Option('--execution-provider <ep>', 'onnxruntime execution provider').choices(['cpu', 'cuda']).default('cpu'))
    .addOption(new Option('--layout <layout>', 'input layout of the model (default: detected from its input shape; NCHW data is transposed for an NHWC model)').choices(['nchw', 'nhwc']))
    .option('--force', 'overwrite an existing output file (and replace the checkpoints in --checkpoint-dir)')
    .option('--json', 'print a JSON summary on stdout');
  registerDpOptions(cmd);
  cmd.action(action(async (modelPath: string, _o: unknown, command: Command) => {
    const o = command.opts<TrainFlags>();
    const output = o.output ?? defaultOutput(modelPath);
    checkOutputPath(output, { force: o.force === true, inputs: [modelPath] });
    if (o.epochs !== undefined && o.steps !== undefined) throw new RpOnnxError('give either --epochs or --steps, not both');
    if (o.resume && !o.checkpointDir) throw new RpOnnxError('--resume needs --checkpoint-dir');
    if (!(o.batch >= 1)) throw new RpOnnxError(`--batch must be a positive integer, got ${o.batch}`);
    if (o.limit !== undefined && !(o.limit >= 1)) throw new RpOnnxError(`--limit must be a positive integer, got ${o.limit}`);
    const model = loadModel(modelPath);
    const dataDir = o.data ?? defaultDataDir();
    let train = loadDataDir(dataDir, { split: 'train' });
    if (o.limit !== undefined) train = subset(train, Array.from({ length: Math.min(train.count, o.limit) }, (_, i) => i));
    const dp = readDpFlags(command, train.count);
    const testDir = o.testData ?? (hasSplit(dataDir, 'test') ? dataDir : undefined);
    let test = testDir ? loadDataDir(testDir, { split: 'test' }) : undefined;
    ({ train, test } = fitSplitsToModel(model, { train, test }, { layout: o.layout }));
    const progress = new ProgressLine(true);
    const interrupt = interruptOnSigint(progress);
    // Under DP the training loss and accuracy are computed on the private data without noise.
    const trainLabel = dp ? 'train loss (not private)' : 'train loss';
    const outcome = await trainModel({
      model, train, test, dataName: dataDir, dp,
      recipe: {
        ...(o.steps === undefined ? { epochs: o.epochs ?? 1 } : { steps: o.steps }),
        batchSize: o.batch, lr: o.lr, optimizer: o.optimizer, momentum: o.momentum, weightDecay: o.weightDecay,
        schedule: o.schedule, batchNorm: o.batchNorm, seed: o.seed, shuffle: o.shuffle,
        ...(o.limit !== undefined ? { limit: o.limit } : {}),
        ...(o.emaDecay !== undefined ? { emaDecay: o.emaDecay } : {}),
      },
      options: {
        threads: o.threads, freeze: o.freeze, executionProvider: o.executionProvider,
        evalEvery: o.evalEvery, checkpointDir: o.checkpointDir, resume: o.resume === true, overwriteCheckpoints: o.force === true,
        signal: interrupt.signal,
        onProgress: (p) => progress.update(p.step / p.stepsInEpoch, progressText(p, trainLabel)),
        onEpoch: (e) => progress.done(epochText(e, trainLabel)),
      },
    }).catch((e: unknown) => { throw withFlagNames(e); }).finally(() => interrupt.release());
    const result = outcome.result;
    if (result.interrupted) throw new RpOnnxError(`training interrupted after ${result.steps} steps; ${output} was not written`, { exitCode: 130 });
    if (result.stoppedByBudget) progress.done(`stopped after ${result.steps} steps: the next step would exceed --target-epsilon ${dp?.options.targetEpsilon}`);
    outcome.model.setMetadata('rp-onnx.version', toolVersion());
    saveModel(outcome.model, output);
    const summary = {
      output, steps: result.steps, seconds: result.seconds, epochs: result.epochs,
      finalTestAccuracy: result.finalTestAccuracy,
      examplesUsed: outcome.training.examplesUsed, examples: train.count,
      ...(dp ? {
        noiseMultiplier: outcome.noiseMultiplier, privacy: outcome.privacy, stoppedByBudget: result.stoppedByBudget,
        emptySteps: result.emptySteps, notCovered: NOT_COVERED,
      } : {}),
    };
    if (o.json) printJson(summary);
    else {
      process.stdout.write(`wrote ${output} (${result.steps} steps, ${outcome.training.examplesUsed} of ${train.count} examples used, ${result.seconds.toFixed(1)} s${result.finalTestAccuracy !== null ? `, test accuracy ${(100 * result.finalTestAccuracy).toFixed(2)}%` : ''})\n`);
      if (outcome.privacy) process.stdout.write(`privacy: ${outcome.privacy.statement}\n`);
    }
  }));
}

function progressText(p: Progress, trainLabel: string): string {
  if (p.evaluation) return `epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.stepsInEpoch} test loss ${p.loss.toFixed(4)} acc ${(100 * p.accuracy).toFixed(1)}%`;
  const dp = p.sigma !== undefined
    ? ` batch ${p.batchSize} eps ${p.epsilon === null || p.epsilon === undefined ? 'n/a' : p.epsilon.toFixed(3)} C ${p.clipNorm?.toPrecision(3)} sigma ${p.sigma.toPrecision(3)}`
    : '';
  return `epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.stepsInEpoch} ${trainLabel} ${p.loss.toFixed(4)} acc ${(100 * p.accuracy).toFixed(1)}% ${p.examplesPerSecond.toFixed(0)} ex/s lr ${p.lr.toPrecision(3)}${dp}`;
}

function epochText(e: EpochReport, trainLabel: string): string {
  return `epoch ${e.epoch}: ${trainLabel} ${e.trainLoss.toFixed(4)} acc ${(100 * e.trainAccuracy).toFixed(2)}%` +
    (e.testAccuracy !== null ? `, test acc ${(100 * e.testAccuracy).toFixed(2)}%` : '') +
    (e.epsilon !== undefined ? `, epsilon ${e.epsilon === null ? 'not claimed' : e.epsilon.toFixed(3)}` : '') +
    `, ${e.seconds.toFixed(1)} s (${e.examplesPerSecond.toFixed(0)} ex/s)`;
}

/** The library names its parameters; the user typed flags. */
const FLAG_OF: Record<string, string> = {
  normFix: '--norm-fix', publicData: '--public-data', targetEpsilon: '--target-epsilon', noiseMultiplier: '--noise-multiplier',
  maxGradNorm: '--max-grad-norm', batchSize: '--batch', encodeTopK: '--k', clipCountNoise: '--clip-count-noise',
  noisePeriodSteps: '--noise-period', delta: '--delta', 'checkpoint directory': '--checkpoint-dir', 'resume:': '--resume:',
  'or force to': 'or --force to', 'run without resume': 'run without --resume',
};

function withFlagNames(e: unknown): unknown {
  if (!(e instanceof RpOnnxError)) return e;
  let m = e.message;
  for (const [name, flag] of Object.entries(FLAG_OF)) m = m.replace(new RegExp(`(^|[^\\w-])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w])`, 'g'), `$1${flag}`);
  return m === e.message ? e : new RpOnnxError(m, { exitCode: e.exitCode, cause: e });
}
