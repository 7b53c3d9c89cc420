/** `rp-onnx attack gradient-leakage [MODEL]`: reconstruct training examples from their (DP) gradients. */
import type { Command } from 'commander';
import { action, printJson, parseIntOption, parseNumberOption, UsageError } from './common.js';
import { Flags } from './flags.js';
import { loadModel } from '../src/graph/io.js';
import { writeFileAtomic, checkOutputPath } from '../src/fs-atomic.js';
import { defaultDataDir, loadDataDir } from '../src/data/index.js';
import { buildMlp, gradientLeakage, leakageOverSchedule, mlpFromModel, type LeakageReport, type ScheduleLeakageRow } from '../src/audit/gradient-leakage.js';
import { NOISE_SCHEDULES } from '../src/train/dp/noise-schedule.js';
import { Option } from 'commander';
import { encodePng } from '../src/audit/png.js';
import { RpOnnxError } from '../src/errors.js';
import { buildLeNet } from '../models/lenet.js';
import { GradientInverter, gradientInversion, inversionOverSchedule, INVERSION_DEFAULTS, INVERSION_INITS, INVERSION_METHODS, type InversionMethod, type InversionReport, type ScheduleInversionRow } from '../src/audit/gradient-inversion.js';
import { labelledGrid } from '../src/audit/gradient-inversion-grid.js';
import { LR_SCHEDULES } from '../src/audit/gradient-inversion-optim.js';
import type { Model } from '../src/graph/ir.js';
import type { Dataset } from '../src/data/index.js';

const METHODS = [...INVERSION_METHODS, 'analytic'] as const;
type Method = (typeof METHODS)[number];
const COLUMN_LABEL: Record<Method, string> = { dlg: 'DLG', idlg: 'iDLG', 'inverting-gradients': 'IG', analytic: 'analytic' };

function parseMethods(value: string): Method[] {
  const list = value.split(',').map((m) => m.trim()).filter(Boolean);
  for (const m of list) if (!(METHODS as readonly string[]).includes(m)) throw new UsageError(`--method must be one or more (comma-separated) of ${METHODS.join(', ')}, got '${m}'`);
  if (list.length === 0) throw new UsageError(`--method must name at least one of ${METHODS.join(', ')}`);
  return [...new Set(list)] as Method[];
}

export function formatInversion(r: InversionReport, model: string): string {
  const s = r.settings;
  const lines = [
    `${r.method} on ${model}; ${r.dp ? `DP: clip ${r.dp.maxGradNorm}, noise multiplier ${r.dp.noiseMultiplier}` : 'no DP (the plain gradient)'}; ${s.iterations} iterations${r.method === 'inverting-gradients' ? `, ${s.signed ? 'signed ' : ''}Adam lr ${s.lr} (${s.lrSchedule}), TV ${s.tvWeight}, ${s.restarts} restart(s)` : ''}, init ${s.init}`,
    'index  label  inferred  grad norm  MSE       PSNR         SSIM    grad cos dist  seconds',
  ];
  for (const e of r.examples) {
    lines.push(`${String(e.index).padEnd(5)}  ${String(e.label).padEnd(5)}  ${String(e.inferredLabel).padEnd(8)}  ${e.gradientNorm.toFixed(3).padEnd(9)}  ${e.mse.toExponential(2).padEnd(8)}  ${db(e.psnr).padEnd(11)}  ${e.ssim === null ? 'n/a   ' : e.ssim.toFixed(4)}  ${e.gradientCosineDistance.toExponential(2).padEnd(13)}  ${e.seconds.toFixed(1)}`);
  }
  if (r.examples.length > 1) lines.push(`mean: MSE ${r.meanMse.toExponential(2)}, PSNR ${db(r.meanPsnr)}, SSIM ${r.meanSsim === null ? 'n/a' : r.meanSsim.toFixed(4)}, gradient cosine distance ${r.meanGradientCosineDistance.toExponential(2)}`);
  lines.push(`label accuracy ${(100 * r.labelAccuracy).toFixed(1)}%; ${r.secondsPerAttack.toFixed(1)} s per attack`);
  return `${lines.join('\n')}\n`;
}

function formatScheduleInversion(method: string, rows: readonly ScheduleInversionRow[], schedule: string, maxGradNorm: number): string {
  const lines = [
    `${method} along the noise schedule '${schedule}' (clip ${maxGradNorm}; same examples and weights at every step)`,
    'step     sigma_t   PSNR         SSIM     MSE       label acc  grad cos dist',
  ];
  for (const r of rows) {
    lines.push(`${String(r.step).padEnd(7)}  ${r.noiseMultiplier.toFixed(4).padEnd(8)}  ${db(r.meanPsnr).padEnd(11)}  ${r.meanSsim === null ? 'n/a     ' : r.meanSsim.toFixed(4).padEnd(8)} ${r.meanMse.toExponential(2).padEnd(8)}  ${`${(100 * r.labelAccuracy).toFixed(1)}%`.padEnd(9)}  ${r.meanGradientCosineDistance.toExponential(2)}`);
  }
  return `${lines.join('\n')}\n`;
}

const finite = (v: number) => (Number.isFinite(v) ? v : String(v));

function inversionJson(r: InversionReport): Record<string, unknown> {
  return {
    method: r.method, settings: r.settings, dp: r.dp, labelAccuracy: r.labelAccuracy, meanMse: r.meanMse, meanPsnr: finite(r.meanPsnr), meanSsim: r.meanSsim,
    meanGradientCosineDistance: r.meanGradientCosineDistance, secondsPerAttack: r.secondsPerAttack,
    examples: r.examples.map(({ original: _o, reconstruction: _r, psnr, ...e }) => ({ ...e, psnr: finite(psnr) })),
  };
}

const db = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)} dB` : 'inf (exact)');

export function formatLeakage(r: LeakageReport, model: string): string {
  const lines = [
    `model ${model}; ${r.dp ? `DP: clip ${r.dp.maxGradNorm}, noise multiplier ${r.dp.noiseMultiplier}` : 'no DP (the plain gradient)'}`,
    'index  label  inferred  grad norm  MSE       PSNR         SSIM',
  ];
  for (const e of r.examples) {
    lines.push(`${String(e.index).padEnd(5)}  ${String(e.label).padEnd(5)}  ${String(e.inferredLabel).padEnd(8)}  ${e.gradientNorm.toFixed(3).padEnd(9)}  ${e.mse.toExponential(2).padEnd(8)}  ${db(e.psnr).padEnd(11)}  ${e.ssim === null ? 'n/a' : e.ssim.toFixed(4)}`);
  }
  if (r.examples.length > 1) lines.push(`mean: MSE ${r.meanMse.toExponential(2)}, PSNR ${db(r.meanPsnr)}, SSIM ${r.meanSsim === null ? 'n/a' : r.meanSsim.toFixed(4)}`);
  lines.push(`label accuracy ${(100 * r.labelAccuracy).toFixed(1)}%`);
  return `${lines.join('\n')}\n`;
}

export function formatScheduleLeakage(rows: readonly ScheduleLeakageRow[], schedule: string, maxGradNorm: number): string {
  const lines = [
    `gradient leakage along the noise schedule '${schedule}' (clip ${maxGradNorm}; same examples and weights at every step)`,
    'step     sigma_t   PSNR         SSIM     MSE       label acc',
  ];
  for (const r of rows) {
    lines.push(`${String(r.step).padEnd(7)}  ${r.noiseMultiplier.toFixed(4).padEnd(8)}  ${db(r.meanPsnr).padEnd(11)}  ${r.meanSsim === null ? 'n/a     ' : r.meanSsim.toFixed(4).padEnd(8)} ${r.meanMse.toExponential(2).padEnd(8)}  ${(100 * r.labelAccuracy).toFixed(1)}%`);
  }
  return `${lines.join('\n')}\n`;
}

export function register(program: Command): void {
  const attack = program.command('attack').description('privacy attacks against models and their training updates');
  attack
    .command('gradient-leakage')
    .description('reconstruct training examples from the gradient of one training step (batch of one), optionally after DP-SGD clipping and noise. Methods: dlg (Zhu et al. 2019: L2 gradient matching over the input and a soft label, L-BFGS), idlg (Zhao et al. 2020: label from the sign of the last layer\'s gradient, then L2 matching), inverting-gradients (Geiping et al. 2020: cosine matching over all parameters + optional total variation, Adam with a cosine-annealed learning rate (or --signed steps and --lr-schedule step, the paper\'s setting), input clamped to [0, 1], the best iterate and the best of --restarts kept; label by iDLG\'s rule), analytic (closed form from a first fully connected layer with bias; MLPs). The optimization methods work on any ONNX classifier our autodiff differentiates (conv nets, ResNets, MLPs): the gradient of the matching loss is our autodiff applied to its own gradient graph')
    .argument('[model]', 'ONNX classifier (logits output); default: a fresh MLP (--hidden, --model-seed) for analytic, DLG\'s sigmoid LeNet (rp-onnx models create lenet, --model-seed) otherwise')
    .option('--data <dir>', 'dataset folder; default: the embedded Fashion-MNIST subset')
    .option('--split <split>', 'split of --data: train | test', 'train')
    .option('--index <i>', 'example to reconstruct', parseIntOption('--index'), 0)
    .option('--count <n>', 'attack N examples from --index on, each from its own gradient', parseIntOption('--count'), 1)
    .option('--method <list>', `attack(s), comma-separated: ${METHODS.join(', ')}`, 'analytic')
    .option('--iterations <n>', `optimizer iterations (default: dlg/idlg ${INVERSION_DEFAULTS.dlg.iterations} L-BFGS iterations, stopping early at convergence; inverting-gradients ${INVERSION_DEFAULTS['inverting-gradients'].iterations} Adam steps)`, parseIntOption('--iterations'))
    .option('--lr <rate>', `Adam learning rate of inverting-gradients (default ${INVERSION_DEFAULTS['inverting-gradients'].lr})`, parseNumberOption('--lr'))
    .option('--tv-weight <w>', `total-variation weight of inverting-gradients (default ${INVERSION_DEFAULTS['inverting-gradients'].tvWeight}: on small images with an exact gradient any weight that matters caps PSNR)`, parseNumberOption('--tv-weight'))
    .option('--signed', 'inverting-gradients: Adam on the sign of the input gradient (Geiping et al.); default: on the gradient itself')
    .addOption(new Option('--lr-schedule <kind>', `inverting-gradients: learning rate over the iterations: cosine annealing to 0, step (/10 at 3/8, 5/8, 7/8) or constant (default ${INVERSION_DEFAULTS['inverting-gradients'].lrSchedule})`).choices([...LR_SCHEDULES]))
    .option('--restarts <n>', 'independent runs, the best by matching loss kept (default 1)', parseIntOption('--restarts'))
    .addOption(new Option('--init <kind>', 'initial dummy input: randn (the papers), uniform in [0, 1], or flat grey 0.5').choices([...INVERSION_INITS]))
    .option('--attack-seed <n>', 'seed of the attacker\'s initialization', parseIntOption('--attack-seed'), 1)
    .option('--threads <n>', 'onnxruntime threads of the optimization attacks', parseIntOption('--threads'))
    .option('--progress-every <n>', 'iterations between progress lines on stderr (0: none)', parseIntOption('--progress-every'), 100)
    .option('--hidden <n>', 'hidden width of the default MLP', parseIntOption('--hidden'), 256)
    .option('--model-seed <n>', 'weight seed of the default model', parseIntOption('--model-seed'), 0)
    .option('--dp', 'clip the gradient and add Gaussian noise first (DP-SGD on a batch of one)')
    .option('--max-grad-norm <c>', 'DP clipping bound C', parseNumberOption('--max-grad-norm'), 1)
    .option('--noise-multiplier <s>', 'DP noise multiplier sigma (noise std sigma * C)', parseNumberOption('--noise-multiplier'), 1)
    .option('--seed <n>', 'seed of the DP noise (a seeded experiment, not a private release)', parseIntOption('--seed'), 0)
    .addOption(new Option('--noise-schedule <name>', 'with --dp: attack the gradient at several steps of a dynamic schedule sigma_t (formulas: rp-onnx train --help), starting at --noise-multiplier').choices([...NOISE_SCHEDULES]))
    .option('--noise-end-ratio <r>', 'end sigma = r * start sigma', parseNumberOption('--noise-end-ratio'), 0.1)
    .option('--noise-period <steps>', 'period of staircase and cyclic schedules (default: T/4)', parseIntOption('--noise-period'))
    .option('--schedule-steps <T>', 'length T of the schedule in steps', parseIntOption('--schedule-steps'), 1000)
    .option('--top-rows <n>', 'analytic: use only the N first-layer rows with the largest bias gradient (default: all)', parseIntOption('--top-rows'))
    .option('--out <file.png>', 'save a grid: one row per example, columns original | reconstruction per method')
    .option('--force', 'overwrite an existing --out file')
    .option('--json', 'print JSON on stdout')
    .action(action(async (modelPath: string | undefined, _o: unknown, cmd: Command) => {
      const o = attackFlags(cmd);
      const { split, count } = o;
      const methods = parseMethods(o.method);
      const optimization = methods.filter((m): m is InversionMethod => m !== 'analytic');
      if (o.out) checkOutputPath(o.out, { force: o.force, inputs: modelPath ? [modelPath] : [] });
      const ds = loadDataDir(o.data ?? defaultDataDir(), { split });
      const start = o.index;
      const indices = Array.from({ length: count }, (_, k) => start + k);
      const dp = o.dp ? { maxGradNorm: o.maxGradNorm, noiseMultiplier: o.noiseMultiplier } : undefined;
      const analyticOnly = optimization.length === 0;
      const model: Model = modelPath
        ? loadModel(modelPath)
        : analyticOnly
          ? buildMlp(ds.shape, o.hidden, ds.classes, o.modelSeed)
          : buildLeNet({ inChannels: ds.shape[0], imageSize: ds.shape[1], classes: ds.classes, seed: o.modelSeed });
      const name = modelPath ?? (analyticOnly ? `fresh MLP ${ds.shape.join('x')}-${o.hidden}-${ds.classes} (seed ${o.modelSeed})` : `fresh sigmoid LeNet ${ds.shape.join('x')} (seed ${o.modelSeed})`);
      const progressEvery = o.progressEvery;
      const settings = {
        iterations: o.iterations, lr: o.lr, tvWeight: o.tvWeight,
        restarts: o.restarts, init: o.init,
        signed: o.signed ? true : undefined, lrSchedule: o.lrSchedule,
        attackSeed: o.attackSeed, threads: o.threads, seed: o.seed,
        ...(progressEvery > 0 ? { onProgress: (line: string) => process.stderr.write(`${line}\n`), progressEvery } : {}),
      };

      if (o.noiseSchedule !== undefined) {
        const noiseSchedule = o.noiseSchedule;
        if (!o.dp) throw new UsageError('--noise-schedule needs --dp (the schedule sets the DP noise of each step)');
        if (o.out) throw new UsageError('--out saves one reconstruction; it cannot be combined with --noise-schedule');
        const T = o.scheduleSteps;
        const sigma = o.noiseMultiplier;
        const schedule = { name: noiseSchedule, start: sigma, end: sigma * o.noiseEndRatio, period: o.noisePeriod ?? Math.max(1, Math.floor(T / 4)), totalSteps: T };
        const steps = [...new Set([0, Math.floor(T / 4), Math.floor(T / 2), Math.floor((3 * T) / 4), T - 1])];
        const results: { method: Method; rows: (ScheduleLeakageRow | ScheduleInversionRow)[] }[] = [];
        for (const method of methods) {
          const rows = method === 'analytic'
            ? leakageOverSchedule(mlpFromModel(model), ds, indices, o.maxGradNorm, schedule, steps, o.seed, o.topRows)
            : await inversionOverSchedule(model, ds, indices, o.maxGradNorm, schedule, steps, { method, ...settings });
          results.push({ method, rows });
        }
        const jsonRows = (rows: (ScheduleLeakageRow | ScheduleInversionRow)[]) => rows.map((r) => ({ ...r, meanPsnr: finite(r.meanPsnr) }));
        if (o.json) {
          if (analyticOnly) printJson({ schedule, maxGradNorm: o.maxGradNorm, examples: indices.length, rows: jsonRows(results[0]!.rows) });
          else printJson({ model: name, schedule, maxGradNorm: o.maxGradNorm, examples: indices.length, methods: results.map((r) => ({ method: r.method, rows: jsonRows(r.rows) })) });
        } else {
          for (const r of results) {
            process.stdout.write(r.method === 'analytic'
              ? formatScheduleLeakage(r.rows as ScheduleLeakageRow[], schedule.name, o.maxGradNorm)
              : formatScheduleInversion(r.method, r.rows as ScheduleInversionRow[], schedule.name, o.maxGradNorm));
          }
        }
        return;
      }

      const analytic = methods.includes('analytic')
        ? gradientLeakage(mlpFromModel(model), ds, indices, { dp, seed: o.seed, topRows: o.topRows })
        : undefined;
      const reports: InversionReport[] = [];
      if (optimization.length > 0) {
        const inv = await GradientInverter.create(model, { threads: settings.threads, methods: optimization });
        try {
          for (const method of optimization) reports.push(await gradientInversion(inv, ds, indices, { method, dp, ...settings }));
        } finally {
          await inv.release();
        }
      }
      if (o.out) saveGrid(o.out, ds, methods, analytic, reports);
      const saved = o.out ? `saved ${o.out} (columns: original | ${methods.map((m) => COLUMN_LABEL[m]).join(' | ')})\n` : '';
      if (o.json) {
        const analyticJson = analytic && {
          model: name, data: ds.name, dp: analytic.dp, labelAccuracy: analytic.labelAccuracy,
          meanMse: analytic.meanMse, meanPsnr: finite(analytic.meanPsnr), meanSsim: analytic.meanSsim,
          examples: analytic.examples.map(({ original: _o, reconstruction: _r, psnr, ...e }) => ({ ...e, psnr: finite(psnr) })),
        };
        if (methods.length === 1 && analyticJson) printJson({ ...analyticJson, ...(o.out ? { out: o.out } : {}) });
        else if (methods.length === 1) printJson({ model: name, data: ds.name, ...inversionJson(reports[0]!), ...(o.out ? { out: o.out } : {}) });
        else {
          printJson({
            model: name, data: ds.name, dp: dp ?? null,
            methods: methods.map((m) => (m === 'analytic' ? { method: 'analytic', ...analyticJson, model: undefined, data: undefined } : inversionJson(reports.find((r) => r.method === m)!))),
            ...(o.out ? { out: o.out } : {}),
          });
        }
      } else {
        let text = '';
        for (const m of methods) text += m === 'analytic' ? formatLeakage(analytic!, name) : formatInversion(reports.find((r) => r.method === m)!, name);
        process.stdout.write(text + saved);
      }
    }));
}

function saveGrid(out: string, ds: Dataset, methods: readonly Method[], analytic: LeakageReport | undefined, reports: readonly InversionReport[]): void {
  const [c] = ds.shape;
  if (c !== 1 && c !== 3) throw new RpOnnxError(`--out: examples with ${c} channels cannot be saved as PNG`);
  const columns = methods.map((m) => (m === 'analytic' ? analytic!.examples : reports.find((r) => r.method === m)!.examples));
  const rows = columns[0]!.map((e, k) => [e.original, ...columns.map((col) => col[k]!.reconstruction)]);
  writeFileAtomic(out, encodePng(labelledGrid(rows, ['original', ...methods.map((m) => COLUMN_LABEL[m])], ds.shape, { zoom: 4, gap: 4 })));
}

/** `attack gradient-leakage`'s flags, read once and typed (cli/flags.ts). */
function attackFlags(cmd: Command) {
  const f = new Flags(cmd);
  return {
    data: f.path('data'), split: f.choice('split', ['train', 'test'] as const, { required: true }),
    index: f.int('index', { min: 0, required: true }), count: f.int('count', { min: 1, required: true }),
    method: f.string('method', { required: true }),
    iterations: f.int('iterations', { min: 1 }), lr: f.number('lr', { above: 0 }), tvWeight: f.number('tvWeight', { min: 0 }),
    signed: f.bool('signed'), lrSchedule: f.choice('lrSchedule', LR_SCHEDULES), restarts: f.int('restarts', { min: 1 }),
    init: f.choice('init', INVERSION_INITS), attackSeed: f.int('attackSeed', { required: true }), threads: f.int('threads', { min: 1 }),
    progressEvery: f.int('progressEvery', { min: 0, required: true }), hidden: f.int('hidden', { min: 1, required: true }),
    modelSeed: f.int('modelSeed', { required: true }), dp: f.bool('dp'),
    maxGradNorm: f.number('maxGradNorm', { above: 0, required: true }), noiseMultiplier: f.number('noiseMultiplier', { min: 0, required: true }),
    seed: f.int('seed', { required: true }), noiseSchedule: f.choice('noiseSchedule', NOISE_SCHEDULES),
    noiseEndRatio: f.number('noiseEndRatio', { required: true }), noisePeriod: f.int('noisePeriod', { min: 1 }),
    scheduleSteps: f.int('scheduleSteps', { min: 2, says: 'at least 2', required: true }), topRows: f.int('topRows', { min: 1 }),
    out: f.path('out'), force: f.bool('force'), json: f.bool('json'),
  };
}
