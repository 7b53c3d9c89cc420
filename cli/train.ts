/** `rp-onnx train MODEL --data DIR -o OUT`: fine-tune any ONNX model with our autodiff engine. */
import type { Command } from 'commander';
import { basename, dirname, join } from 'node:path';
import { action, printJson, parseIntOption, parseNumberOption } from './common.js';
import { ProgressLine, interruptOnSigint } from './progress.js';
import { loadModel, saveModel } from '../src/graph/io.js';
import { checkOutputPath } from '../src/fs-atomic.js';
import { fit } from '../src/train/fit.js';
import { loadDataDir, hasSplit, defaultDataDir, subset, fitSplitsToModel, type Layout } from '../src/train/data/index.js';
import { RpOnnxError } from '../src/errors.js';
import { toolVersion } from './tool-version.js';
import { dpOptionsFrom, registerDpOptions, runPrivateTraining } from './train-dp.js';



function defaultOutput(model: string): string {
  return join(dirname(model), `${basename(model).replace(/\.onnx$/i, '')}.trained.onnx`);
}

const collect = (v: string, prev: string[]) => [...prev, ...v.split(',').filter(Boolean)];

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description('fine-tune an ONNX model on onnxruntime-node (our own autodiff builds the training graph) and export it')
    .argument('<model>', 'ONNX model to train (perturbation nodes are kept and train with fresh noise)')
    .option('--data <dir>', 'training data folder (IDX, CIFAR binary, NPY/NPZ); default: the embedded Fashion-MNIST subset')
    .option('--test-data <dir>', 'test data folder (default: the test split of --data when present)')
    .option('-o, --output <file>', 'output model (default: <model>.trained.onnx beside the input)')
    .option('--epochs <n>', 'epochs over the training data', parseIntOption('--epochs'))
    .option('--steps <n>', 'optimisation steps instead of epochs', parseIntOption('--steps'))
    .option('--batch <n>', 'batch size', parseIntOption('--batch'), 128)
    .option('--lr <x>', 'learning rate', parseNumberOption('--lr'), 0.05)
    .option('--optimizer <name>', 'sgd | adam | adamw', 'sgd')
    .option('--momentum <x>', 'SGD momentum (PyTorch semantics)', parseNumberOption('--momentum'), 0.9)
    .option('--weight-decay <x>', 'L2 weight decay (decoupled for adamw)', parseNumberOption('--weight-decay'), 5e-4)
    .option('--schedule <name>', 'learning-rate schedule per step: constant | cosine (to 0) | step (x0.1 at 50% and 75%)', 'cosine')
    .option('--seed <n>', 'seed for shuffling (noise of perturbation nodes stays cryptographically random)', parseIntOption('--seed'), 0)
    .option('--no-shuffle', 'batches in file order: the first batch is the first B training examples')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', parseIntOption('--threads'))
    .option('--freeze <patterns>', 'comma-separated initializer name patterns to keep fixed (* wildcard)', collect, [])
    .option('--batch-norm <mode>', 'BatchNormalization while training: train (batch statistics) | frozen (running statistics)', 'train')
    .option('--limit <n>', 'use only the first N training examples', parseIntOption('--limit'))
    .option('--eval-every <n>', 'also evaluate on the test data every N steps', parseIntOption('--eval-every'), 0)
    .option('--checkpoint-dir <dir>', 'write an atomic checkpoint after every epoch')
    .option('--resume', 'continue from the latest checkpoint in --checkpoint-dir')
    .option('--execution-provider <ep>', 'cpu | cuda', 'cpu')
    .option('--layout <layout>', 'input layout of the model: nchw | nhwc (default: detected from its input shape; NCHW data is transposed for an NHWC model)')
    .option('--force', 'overwrite an existing output file')
    .option('--json', 'print a JSON summary on stdout');
  registerDpOptions(cmd);
  cmd.action(action(async (modelPath: string, o: Record<string, unknown>) => {
      const output = (o.output as string | undefined) ?? defaultOutput(modelPath);
      checkOutputPath(output, { force: o.force === true, inputs: [modelPath] });
      if (o.epochs !== undefined && o.steps !== undefined) throw new RpOnnxError('give either --epochs or --steps, not both');
      if (o.resume && !o.checkpointDir) throw new RpOnnxError('--resume needs --checkpoint-dir');
      const bn = o.batchNorm as string;
      if (bn !== 'train' && bn !== 'frozen') throw new RpOnnxError(`--batch-norm must be train or frozen, got '${bn}'`);
      const model = loadModel(modelPath);
      const dataDir = (o.data as string | undefined) ?? defaultDataDir();
      let train = loadDataDir(dataDir, { split: 'train' });
      if (o.limit !== undefined) train = subset(train, Array.from({ length: Math.min(train.count, o.limit as number) }, (_, i) => i));
      const testDir = (o.testData as string | undefined) ?? (hasSplit(dataDir, 'test') ? dataDir : undefined);
      let test = testDir ? loadDataDir(testDir, { split: 'test' }) : undefined;
      ({ train, test } = fitSplitsToModel(model, { train, test }, { layout: o.layout as Layout | undefined }));
      if (o.dp) {
        await runPrivateTraining({ model, modelPath, train, test, dataDir, output, o, dp: dpOptionsFrom(o, train.count) });
        return;
      }
      const progress = new ProgressLine(true);
      const interrupt = interruptOnSigint(progress);
      const result = await fit(model, train, test, {
        epochs: o.steps === undefined ? ((o.epochs as number | undefined) ?? 1) : undefined,
        steps: o.steps as number | undefined,
        batchSize: o.batch as number, lr: o.lr as number, optimizer: o.optimizer as string,
        momentum: o.momentum as number, weightDecay: o.weightDecay as number,
        schedule: o.schedule as string, seed: o.seed as number, shuffle: o.shuffle !== false,
        threads: o.threads as number | undefined, freeze: o.freeze as string[], batchNorm: bn,
        evalEvery: o.evalEvery as number, checkpointDir: o.checkpointDir as string | undefined,
        resume: o.resume === true, executionProvider: o.executionProvider as 'cpu' | 'cuda',
        signal: interrupt.signal,
        onProgress: (p) => progress.update(p.step / p.stepsInEpoch,
          `epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.stepsInEpoch} loss ${p.loss.toFixed(4)} acc ${(100 * p.accuracy).toFixed(1)}% ${p.examplesPerSecond.toFixed(0)} ex/s lr ${p.lr.toPrecision(3)}`),
        onEpoch: (e) => progress.done(
          `epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)} acc ${(100 * e.trainAccuracy).toFixed(2)}%` +
          (e.testAccuracy !== null ? `, test acc ${(100 * e.testAccuracy).toFixed(2)}%` : '') +
          `, ${e.seconds.toFixed(1)} s (${e.examplesPerSecond.toFixed(0)} ex/s)`),
      });
      interrupt.release();
      if (result.interrupted) throw new RpOnnxError(`training interrupted after ${result.steps} steps; ${output} was not written`, { exitCode: 130 });
      const trained = result.model;
      trained.setMetadata('rp-onnx.version', toolVersion());
      trained.setMetadata('rp-onnx.training', JSON.stringify({
        data: dataDir, examples: train.count, steps: result.steps, epochs: result.epochs.length,
        batch: o.batch, lr: o.lr, optimizer: o.optimizer, momentum: o.momentum, weightDecay: o.weightDecay,
        schedule: o.schedule, batchNorm: bn, finalTestAccuracy: result.finalTestAccuracy,
      }));
      saveModel(trained, output);
      const summary = {
        output, steps: result.steps, seconds: result.seconds, epochs: result.epochs,
        finalTestAccuracy: result.finalTestAccuracy,
      };
      if (o.json) printJson(summary);
      else process.stdout.write(`wrote ${output} (${result.steps} steps, ${result.seconds.toFixed(1)} s${result.finalTestAccuracy !== null ? `, test accuracy ${(100 * result.finalTestAccuracy).toFixed(2)}%` : ''})\n`);
    }));
}
