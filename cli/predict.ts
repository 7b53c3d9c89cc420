/** `rp-onnx predict`: accuracy and throughput of a (noisy) model or ensemble, logits averaged over passes. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { action, printJson, parseIntOption, UsageError } from './common.js';
import { loadModel } from '../src/graph/io.js';
import { tensorTypeOf, type Model } from '../src/graph/ir.js';
import { RpOnnxError } from '../src/errors.js';
import { loadDataDir, parseNpy, fitExamplesToModel, type Layout, type Split } from '../src/data/index.js';
import { predict, type PredictInput } from '../src/runtime/predict.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../src/runtime/session.js';

/** Examples from a .npy file: [n, ...example] or a single example without the batch axis. */
function npyInput(path: string, model: Model): PredictInput {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new RpOnnxError(`--input ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const arr = parseNpy(bytes, path);
  const data = arr.data instanceof Float32Array ? arr.data : Float32Array.from(arr.data as ArrayLike<number | bigint>, (v) => Number(v));
  const rank = tensorTypeOf(model.graph.realInputs()[0]?.type)?.shape?.length;
  const single = rank !== undefined && arr.shape.length === rank - 1;
  const shape = single ? arr.shape : arr.shape.slice(1);
  if (!single && arr.shape.length === 0) throw new RpOnnxError(`--input ${path} holds a scalar; save examples as [n, ...example shape]`);
  return { data, count: single ? 1 : arr.shape[0]!, shape };
}

export function register(program: Command): void {
  program
    .command('predict')
    .description('predict with a noisy model: logits averaged over K stochastic passes and/or an ensemble; accuracy when labels exist, throughput')
    .argument('<model>', 'ONNX model (perturbed or not)')
    .option('--data <dir>', 'dataset folder (IDX, CIFAR binary, NPY/NPZ) with labels')
    .option('--split <split>', 'split of --data: train | test', 'test')
    .option('--input <file.npy>', 'examples as a float .npy array [n, ...example shape] (no labels)')
    .option('--samples <k>', 'stochastic passes per model whose logits are averaged', parseIntOption('--samples'), 1)
    .option('--ensemble <list>', 'more models (comma list) whose logits are averaged with MODEL\'s, e.g. the paper\'s En5ResNet8')
    .option('--batch <b>', 'examples per run', parseIntOption('--batch'), 64)
    .option('--limit <n>', 'only the first N examples', parseIntOption('--limit'))
    .option('--execution-provider <ep>', `onnxruntime execution provider: ${EXECUTION_PROVIDERS.join(' | ')}`, 'cpu')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', parseIntOption('--threads'))
    .option('--seed <n>', 'seed the noise (reproducible runs); default: fresh OS entropy per model', parseIntOption('--seed'))
    .option('--layout <layout>', 'input layout of the model: nchw | nhwc (default: detected from its input shape)')
    .option('--json', 'print JSON on stdout')
    .action(action(async (modelPath: string, o: {
      data?: string; split: string; input?: string; samples: number; ensemble?: string; batch: number; limit?: number;
      executionProvider: string; threads?: number; seed?: number; layout?: string; json?: boolean;
    }) => {
      if ((o.data === undefined) === (o.input === undefined)) throw new UsageError('give exactly one of --data DIR and --input FILE.npy');
      if (!EXECUTION_PROVIDERS.includes(o.executionProvider as ExecutionProvider)) {
        throw new UsageError(`--execution-provider must be one of ${EXECUTION_PROVIDERS.join(', ')}, got '${o.executionProvider}'`);
      }
      const paths = [modelPath, ...(o.ensemble?.split(',').map((s) => s.trim()).filter((s) => s !== '') ?? [])];
      const models = paths.map((p) => loadModel(p));
      let input: PredictInput;
      if (o.data !== undefined) {
        if (o.split !== 'train' && o.split !== 'test') throw new UsageError(`--split must be train or test, got '${o.split}'`);
        const ds = loadDataDir(o.data, { split: o.split as Split });
        input = { data: ds.images, count: ds.count, shape: ds.shape, labels: ds.labels };
      } else {
        input = npyInput(o.input!, models[0]!);
      }
      input = fitExamplesToModel(models[0]!, input, { layout: o.layout as Layout | undefined, source: o.data ?? o.input });
      const r = await predict(models, input, {
        samples: o.samples, batch: o.batch, limit: o.limit, executionProvider: o.executionProvider as ExecutionProvider,
        threads: o.threads, noiseSeed: o.seed ?? 'secure',
      });
      const rows = (n: number) => Array.from({ length: n }, (_, i) => Array.from(r.logits.subarray(i * r.classes, (i + 1) * r.classes)));
      if (o.json) {
        printJson({
          models: paths, samples: r.samples, count: r.count, classes: r.classes, accuracy: r.accuracy, correct: r.correct,
          seconds: r.seconds, examplesPerSecond: r.examplesPerSecond,
          ...(input.labels ? {} : { predictions: Array.from(r.predictions), logits: rows(r.count) }),
        });
        return;
      }
      if (!input.labels) {
        for (let i = 0; i < r.count; i++) process.stdout.write(`example ${i}: class ${r.predictions[i]}\n`);
      }
      const how = `${r.members} model${r.members > 1 ? 's' : ''} x ${r.samples} pass${r.samples > 1 ? 'es' : ''}, logits averaged`;
      const acc = r.accuracy === null ? '' : `accuracy ${(100 * r.accuracy).toFixed(2)}% (${r.correct}/${r.count}), `;
      process.stdout.write(`${acc}${r.count} examples, ${how}, ${r.examplesPerSecond.toFixed(1)} examples/s\n`);
    }));
}
