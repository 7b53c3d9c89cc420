/** `rp-onnx experiment residual-perturbation`: the paper's experiment, as a table and a report. */
import type { Command } from 'commander';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { action, printJson, parseIntOption } from './common.js';
import { ProgressLine } from './progress.js';
import { checkOutputDir, writeFileAtomic } from '../src/fs-atomic.js';
import { loadDataDir, findFashionMnist, defaultDataDir } from '../src/train/data/index.js';
import { runResidualPerturbationExperiment, markdownTable, type ExperimentRow } from '../src/experiments/residual-perturbation.js';
import { toolVersion } from './tool-version.js';
import { RpOnnxError } from '../src/errors.js';

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
}
