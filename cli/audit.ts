/** `rp-onnx audit MODEL`: utility and membership-inference attacks on a (perturbed) model as deployed. */
import type { Command } from 'commander';
import { action, printJson, parseIntOption, parseNumberOption, UsageError } from './common.js';
import { loadModel } from '../src/graph/io.js';
import { writeFileAtomic, checkOutputPath } from '../src/fs-atomic.js';
import { loadDataDir, defaultDataDir, hasSplit, subset, fitSplitsToModel, type Dataset, type Layout } from '../src/train/data/index.js';
import { auditMembership, ATTACKS, THRESHOLD_ATTACK_NAMES, type AttackName, type AuditReport } from '../src/privacy/membership-inference.js';
import { renderAuditHtml } from '../src/privacy/report-html.js';
import { ProgressLine } from './progress.js';
import { RpOnnxError } from '../src/errors.js';

const num = (v: number, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : v > 0 ? 'inf' : '-inf');

export function formatAudit(r: AuditReport): string {
  const lines = [
    `members ${r.members}, non-members ${r.nonMembers}, passes averaged per query ${r.samples}`,
    `train accuracy ${(100 * r.trainAccuracy).toFixed(2)}%, test accuracy ${(100 * r.testAccuracy).toFixed(2)}%, generalization gap ${(100 * r.generalizationGap).toFixed(2)} points`,
    ...(r.reference ? [`lira-offline: ${r.reference.models} reference models, ${r.reference.variance} variance`] : []),
    '',
  ];
  const header = ['attack', 'AUC', 'advantage', 'bal.acc', 'TPR@1%FPR', 'TPR@0.1%FPR', `empirical eps [95% CI], delta ${r.delta}`];
  const rows = r.attacks.map((a) => [a.attack, num(a.auc), num(a.advantage), num(a.balancedAccuracy), num(a.tprAtFpr1), num(a.tprAtFpr01),
    `${num(a.epsilon.estimate, 2)} [${num(a.epsilon.lower95, 2)}, ${num(a.epsilon.upper95, 2)}]`]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [header, ...rows]) lines.push(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
  return `${lines.join('\n')}\n`;
}

/** JSON keeps non-finite bounds as the strings "Infinity" / "-Infinity" (JSON has no infinity). */
function jsonReport(r: AuditReport): unknown {
  const { memberLosses: _m, nonMemberLosses: _n, attacks, ...rest } = r;
  const finite = (v: number) => (Number.isFinite(v) ? v : String(v));
  return {
    ...rest,
    attacks: attacks.map(({ roc: _roc, epsilon, ...a }) => ({
      ...a,
      epsilon: { ...epsilon, estimate: finite(epsilon.estimate), lower95: finite(epsilon.lower95), upper95: finite(epsilon.upper95), threshold: finite(epsilon.threshold) },
    })),
  };
}

/** The train split of `dir` (or its only split); `prefer` says which one to take when both exist. */
function loadSplit(dir: string, prefer: 'train' | 'test', flag: string): Dataset {
  const other = prefer === 'train' ? 'test' : 'train';
  if (hasSplit(dir, prefer)) return loadDataDir(dir, { split: prefer });
  if (hasSplit(dir, other)) return loadDataDir(dir, { split: other });
  throw new RpOnnxError(`${flag} ${dir}: no train or test split found`);
}

export function register(program: Command): void {
  program
    .command('audit')
    .description('measure privacy: train/test accuracy and membership-inference attacks against the model as deployed (noisy passes for a perturbed model)')
    .argument('<model>', 'ONNX model (a perturbed model is queried with fresh noise, as deployed)')
    .option('--train-data <dir>', 'the data the model was trained on (members come from its train split); default: the embedded Fashion-MNIST subset')
    .option('--test-data <dir>', 'held-out data (non-members come from its test split); default: --train-data')
    .option('--limit-train <n>', 'the model was trained on the first N training examples: members come from those', parseIntOption('--limit-train'))
    .option('--members <n>', 'examples per side, members = non-members (default: as many as both sides have)', parseIntOption('--members'))
    .option('--samples <k>', 'noisy passes whose logits are averaged per query (as deployed)', parseIntOption('--samples'), 1)
    .option('--attacks <list>', `comma list of ${ATTACKS.join(', ')}`, THRESHOLD_ATTACK_NAMES.join(','))
    .option('--reference <models>', 'comma list of reference models trained WITHOUT any audited example (enables lira-offline)')
    .option('--delta <d>', 'delta of the empirical epsilon lower bound', parseNumberOption('--delta'), 1e-5)
    .option('--seed <n>', 'seed for choosing members and non-members', parseIntOption('--seed'), 0)
    .option('--noise-seed <n>', 'seed the model\'s noise (reproducible audits); default: fresh OS entropy, as deployed', parseIntOption('--noise-seed'))
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', parseIntOption('--threads'))
    .option('--layout <layout>', 'input layout of the model: nchw | nhwc (default: detected from its input shape)')
    .option('--report <file>', 'write a self-contained HTML report (ROC curves, loss histograms, metrics)')
    .option('--force', 'overwrite an existing report')
    .option('--json', 'print JSON on stdout')
    .action(action(async (modelPath: string, o: Record<string, unknown>) => {
      const reference = o.reference ? String(o.reference).split(',').filter(Boolean) : [];
      const attacks = String(o.attacks).split(',').filter(Boolean) as AttackName[];
      if (reference.length > 0 && !attacks.includes('lira-offline')) attacks.push('lira-offline');
      for (const a of attacks) if (!ATTACKS.includes(a)) throw new UsageError(`--attacks: unknown attack '${a}' (choose from ${ATTACKS.join(', ')})`);
      if (attacks.includes('lira-offline') && reference.length < 2) throw new UsageError('--attacks lira-offline needs --reference with at least 2 reference models');
      const samples = o.samples as number;
      if (!(samples >= 1)) throw new UsageError(`--samples must be a positive integer, got ${samples}`);
      const delta = o.delta as number;
      if (!(delta >= 0 && delta < 1)) throw new UsageError(`--delta must lie in [0, 1), got ${delta}`);
      if (o.members !== undefined && !((o.members as number) >= 1)) throw new UsageError(`--members must be a positive integer, got ${o.members}`);
      if (o.report) checkOutputPath(o.report as string, { force: o.force === true, inputs: [modelPath, ...reference], flag: '--report' });

      const model = loadModel(modelPath);
      const trainDir = (o.trainData as string | undefined) ?? defaultDataDir();
      const testDir = (o.testData as string | undefined) ?? trainDir;
      let members = loadSplit(trainDir, 'train', '--train-data');
      const limit = o.limitTrain as number | undefined;
      if (limit !== undefined) {
        if (!(limit >= 1)) throw new UsageError(`--limit-train must be a positive integer, got ${limit}`);
        members = subset(members, Array.from({ length: Math.min(members.count, limit) }, (_, i) => i), `${members.name}[0:${limit}]`);
      }
      let nonMembers = testDir === trainDir ? loadDataDir(testDir, { split: 'test' }) : loadSplit(testDir, 'test', '--test-data');
      ({ members, nonMembers } = fitSplitsToModel(model, { members, nonMembers }, { layout: o.layout as Layout | undefined }));
      const progress = new ProgressLine(true);
      const report = await auditMembership(model, {
        onProgress: (f) => progress.update(f, `audit: querying members and non-members ${(100 * f).toFixed(0)}%`),
        members, nonMembers, count: o.members as number | undefined, samples, attacks, delta,
        seed: o.seed as number, noiseSeed: (o.noiseSeed as number | undefined) ?? 'secure', threads: o.threads as number | undefined,
        ...(reference.length > 0 ? { reference: { models: reference.map((p) => loadModel(p)) } } : {}),
      });
      progress.done(`audit: ${report.members} members and ${report.nonMembers} non-members queried`);
      if (o.report) {
        writeFileAtomic(o.report as string, renderAuditHtml(report, `rp-onnx audit: ${modelPath}`, {
          model: modelPath, members: `${members.name} (${trainDir})`, 'non-members': `${nonMembers.name} (${testDir})`,
        }));
      }
      if (o.json) printJson(jsonReport(report));
      else process.stdout.write(formatAudit(report) + (o.report ? `report: ${o.report}\n` : ''));
    }));
}
