/** `rp-onnx attack gradient-leakage [MODEL]`: reconstruct training examples from their (DP) gradients. */
import type { Command } from 'commander';
import { action, printJson, parseIntOption, parseNumberOption } from './common.js';
import { loadModel } from '../src/graph/io.js';
import { writeFileAtomic, checkOutputPath } from '../src/fs-atomic.js';
import { defaultDataDir, loadDataDir } from '../src/train/data/index.js';
import { buildMlp, gradientLeakage, leakageOverSchedule, mlpFromModel, type LeakageReport, type ScheduleLeakageRow } from '../src/privacy/gradient-leakage.js';
import { NOISE_SCHEDULES, type NoiseScheduleName } from '../src/train/dp/noise-schedule.js';
import { Option } from 'commander';
import { encodePng, tileImages } from '../src/privacy/png.js';
import { RpOnnxError } from '../src/errors.js';

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
    .description('reconstruct training examples from the gradient of one training step (analytic attack on a first fully connected layer with bias; iDLG label rule), optionally after DP-SGD clipping and noise')
    .argument('[model]', 'ONNX MLP (Flatten, Gemm or MatMul + Add, Relu/Sigmoid/Tanh); default: a fresh MLP (--hidden, --model-seed)')
    .option('--data <dir>', 'dataset folder; default: the embedded Fashion-MNIST subset')
    .option('--split <split>', 'split of --data: train | test', 'train')
    .option('--index <i>', 'example to reconstruct', parseIntOption('--index'), 0)
    .option('--count <n>', 'attack N examples from --index on, each from its own gradient', parseIntOption('--count'), 1)
    .option('--hidden <n>', 'hidden width of the default MLP', parseIntOption('--hidden'), 256)
    .option('--model-seed <n>', 'weight seed of the default MLP', parseIntOption('--model-seed'), 0)
    .option('--dp', 'clip the gradient and add Gaussian noise first (DP-SGD on a batch of one)')
    .option('--max-grad-norm <c>', 'DP clipping bound C', parseNumberOption('--max-grad-norm'), 1)
    .option('--noise-multiplier <s>', 'DP noise multiplier sigma (noise std sigma * C)', parseNumberOption('--noise-multiplier'), 1)
    .option('--seed <n>', 'seed of the DP noise', parseIntOption('--seed'), 0)
    .addOption(new Option('--noise-schedule <name>', 'with --dp: attack the gradient at several steps of a dynamic schedule sigma_t (formulas: rp-onnx train --help), starting at --noise-multiplier').choices([...NOISE_SCHEDULES]))
    .option('--noise-end-ratio <r>', 'end sigma = r * start sigma', parseNumberOption('--noise-end-ratio'), 0.1)
    .option('--noise-period <steps>', 'period of staircase and cyclic schedules (default: T/4)', parseIntOption('--noise-period'))
    .option('--schedule-steps <T>', 'length T of the schedule in steps', parseIntOption('--schedule-steps'), 1000)
    .option('--top-rows <n>', 'use only the N first-layer rows with the largest bias gradient (default: all)', parseIntOption('--top-rows'))
    .option('--out <file.png>', 'save originals and reconstructions side by side as PNG')
    .option('--force', 'overwrite an existing --out file')
    .option('--json', 'print JSON on stdout')
    .action(action(async (modelPath: string | undefined, o: Record<string, unknown>) => {
      const split = o.split as string;
      if (split !== 'train' && split !== 'test') throw new RpOnnxError(`--split must be train or test, got '${split}'`);
      const count = o.count as number;
      if (!(count >= 1)) throw new RpOnnxError(`--count must be a positive integer, got ${count}`);
      if (o.out) checkOutputPath(o.out as string, { force: o.force === true, inputs: modelPath ? [modelPath] : [] });
      const ds = loadDataDir((o.data as string | undefined) ?? defaultDataDir(), { split });
      const model = modelPath ? loadModel(modelPath) : buildMlp(ds.shape, o.hidden as number, ds.classes, o.modelSeed as number);
      const mlp = mlpFromModel(model);
      const start = o.index as number;
      const indices = Array.from({ length: count }, (_, k) => start + k);
      if (o.noiseSchedule !== undefined) {
        if (!o.dp) throw new RpOnnxError('--noise-schedule needs --dp (the schedule sets the DP noise of each step)');
        if (o.out) throw new RpOnnxError('--out saves one reconstruction; it cannot be combined with --noise-schedule');
        const T = o.scheduleSteps as number;
        if (!(T >= 2)) throw new RpOnnxError(`--schedule-steps must be at least 2, got ${T}`);
        const sigma = o.noiseMultiplier as number;
        const schedule = { name: o.noiseSchedule as NoiseScheduleName, start: sigma, end: sigma * (o.noiseEndRatio as number), period: (o.noisePeriod as number | undefined) ?? Math.max(1, Math.floor(T / 4)), totalSteps: T };
        const steps = [...new Set([0, Math.floor(T / 4), Math.floor(T / 2), Math.floor((3 * T) / 4), T - 1])];
        const rows = leakageOverSchedule(mlp, ds, indices, o.maxGradNorm as number, schedule, steps, o.seed as number, o.topRows as number | undefined);
        if (o.json) printJson({ schedule, maxGradNorm: o.maxGradNorm, examples: indices.length, rows: rows.map((r) => ({ ...r, meanPsnr: Number.isFinite(r.meanPsnr) ? r.meanPsnr : String(r.meanPsnr) })) });
        else process.stdout.write(formatScheduleLeakage(rows, schedule.name, o.maxGradNorm as number));
        return;
      }
      const report = gradientLeakage(mlp, ds, indices, {
        dp: o.dp ? { maxGradNorm: o.maxGradNorm as number, noiseMultiplier: o.noiseMultiplier as number } : undefined,
        seed: o.seed as number, topRows: o.topRows as number | undefined,
      });
      if (o.out) {
        const [c] = ds.shape;
        if (c !== 1 && c !== 3) throw new RpOnnxError(`--out: examples with ${c} channels cannot be saved as PNG`);
        const rows = report.examples.map((e) => [e.original, e.reconstruction]);
        writeFileAtomic(o.out as string, encodePng(tileImages(rows, ds.shape, { zoom: 4, gap: 4 })));
      }
      const name = modelPath ?? `fresh MLP ${ds.shape.join('x')}-${o.hidden}-${ds.classes} (seed ${o.modelSeed})`;
      if (o.json) {
        const finite = (v: number) => (Number.isFinite(v) ? v : String(v));
        printJson({
          model: name, data: ds.name, dp: report.dp, labelAccuracy: report.labelAccuracy,
          meanMse: report.meanMse, meanPsnr: finite(report.meanPsnr), meanSsim: report.meanSsim,
          examples: report.examples.map(({ original: _o, reconstruction: _r, psnr, ...e }) => ({ ...e, psnr: finite(psnr) })),
          ...(o.out ? { out: o.out } : {}),
        });
      } else process.stdout.write(formatLeakage(report, name) + (o.out ? `saved ${o.out} (left: original, right: reconstruction)\n` : ''));
    }));
}
