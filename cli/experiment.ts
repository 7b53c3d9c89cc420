/** `rp-onnx experiment residual-perturbation`: the paper's experiment, as a table and a report. */
import type { Command } from 'commander';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { action, printJson, parseIntOption, parseNumberOption, UsageError } from './common.js';
import { Flags } from './flags.js';
import { ProgressLine } from './progress.js';
import { checkOutputDir, writeFileAtomic } from '../src/fs-atomic.js';
import { loadDataDir, findFashionMnist, defaultDataDir } from '../src/data/index.js';
import { checkSettingFits, runResidualPerturbationExperiment, SETTINGS, SETTING_NAMES, type Setting, type SettingName } from '../src/experiments/residual-perturbation.js';
import { experimentHtml, markdownTables, READING_NOTE, settingDescription } from '../src/experiments/residual-perturbation-report.js';
import { toolVersion } from './tool-version.js';
import { RpOnnxError } from '../src/errors.js';
import { runDpSgdExperiment, resolveRecipe, DP_SGD_MODELS, DP_SGD_RECIPES, type DpSgdModel } from '../src/experiments/dp-sgd.js';

const describeSettings = (s: Readonly<Record<SettingName, Setting>>) => SETTING_NAMES.map((n) => settingDescription(s[n])).join('; ');

/**
 * Measured here (2 cores shared with other work, load 4-5): --quick took 11.8 minutes on 1 thread
 * (docs/experiment-residual-perturbation-quick.md). Full size, from the same timings: a ResNet-8
 * trains at about 370 example passes per second on 1 thread (an overfit model 30,000 passes,
 * ~85 s; a generalizing one 9,000, measured 16 s; DP-SGD ~1.7 times that), and with 4 shadows
 * each setting trains about 100 such models (ensemble members counted, a shared model once):
 * ~172 minutes of training, ~86 with 2 workers, plus ~12 minutes of queries by the coordinator.
 */
const QUICK_ESTIMATE = 'about 12 minutes on 1 thread here';
const FULL_ESTIMATE = '91 minutes measured with 2 workers here (`rp-onnx worker --queue URL --concurrency 2` and --queue URL --threads 1, on 2 cores shared with other work), about 185 estimated in this process; the committed table and its reading: docs/experiment-residual-perturbation.md';

const RP_DESCRIPTION = `The residual-perturbation paper's comparison re-run with LiRA-online and RMIA: ResNet-8 on Fashion-MNIST, gamma sweep for strategies I (0.5, 1, 2) and II (0.25, 0.5, 1), En5ResNet8 ensembles (I gamma 1, II gamma 0.5), DP-SGD (tuned optimiser, GroupNorm, a quarter of the members per step, PRV accountant) at epsilon 1, 3, 8, in two settings (${describeSettings(SETTINGS.full)}). Per row: test and train accuracy, LiRA-online AUC and TPR at 1% and 0.1% FPR, RMIA AUC, loss-attack AUC, from K shadow models trained with the row's own recipe and defence on random halves of members + non-members; for DP rows the accountant's epsilon and the one-run lower bound (Steinke et al. 2023); training time. Writes a markdown table and an HTML report (accuracy vs TPR at 1% FPR, LiRA-online ROC curves). Full size, default --shadows 4: ${FULL_ESTIMATE}.`;

const DP_SGD_SCHEDULES = ['constant', 'cosine'] as const;

/** `experiment dp-sgd`'s flags; the recipe's own ranges are checked by resolveRecipe. */
function dpSgdFlags(f: Flags) {
  const o = {
    data: f.path('data', { required: true }), targetEpsilon: f.number('targetEpsilon', { required: true }),
    model: f.choice('model', DP_SGD_MODELS, { required: true, how: 'one of' }), epochs: f.int('epochs'), batchSize: f.int('batchSize'),
    physicalBatchSize: f.int('physicalBatchSize'), lr: f.number('lr'), momentum: f.number('momentum'),
    schedule: f.choice('schedule', DP_SGD_SCHEDULES), maxGradNorm: f.number('maxGradNorm'), emaDecay: f.number('emaDecay'),
    ema: f.bool('ema'), limit: f.int('limit', { min: 1 }), seed: f.int('seed'), threads: f.int('threads', { min: 1 }), json: f.bool('json'),
  };
  if (!o.ema && o.emaDecay !== undefined) throw new UsageError('--ema-decay and --no-ema contradict each other');
  return o;
}

export function register(program: Command): void {
  const exp = program.command('experiment').description('reproduce the experiments of the seed papers');
  exp
    .command('residual-perturbation')
    .description(RP_DESCRIPTION)
    .option('--data <dir>', 'Fashion-MNIST (IDX) folder (default: the full set if found, else the embedded subset)')
    .option('--quick', `a small version (${describeSettings(SETTINGS.quick)}; baseline, strategy I gamma 1 and En3 of it, strategy II gamma 0.5, DP-SGD epsilon 3; 4 shadows): ${QUICK_ESTIMATE}`)
    .option('--settings <list>', `comma list of ${SETTING_NAMES.join(', ')}`, SETTING_NAMES.join(','))
    .option('--shadows <k>', 'shadow models per row, each on a random half of members + non-members (default 4: every example IN for 2 and OUT for 2)', parseIntOption('--shadows'))
    .option('--canaries <m>', 'one-run audit canaries of each DP-SGD model (default: a tenth of the members, at least 20)', parseIntOption('--canaries'))
    .option('--out-dir <dir>', 'where the markdown table and HTML report go (created if missing; the committed results: --out-dir docs --force)', join('rp-experiments', 'residual-perturbation'))
    .option('--force', 'replace the table and report of an earlier run in --out-dir')
    .option('--seed <n>', 'seed of initialisation, shuffling and the shadows\' halves', parseIntOption('--seed'), 0)
    .option('--threads <n>', 'onnxruntime threads', parseIntOption('--threads'))
    .option('--queue <url>', 'make every model (targets, then shadows) a job on BullMQ over Redis (redis://HOST:PORT), trained by `rp-onnx worker --queue URL` processes that can read --data at the same path (default: one model at a time in this process)')
    .option('--json', 'print JSON (every figure of every row, LiRA-online\'s ROC included)')
    .action(action(async (_o: unknown, cmd: Command) => {
      const f = new Flags(cmd);
      const o = {
        data: f.path('data'), quick: f.bool('quick'), settings: f.list('settings') ?? [], shadows: f.int('shadows', { min: 2 }) ?? 4,
        canaries: f.int('canaries', { min: 2 }),
        outDir: f.path('outDir', { required: true }), force: f.bool('force'), seed: f.int('seed', { required: true }), threads: f.int('threads', { min: 1 }),
        queue: f.string('queue'), json: f.bool('json'),
      };
      for (const s of o.settings) if (!(SETTING_NAMES as readonly string[]).includes(s)) throw f.error('settings', `must list ${SETTING_NAMES.join(' and/or ')}, got '${s}'`);
      if (o.settings.length === 0) throw f.error('settings', `must list ${SETTING_NAMES.join(' and/or ')}`);
      const q = o.quick;
      const sizes = q ? SETTINGS.quick : SETTINGS.full;
      const settings = SETTING_NAMES.filter((n) => o.settings.includes(n)).map((n) => sizes[n]);
      const name = q ? 'experiment-residual-perturbation-quick' : 'experiment-residual-perturbation';
      const files = [`${name}.md`, `${name}.html`];
      // Before hours of training, not after them.
      checkOutputDir(o.outDir, files, { force: o.force, flag: '--out-dir' });
      const dir = o.data ?? findFashionMnist() ?? defaultDataDir();
      const train = loadDataDir(dir, { split: 'train' });
      const test = loadDataDir(dir, { split: 'test' });
      if (train.shape.join('x') !== '1x28x28') throw new RpOnnxError(`${dir}: the experiment needs 1x28x28 images (Fashion-MNIST), got ${train.shape.join('x')}`);
      for (const s of settings) checkSettingFits(s, train, dir);
      // Connect before any work: a wrong --queue fails at once.
      const runner = o.queue ? await (await import('../src/jobs/bullmq.js')).QueueRunner.connect(o.queue) : undefined;
      const progress = new ProgressLine(true);
      const started = Date.now();
      const rows = await runResidualPerturbationExperiment({
        ...(runner ? { jobs: { runner, data: dir } } : {}),
        train, test, settings, shadows: o.shadows, canaries: o.canaries,
        gammasI: q ? [1] : [0.5, 1, 2], gammasII: q ? [0.5] : [0.25, 0.5, 1], ensemble: q ? 3 : 5,
        ensembleGamma: q ? { I: 1 } : { I: 1, II: 0.5 }, epsilons: q ? [3] : [1, 3, 8], seed: o.seed, threads: o.threads,
        toolVersion: toolVersion(),
        onStage: (s) => progress.done(s),
        onProgress: (x) => progress.update(x, `experiment: models ${(100 * x).toFixed(1)}% trained, ${((Date.now() - started) / 60000).toFixed(1)} min`),
        onRow: (r) => progress.done(`  ${r.setting}, ${r.method}: test ${(100 * r.testAccuracy).toFixed(2)}%, LiRA-online AUC ${r.attacks['lira-online'].auc.toFixed(3)}, RMIA AUC ${r.attacks.rmia.auc.toFixed(3)}, loss AUC ${r.attacks.loss.auc.toFixed(3)}, ${r.trainSeconds.toFixed(0)} s`),
      }).finally(() => runner?.close());
      const defaults = o.settings.length === SETTING_NAMES.length && SETTING_NAMES.every((n, i) => o.settings[i] === n);
      const command = `rp-onnx experiment residual-perturbation${o.data ? ` --data ${o.data}` : ''}${q ? ' --quick' : ''}${defaults ? '' : ` --settings ${settings.map((s) => s.name).join(',')}`}${f.given('shadows') ? ` --shadows ${o.shadows}` : ''}${o.canaries ? ` --canaries ${o.canaries}` : ''}${o.seed ? ` --seed ${o.seed}` : ''}${o.threads ? ` --threads ${o.threads}` : ''}`;
      checkOutputDir(o.outDir, files, { force: o.force, flag: '--out-dir' });
      mkdirSync(o.outDir, { recursive: true });
      const minutes = (Date.now() - started) / 60000;
      const md = `# Residual perturbation vs DP-SGD (Fashion-MNIST, ResNet-8): membership inference\n\nMade by \`${command}\` (data: ${dir}; ${train.count} training / ${test.count} test images; ${o.shadows} shadow models per row; ${minutes.toFixed(1)} minutes on this machine).\n\n${markdownTables(rows, settings)}\n\n${READING_NOTE}\n`;
      writeFileAtomic(join(o.outDir, `${name}.md`), md);
      writeFileAtomic(join(o.outDir, `${name}.html`), experimentHtml(rows, settings, { command, data: dir, minutes, shadows: o.shadows }));
      if (o.json) printJson({ command, minutes, shadows: o.shadows, settings, rows });
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
    .action(action(async (_o: unknown, command: Command) => {
      const o = dpSgdFlags(new Flags(command));
      const model = o.model;
      const base = DP_SGD_RECIPES[model];
      const recipe = resolveRecipe(model, {
        epochs: o.epochs, batchSize: o.batchSize, physicalBatchSize: o.physicalBatchSize, lr: o.lr, momentum: o.momentum,
        schedule: o.schedule, maxGradNorm: o.maxGradNorm, seed: o.seed,
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
