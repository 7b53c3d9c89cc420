/** `rp-onnx demo`: the main job on the embedded data, end to end, in a few minutes. */
import type { Command } from 'commander';
import { action, printJson, parseIntOption, parseNumberOption } from './common.js';
import { Flags } from './flags.js';
import { ProgressLine } from './progress.js';
import { runDemo } from '../src/experiments/demo.js';
import { toolVersion } from './tool-version.js';
import { STRATEGIES } from '../src/passes/perturb.js';

export function register(program: Command): void {
  program
    .command('demo')
    .description('build ResNet-8, train it and a residual-perturbed copy on the embedded Fashion-MNIST subset, audit both with membership-inference attacks, print the comparison')
    .option('--out-dir <dir>', 'where the models and HTML reports go (created if missing)', 'rp-demo')
    .option('--force', 'replace the files of an earlier run in --out-dir')
    .option('--train-examples <n>', 'training examples (members of the audit)', parseIntOption('--train-examples'), 1000)
    .option('--epochs <n>', 'training epochs', parseIntOption('--epochs'), 15)
    .option('--gamma <g>', 'perturbation noise level', parseNumberOption('--gamma'), 1)
    .option('--strategy <s>', 'I (additive) or II (multiplicative)', 'I')
    .option('--seed <n>', 'seed for initialisation and shuffling', parseIntOption('--seed'), 0)
    .option('--threads <n>', 'onnxruntime threads', parseIntOption('--threads'))
    .option('--json', 'print JSON')
    .action(action(async (_o: unknown, command: Command) => {
      const f = new Flags(command);
      const o = {
        outDir: f.path('outDir', { required: true }), force: f.bool('force'), trainExamples: f.int('trainExamples', { min: 1, required: true }),
        epochs: f.int('epochs', { min: 1, required: true }), gamma: f.number('gamma', { min: 0, required: true }),
        strategy: f.choice('strategy', STRATEGIES, { required: true }), seed: f.int('seed', { required: true }), threads: f.int('threads', { min: 1 }),
        json: f.bool('json'),
      };
      const progress = new ProgressLine(true);
      const r = await runDemo({
        ...o, strategy: o.strategy, toolVersion: toolVersion(),
        onStage: (s) => progress.done(s),
        // The bar and its ETA cover the whole demo; each epoch also leaves a line.
        onProgress: (fraction, what) => progress.update(fraction, `demo ${(100 * fraction).toFixed(0)}%: ${what}`),
        onEpoch: (label, epoch, acc, s) => progress.done(`${label}: epoch ${epoch}/${o.epochs}, test accuracy ${acc === null ? '-' : (100 * acc).toFixed(1)}%, ${s.toFixed(1)} s`),
      });
      if (o.json) {
        printJson(r);
        return;
      }
      const lines = ['', 'model                  test acc  train acc  MIA AUC (loss)  MIA AUC (best)  advantage  train time'];
      for (const x of r.rows) {
        lines.push(`${x.model.padEnd(22)} ${(100 * x.testAccuracy).toFixed(1).padStart(7)}%  ${(100 * x.trainAccuracy).toFixed(1).padStart(8)}%  ${x.lossAuc.toFixed(3).padStart(14)}  ${x.bestAuc.toFixed(3).padStart(14)}  ${x.advantage.toFixed(3).padStart(9)}  ${x.trainSeconds.toFixed(0).padStart(8)} s`);
      }
      lines.push('', `models: ${r.files.baseline}, ${r.files.perturbed}`, `reports: ${r.files.baselineReport}, ${r.files.report}`, `total ${r.seconds.toFixed(0)} s`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }));
}
