/** `rp-onnx audit MODEL`: utility and membership-inference attacks on a (perturbed) model as deployed. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { action, printJson, parseIntOption, parseNumberOption, UsageError } from './common.js';
import { ProgressLine } from './progress.js';
import { loadModel } from '../src/graph/io.js';
import { writeFileAtomic, checkOutputPath } from '../src/fs-atomic.js';
import { loadDataDir, defaultDataDir, hasSplit, subset, fitSplitsToModel, type Dataset, type Layout } from '../src/data/index.js';
import { auditMembership, availableAttacks, ATTACKS, SHADOW_ATTACK_NAMES, THRESHOLD_ATTACK_NAMES, type AttackName, type AuditReport} from '../src/audit/membership-inference.js';
import { renderAuditHtml } from '../src/audit/report-html.js';
import { readTrainingRecord, completeRecipe, type ShadowRecipe } from '../src/audit/training-record.js';
import { planShadowAudit } from '../src/audit/shadow-audit.js';
import { poolFrom, sha256 } from '../src/audit/shadows.js';
import { shadowJobHandler, trainShadowModels, SHADOW_JOB_NAME } from '../src/audit/shadow-jobs.js';
import { AUGMENTATIONS, type Augmentation } from '../src/audit/attacks/augment.js';
import { InProcessRunner } from '../src/jobs/in-process.js';
import type { JobRunner } from '../src/jobs/runner.js';
import { RpOnnxError } from '../src/errors.js';

const num = (v: number | null, d = 3) => (v === null ? 'n/a' : Number.isFinite(v) ? v.toFixed(d) : v > 0 ? 'inf' : '-inf');

export function formatAudit(r: AuditReport): string {
  const lines = [
    `members ${r.members}, non-members ${r.nonMembers}, passes averaged per query ${r.samples}`,
    `train accuracy ${(100 * r.trainAccuracy).toFixed(2)}%, test accuracy ${(100 * r.testAccuracy).toFixed(2)}%, generalization gap ${(100 * r.generalizationGap).toFixed(2)} points`,
    ...(r.reference ? [`lira-offline: ${r.reference.models} reference models, ${r.reference.variance} variance`] : []),
    ...(r.shadows ? [`shadow models ${r.shadows.models}, LiRA variance ${r.shadows.variance}, query augmentation ${r.shadows.queries}${r.shadows.population ? `, RMIA population ${r.shadows.population}` : ''}`] : []),
    '',
  ];
  const header = ['attack', 'AUC', 'advantage', 'bal.acc', 'TPR@1%FPR', 'TPR@0.1%FPR', 'TPR@0.01%FPR', `empirical eps [95% CI], delta ${r.delta}`];
  const rows = r.attacks.map((a) => [a.attack, num(a.auc), num(a.advantage), num(a.balancedAccuracy), num(a.tprAtFpr1), num(a.tprAtFpr01), num(a.tprAtFpr001),
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
    .option('--layout <layout>', 'input layout of the model: nchw | nhwc (default: detected from its input shape)')
    .option('--limit-train <n>', 'the model was trained on the first N training examples: members come from those', parseIntOption('--limit-train'))
    .option('--members <n>', 'examples per side, members = non-members (default: as many as both sides have)', parseIntOption('--members'))
    .option('--samples <k>', 'noisy passes whose logits are averaged per query (as deployed)', parseIntOption('--samples'), 1)
    .option('--attacks <list>', `comma list of ${ATTACKS.join(', ')}, or all`)
    .option('--attack <list>', 'same as --attacks')
    .option('--reference <models>', 'comma list of reference models trained WITHOUT any audited example (enables lira-offline)')
    .option('--shadows <k>', 'train K shadow models, each on a random half of the audited members + non-members (lira-online, rmia, lira-offline)', parseIntOption('--shadows'))
    .option('--init <model>', 'the model before training (shadows start from it); needed with --shadows')
    .option('--non-members-from <split>', 'test (default) | train: the first unused training examples, in file order')
    .option('--population <n>', 'RMIA: test examples outside the pool to compare with (default: --members)', parseIntOption('--population'))
    .option('--augment <kind>', `shadow attacks also query ${AUGMENTATIONS.join(' | ')} copies (hflip: mirrored images)`, 'none')
    .option('--variance <mode>', 'LiRA variance: auto (global below 64 shadows) | global | per-example', 'auto')
    .option('--queue <url>', 'train shadows as jobs on BullMQ over Redis (redis://HOST:PORT), processed by `rp-onnx worker` (default: one by one in this process)')
    .option('--artifacts <dir>', 'keep shadow models here (named by job; reused when present, shared with workers)')
    .option('--shadow-threads <n>', 'onnxruntime threads per shadow (part of the result: keep it fixed to reproduce)', parseIntOption('--shadow-threads'), 1)
    .option('--epochs <n>', 'shadow recipe: epochs (default: from the model\'s training record)', parseIntOption('--epochs'))
    .option('--steps <n>', 'shadow recipe: steps instead of epochs', parseIntOption('--steps'))
    .option('--batch <n>', 'shadow recipe: batch size', parseIntOption('--batch'))
    .option('--lr <x>', 'shadow recipe: learning rate', parseNumberOption('--lr'))
    .option('--optimizer <name>', 'shadow recipe: sgd | adam | adamw')
    .option('--momentum <x>', 'shadow recipe: SGD momentum', parseNumberOption('--momentum'))
    .option('--weight-decay <x>', 'shadow recipe: weight decay', parseNumberOption('--weight-decay'))
    .option('--schedule <name>', 'shadow recipe: constant | cosine | step')
    .option('--batch-norm <mode>', 'shadow recipe: train | frozen')
    .option('--no-shuffle', 'shadow recipe: batches in file order')
    .option('--delta <d>', 'delta of the empirical epsilon lower bound', parseNumberOption('--delta'), 1e-5)
    .option('--seed <n>', 'seed for choosing members and non-members', parseIntOption('--seed'), 0)
    .option('--noise-seed <n>', 'seed the model\'s noise (reproducible audits); default: fresh OS entropy, as deployed', parseIntOption('--noise-seed'))
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', parseIntOption('--threads'))
    .option('--report <file>', 'write a self-contained HTML report (ROC curves, loss histograms, metrics)')
    .option('--force', 'overwrite an existing report')
    .option('--json', 'print JSON on stdout')
    .action(action(async (modelPath: string, o: Record<string, unknown>) => {
      const reference = o.reference ? String(o.reference).split(',').filter(Boolean) : [];
      const shadows = o.shadows as number | undefined;
      if (shadows !== undefined && !(shadows >= 2)) throw new UsageError(`--shadows must be an integer >= 2, got ${shadows}`);
      if (shadows !== undefined && !o.init) throw new UsageError('--shadows needs --init: the model before training, which every shadow starts from');
      const requested = [o.attacks, o.attack].filter((v) => v !== undefined).flatMap((v) => String(v).split(',').filter(Boolean));
      const possible = availableAttacks({ ...(reference.length > 0 ? { reference: {} } : {}), ...(shadows !== undefined ? { shadows: { models: [], include: [] }, population: {} as Dataset } : {}) });
      const attacks: AttackName[] = requested.length === 0 ? (shadows !== undefined ? possible : [...THRESHOLD_ATTACK_NAMES])
        : requested.includes('all') ? possible : requested as AttackName[];
      if (requested.length === 0 && reference.length > 0 && !attacks.includes('lira-offline')) attacks.push('lira-offline');
      for (const a of attacks) if (!ATTACKS.includes(a)) throw new UsageError(`--attacks: unknown attack '${a}' (choose from ${ATTACKS.join(', ')}, all)`);
      if (attacks.includes('lira-offline') && reference.length < 2 && shadows === undefined) throw new UsageError('--attacks lira-offline needs --reference with at least 2 reference models, or --shadows');
      for (const a of SHADOW_ATTACK_NAMES) if (attacks.includes(a) && shadows === undefined) throw new UsageError(`--attacks ${a} needs --shadows K and --init INIT.onnx`);
      const augment = o.augment as Augmentation;
      if (!AUGMENTATIONS.includes(augment)) throw new UsageError(`--augment must be one of ${AUGMENTATIONS.join(', ')}, got '${augment}'`);
      const variance = o.variance as string;
      if (!['auto', 'global', 'per-example'].includes(variance)) throw new UsageError(`--variance must be auto, global or per-example, got '${variance}'`);
      const nonMembersFrom = (o.nonMembersFrom as string | undefined) ?? 'test';
      if (nonMembersFrom !== 'test' && nonMembersFrom !== 'train') throw new UsageError(`--non-members-from must be test or train, got '${nonMembersFrom}'`);
      if (shadows === undefined && (o.queue || o.artifacts || o.nonMembersFrom)) throw new UsageError('--queue, --artifacts and --non-members-from go with --shadows');
      const samples = o.samples as number;
      if (!(samples >= 1)) throw new UsageError(`--samples must be a positive integer, got ${samples}`);
      const delta = o.delta as number;
      if (!(delta >= 0 && delta < 1)) throw new UsageError(`--delta must lie in [0, 1), got ${delta}`);
      if (o.members !== undefined && !((o.members as number) >= 1)) throw new UsageError(`--members must be a positive integer, got ${o.members}`);
      if (o.report) checkOutputPath(o.report as string, { force: o.force === true, inputs: [modelPath, ...reference, ...(o.init ? [o.init as string] : [])], flag: '--report' });

      const model = loadModel(modelPath);
      if (shadows !== undefined) {
        const { report, details } = await shadowAudit(model, modelPath, o, { shadows, attacks, augment, variance: variance as ShadowFlags['variance'], nonMembersFrom, samples, delta });
        finish(report, modelPath, o, details);
        return;
      }
      const trainDir = (o.trainData as string | undefined) ?? defaultDataDir();
      const testDir = (o.testData as string | undefined) ?? trainDir;
      let members = loadSplit(trainDir, 'train', '--train-data');
      const limit = o.limitTrain as number | undefined;
      if (limit !== undefined) {
        if (!(limit >= 1)) throw new UsageError(`--limit-train must be a positive integer, got ${limit}`);
        members = subset(members, Array.from({ length: Math.min(members.count, limit) }, (_, i) => i), `${members.name}[0:${limit}]`);
      } else {
        // Members only from examples training used, as its record says (a --steps run may use few).
        const record = readTrainingRecord(model, modelPath);
        if (record && record.examples <= members.count) {
          members = subset(members, record.used, `${members.name}[used by training]`);
        }
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
      finish(report, modelPath, o, { members: `${members.name} (${trainDir})`, 'non-members': `${nonMembers.name} (${testDir})` });
    }));
}

function finish(report: AuditReport, modelPath: string, o: Record<string, unknown>, details: Record<string, string>): void {
  if (o.report) writeFileAtomic(o.report as string, renderAuditHtml(report, `rp-onnx audit: ${modelPath}`, { model: modelPath, ...details }));
  if (o.json) printJson(jsonReport(report));
  else process.stdout.write(formatAudit(report) + (o.report ? `report: ${o.report}\n` : ''));
}

/** The recipe flags given on the command line (they override the training record). */
function recipeFlags(o: Record<string, unknown>): Partial<ShadowRecipe> {
  const r: Partial<ShadowRecipe> = {};
  if (o.epochs !== undefined && o.steps !== undefined) throw new RpOnnxError('give either --epochs or --steps, not both');
  if (o.epochs !== undefined) r.epochs = o.epochs as number;
  if (o.steps !== undefined) r.steps = o.steps as number;
  if (o.batch !== undefined) r.batchSize = o.batch as number;
  if (o.lr !== undefined) r.lr = o.lr as number;
  if (o.optimizer !== undefined) r.optimizer = o.optimizer as string;
  if (o.momentum !== undefined) r.momentum = o.momentum as number;
  if (o.weightDecay !== undefined) r.weightDecay = o.weightDecay as number;
  if (o.schedule !== undefined) r.schedule = o.schedule as string;
  if (o.batchNorm !== undefined) {
    if (o.batchNorm !== 'train' && o.batchNorm !== 'frozen') throw new RpOnnxError(`--batch-norm must be train or frozen, got '${o.batchNorm}'`);
    r.batchNorm = o.batchNorm;
  }
  if (o.shuffle === false) r.shuffle = false;
  return r;
}

interface ShadowFlags {
  shadows: number;
  attacks: AttackName[];
  augment: Augmentation;
  variance: 'auto' | 'global' | 'per-example';
  nonMembersFrom: 'test' | 'train';
  samples: number;
  delta: number;
}

/** lira-online / rmia / lira-offline with shadow models trained by rp-onnx (in-process or on a queue). */
async function shadowAudit(model: Awaited<ReturnType<typeof loadModel>>, modelPath: string, o: Record<string, unknown>, f: ShadowFlags): Promise<{ report: AuditReport; details: Record<string, string> }> {
  const initPath = o.init as string;
  const initBytes = readFileSync(initPath);
  const init = loadModel(initPath);
  const record = readTrainingRecord(model, modelPath);
  const recipe = completeRecipe(record?.recipe ?? {}, recipeFlags(o));
  for (const [flag, v] of [['--batch', recipe.batchSize], ['--epochs', recipe.epochs ?? 1], ['--steps', recipe.steps ?? 1]] as const) {
    if (!(Number.isInteger(v) && v >= 1)) throw new RpOnnxError(`${flag} must be a positive integer, got ${v}`);
  }
  if (!(recipe.lr > 0)) throw new RpOnnxError(`--lr must be positive, got ${recipe.lr}`);
  const trainDir = (o.trainData as string | undefined) ?? defaultDataDir();
  const testDir = (o.testData as string | undefined) ?? trainDir;
  const trainSplit = loadSplit(trainDir, 'train', '--train-data');
  const testSplit = testDir === trainDir ? loadDataDir(testDir, { split: 'test' }) : loadSplit(testDir, 'test', '--test-data');
  // The training set: --limit-train, else the record's size (the old --limit took the first N).
  const limit = (o.limitTrain as number | undefined) ?? record?.examples ?? trainSplit.count;
  if (!(limit >= 1)) throw new RpOnnxError(`--limit-train must be a positive integer, got ${limit}`);
  if (limit > trainSplit.count) throw new RpOnnxError(`${modelPath} was trained on ${limit} examples but ${trainDir} has ${trainSplit.count}: pass the training data with --train-data`);
  const used = (record?.used ?? Array.from({ length: limit }, (_, i) => i)).filter((i) => i < limit);
  if (!record) process.stderr.write(`note: ${modelPath} has no rp-onnx.training record: shadows use the recipe flags and defaults (${JSON.stringify(recipe)})\n`);
  const threads = o.shadowThreads as number;
  const plan = planShadowAudit({
    train: trainSplit, trainDir, test: testSplit, testDir, used, count: o.members as number | undefined, nonMembersFrom: f.nonMembersFrom,
    population: o.population as number | undefined, shadows: f.shadows, seed: o.seed as number, recipe,
    init: { path: (await import('node:path')).resolve(initPath), sha256: sha256(initBytes) }, threads,
  });
  const artifacts = o.artifacts as string | undefined;
  let runner: JobRunner;
  if (o.queue) {
    const { QueueRunner } = await import('../src/jobs/bullmq.js');
    runner = await QueueRunner.connect(o.queue as string);
  } else {
    // The pool's parts come from the splits loaded above (train and test folders as given).
    const context = { init, pool: poolFrom(plan.task, (_dir, split) => (split === 'train' ? trainSplit : testSplit)) };
    // One at a time: onnxruntime-node runs a session on the main thread, so more would not be faster
    // (parallel training is what --queue and `rp-onnx worker --concurrency N` are for).
    runner = new InProcessRunner({ [SHADOW_JOB_NAME]: shadowJobHandler({ artifacts, context }) }, 1);
  }
  const progress = new ProgressLine(true);
  const started = Date.now();
  let models;
  try {
    models = await trainShadowModels(plan.jobs, {
      runner, artifacts,
      onProgress: (p) => progress.update(p.done / p.total, `shadow models ${p.done}/${p.total} trained${p.retried ? ` (${p.retried} retried after a worker died)` : ''}, ${((Date.now() - started) / 1000).toFixed(0)} s`, true),
    });
  } finally {
    await runner.close();
  }
  progress.done(`shadow models ${models.length}/${models.length} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const report = await auditMembership(model, {
    members: plan.members, nonMembers: plan.nonMembers, samples: f.samples, attacks: f.attacks, delta: f.delta, seed: o.seed as number,
    noiseSeed: (o.noiseSeed as number | undefined) ?? 'secure', threads: o.threads as number | undefined,
    shadows: { models, include: plan.include, variance: f.variance }, population: plan.population, augment: f.augment,
  });
  return {
    report,
    details: {
      members: `${plan.members.count} of the ${used.length} training examples used (${trainDir})`,
      'non-members': f.nonMembersFrom === 'train' ? `the first ${plan.nonMembers.count} unused training examples (${trainDir})` : `${plan.nonMembers.count} test examples (${testDir})`,
      'shadow recipe': JSON.stringify(recipe),
    },
  };
}
