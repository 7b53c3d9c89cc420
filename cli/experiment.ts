/** `rp-onnx experiment residual-perturbation`: the paper's experiment, as a table and a report. */
import type { Command } from 'commander';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { action, printJson, parseIntOption, parseNumberOption } from './common.js';
import { ProgressLine } from './progress.js';
import { checkOutputDir, writeFileAtomic } from '../src/fs-atomic.js';
import { loadDataDir, findFashionMnist, defaultDataDir } from '../src/data/index.js';
import { runResidualPerturbationExperiment, markdownTable, type ExperimentRow } from '../src/experiments/residual-perturbation.js';
import { toolVersion } from './tool-version.js';
import { RpOnnxError } from '../src/errors.js';
import { runDpSgdExperiment, resolveRecipe, DP_SGD_MODELS, DP_SGD_RECIPES, type DpSgdModel } from '../src/experiments/dp-sgd.js';

function html(rows: ExperimentRow[], command: string): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const body = rows.map((r) => `<tr><td>${esc(r.method)}</td><td>${(100 * r.testAccuracy).toFixed(2)}%</td><td>${(100 * r.trainAccuracy).toFixed(2)}%</td><td>${r.auc.toFixed(3)} (${esc(r.bestAttack)})</td><td>${r.advantage.toFixed(3)}</td><td>${r.epsilon === null ? '-' : r.epsilon.toFixed(2)}</td><td>${r.trainSeconds.toFixed(0)} s</td></tr>`).join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Residual perturbation vs DP-SGD</title>
<style>body{font-family:sans-serif;margin:24px}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 10px}th{background:#eee}</style></head>
<body><h1>Residual perturbation vs DP-SGD (Fashion-MNIST, ResNet-8)</h1><p>Made by <code>${esc(command)}</code>.</p>
<table><tr><th>method</th><th>test accuracy</th><th>train accuracy (members)</th><th>MIA AUC (best attack)</th><th>advantage</th><th>epsilon</th><th>training time</th></tr>
${body}</table></body></html>
`;
}

export function register(program: Command): void {
  const exp = program.command('experiment').description('reproduce the experiments of the seed papers');
  exp
    .command('residual-perturbation')
    .description('ResNet-8 on Fashion-MNIST: gamma sweep for strategies I and II, single models and ensembles, versus DP-SGD at several epsilons; test accuracy, membership-inference AUC and advantage, training time')
    .option('--data <dir>', 'Fashion-MNIST (IDX) folder (default: the full set if found, else the embedded subset)')
    .option('--quick', 'a small version (2,000 members, 5 epochs, one gamma per strategy, ensembles of 3, epsilon 3): about 10 minutes on 2 cores')
    .option('--members <n>', 'training examples (the audit\'s members)', parseIntOption('--members'))
    .option('--epochs <n>', 'training epochs per model', parseIntOption('--epochs'))
    .option('--out-dir <dir>', 'where the markdown table and HTML report go (created if missing; the committed results: --out-dir docs --force)', join('rp-experiments', 'residual-perturbation'))
    .option('--force', 'replace the table and report of an earlier run in --out-dir')
    .option('--seed <n>', 'seed of initialisation and shuffling', parseIntOption('--seed'), 0)
    .option('--threads <n>', 'onnxruntime threads', parseIntOption('--threads'))
    .option('--json', 'print JSON')
    .action(action(async (o: { data?: string; quick?: boolean; members?: number; epochs?: number; outDir: string; force?: boolean; seed: number; threads?: number; json?: boolean }) => {
      const q = o.quick === true;
      const name = q ? 'experiment-residual-perturbation-quick' : 'experiment-residual-perturbation';
      const files = [`${name}.md`, `${name}.html`];
      // Before an hour of training, not after it.
      checkOutputDir(o.outDir, files, { force: o.force === true, flag: '--out-dir' });
      const dir = o.data ?? findFashionMnist() ?? defaultDataDir();
      const train = loadDataDir(dir, { split: 'train' });
      const test = loadDataDir(dir, { split: 'test' });
      if (train.shape.join('x') !== '1x28x28') throw new RpOnnxError(`${dir}: the experiment needs 1x28x28 images (Fashion-MNIST), got ${train.shape.join('x')}`);
      const progress = new ProgressLine(true);
      const started = Date.now();
      const rows = await runResidualPerturbationExperiment({
        train, test, members: o.members ?? (q ? 2000 : 10000), epochs: o.epochs ?? (q ? 5 : 10),
        gammasI: q ? [1] : [0.5, 1, 2], gammasII: q ? [0.5] : [0.25, 0.5, 1], ensemble: q ? 3 : 5,
        ensembleGamma: { I: 1, II: 0.5 }, epsilons: q ? [3] : [1, 3, 8], seed: o.seed, threads: o.threads,
        toolVersion: toolVersion(),
        onStage: (s) => progress.done(`training: ${s}`),
        onProgress: (f) => progress.update(f, `experiment ${(100 * f).toFixed(1)}%`),
        onRow: (r) => progress.done(`  ${r.method}: test ${(100 * r.testAccuracy).toFixed(2)}%, MIA AUC ${r.auc.toFixed(3)}, ${r.trainSeconds.toFixed(0)} s`),
      });
      const command = `rp-onnx experiment residual-perturbation${o.data ? ` --data ${o.data}` : ''}${q ? ' --quick' : ''}${o.members ? ` --members ${o.members}` : ''}${o.epochs ? ` --epochs ${o.epochs}` : ''}`;
      checkOutputDir(o.outDir, files, { force: o.force === true, flag: '--out-dir' });
      mkdirSync(o.outDir, { recursive: true });
      const minutes = (Date.now() - started) / 60000;
      const md = `# Residual perturbation vs DP-SGD (Fashion-MNIST, ResNet-8)\n\nMade by \`${command}\` (data: ${dir}; ${train.count} training / ${test.count} test images; ${minutes.toFixed(1)} minutes on this machine).\nMembers are the first training examples the models were trained on; non-members as many test examples; the MIA columns are the best of the threshold attacks (loss, confidence, entropy, modified entropy) against the model as deployed (one noisy pass per query). Test accuracy is on the whole test split.\n\n${markdownTable(rows)}\n`;
      writeFileAtomic(join(o.outDir, `${name}.md`), md);
      writeFileAtomic(join(o.outDir, `${name}.html`), html(rows, command));
      if (o.json) printJson({ rows, command, minutes });
      else process.stdout.write(`${md}\nwrote ${join(o.outDir, `${name}.md`)} and .html\n`);
    }));

  const r = DP_SGD_RECIPES['dp-cnn'];
  exp
    .command('dp-sgd')
    .description(`DP-SGD at the literature's level: the documented recipe (dp-cnn: Tramer & Boneh 2021, batch ${r.batchSize}, lr ${r.lr}, momentum ${r.momentum}, C ${r.maxGradNorm}, ${r.epochs} epochs, plus EMA of the weights) on the full training split, Poisson sampling, sigma calibrated to --target-epsilon at delta ${r.delta}; test accuracy on the test split. Writes no files.`)
    .requiredOption('--data <dir>', 'dataset folder with train and test splits (Fashion-MNIST IDX, ...)')
    .requiredOption('--target-epsilon <e>', 'epsilon the run must end at or below', parseNumberOption('--target-epsilon'))
    .option('--model <name>', `network: ${DP_SGD_MODELS.join(' | ')} (resnet8 with GroupNorm)`, 'dp-cnn')
    .option('--epochs <n>', 'epochs (default: the recipe\'s)', parseIntOption('--epochs'))
    .option('--batch-size <b>', 'expected logical batch size B (Poisson rate B/N)', parseIntOption('--batch-size'))
    .option('--physical-batch-size <p>', 'examples per run of the training graph (memory only; the DP step is unchanged)', parseIntOption('--physical-batch-size'))
    .option('--lr <lr>', 'learning rate', parseNumberOption('--lr'))
    .option('--momentum <m>', 'SGD momentum', parseNumberOption('--momentum'))
    .option('--schedule <s>', 'learning-rate schedule: constant | cosine')
    .option('--max-grad-norm <c>', 'per-example clipping norm C', parseNumberOption('--max-grad-norm'))
    .option('--ema-decay <d>', 'EMA decay of the averaged weights (De et al. 2022 warm-up)', parseNumberOption('--ema-decay'))
    .option('--no-ema', 'report the last iterate instead of the averaged weights')
    .option('--limit <n>', 'only the first N training examples (exploration; not the documented recipe)', parseIntOption('--limit'))
    .option('--seed <n>', 'seed of the initialisation (noise and sampling always come from the OS CSPRNG)', parseIntOption('--seed'))
    .option('--threads <n>', 'onnxruntime threads', parseIntOption('--threads'))
    .option('--json', 'print JSON on stdout')
    .action(action(async (o: {
      data: string; targetEpsilon: number; model: string; epochs?: number; batchSize?: number; physicalBatchSize?: number; lr?: number;
      momentum?: number; schedule?: string; maxGradNorm?: number; emaDecay?: number; ema: boolean; limit?: number; seed?: number; threads?: number; json?: boolean;
    }) => {
      if (!(DP_SGD_MODELS as readonly string[]).includes(o.model)) throw new RpOnnxError(`--model must be one of ${DP_SGD_MODELS.join(', ')}, got '${o.model}'`);
      if (o.schedule !== undefined && o.schedule !== 'constant' && o.schedule !== 'cosine') throw new RpOnnxError(`--schedule must be constant or cosine, got '${o.schedule}'`);
      if (o.limit !== undefined && !(o.limit >= 1)) throw new RpOnnxError(`--limit must be a positive integer, got ${o.limit}`);
      if (!o.ema && o.emaDecay !== undefined) throw new RpOnnxError('--ema-decay and --no-ema contradict each other');
      const model = o.model as DpSgdModel;
      const base = DP_SGD_RECIPES[model];
      const recipe = resolveRecipe(model, {
        epochs: o.epochs, batchSize: o.batchSize, physicalBatchSize: o.physicalBatchSize, lr: o.lr, momentum: o.momentum,
        schedule: o.schedule as 'constant' | 'cosine' | undefined, maxGradNorm: o.maxGradNorm, seed: o.seed,
        ema: o.ema ? { decay: o.emaDecay ?? base.ema?.decay ?? 0.999, warmup: true } : null,
      });
      const train = loadDataDir(o.data, { split: 'train' });
      const test = loadDataDir(o.data, { split: 'test' });
      const progress = new ProgressLine(true);
      const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);
      const result = await runDpSgdExperiment({
        train, test, targetEpsilon: o.targetEpsilon, model, recipe, limit: o.limit, threads: o.threads,
        onProgress: (p) => progress.update(((p.epoch - 1) * p.stepsInEpoch + p.step) / (p.epochs * p.stepsInEpoch),
          `epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.stepsInEpoch}, sigma ${p.sigma.toFixed(4)}, eps ${p.epsilon?.toFixed(3) ?? '-'}`),
        onEpoch: (e) => progress.done(`epoch ${e.epoch}: test ${pct(e.testAccuracy)}${e.emaTestAccuracy !== undefined ? ` (EMA ${pct(e.emaTestAccuracy)})` : ''}, eps ${e.epsilon?.toFixed(3) ?? '-'}, ${e.seconds.toFixed(0)} s, ${e.examplesPerSecond.toFixed(0)} ex/s`),
      });
      const { result: _full, ...summary } = result;
      const out = { ...summary, data: o.data, epochs: result.epochs.map((e) => ({ epoch: e.epoch, testAccuracy: e.testAccuracy, emaTestAccuracy: e.emaTestAccuracy ?? null, epsilon: e.epsilon, seconds: e.seconds })) };
      if (o.json) {
        printJson(out);
        return;
      }
      process.stdout.write(`${model}: test accuracy ${pct(result.testAccuracy)}${recipe.ema ? ` (EMA of the weights; last iterate ${pct(result.lastIterateTestAccuracy)})` : ''} at epsilon ${result.epsilon?.toFixed(3)}, delta ${result.delta}\n`
        + `sigma ${result.sigma.toFixed(4)}, q ${result.sampleRate.toFixed(5)}, ${result.steps} steps, ${result.trainExamples} training / ${result.testExamples} test examples, ${result.seconds.toFixed(0)} s\n`
        + `${result.statement}\n`);
    }));
}
