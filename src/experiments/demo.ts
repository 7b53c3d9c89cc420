/**
 * The demo (README's main job): build ResNet-8, train it and a residual-perturbed copy on the
 * same small training set (members), audit both with membership-inference attacks against
 * held-out examples (non-members), and report accuracy and attack AUC side by side.
 * A small training set trained for several epochs overfits on purpose: that is what membership
 * inference exploits, and what the perturbation should blunt.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { buildResNet } from '../../models/index.js';
import { perturbModel, type Strategy } from '../passes/perturb.js';
import { fit } from '../train/fit.js';
import { saveModel } from '../graph/io.js';
import { checkOutputDir, writeFileAtomic } from '../fs-atomic.js';
import { loadDefaultDataset, subset, type Dataset } from '../data/index.js';
import { auditMembership, type AuditReport } from '../audit/membership-inference.js';
import { renderAuditHtml } from '../audit/report-html.js';

export interface DemoOptions {
  outDir: string;
  /** Replace the files of an earlier run in outDir (default: refuse before any work). */
  force?: boolean;
  trainExamples: number;
  epochs: number;
  gamma: number;
  strategy: Strategy;
  seed: number;
  threads?: number;
  toolVersion: string;
  onStage?: (stage: string) => void;
  onEpoch?: (label: string, epoch: number, testAccuracy: number | null, seconds: number) => void;
  /** Fraction of the whole demo done (training steps of both models, then the two audits). */
  onProgress?: (fraction: number, what: string) => void;
}

export interface DemoRow {
  model: string;
  testAccuracy: number;
  trainAccuracy: number;
  lossAuc: number;
  bestAuc: number;
  advantage: number;
  trainSeconds: number;
}

export interface DemoResult {
  rows: DemoRow[];
  files: { baseline: string; perturbed: string; report: string; baselineReport: string };
  seconds: number;
}

/** What the demo writes into its folder. */
export const DEMO_FILES = { baseline: 'resnet8.onnx', perturbed: 'resnet8.rp.onnx', report: 'audit-perturbed.html', baselineReport: 'audit-baseline.html' } as const;

function row(model: string, r: AuditReport, trainSeconds: number): DemoRow {
  const best = r.attacks.reduce((a, b) => (b.auc > a.auc ? b : a));
  return {
    model, testAccuracy: r.testAccuracy, trainAccuracy: r.trainAccuracy,
    lossAuc: r.attacks.find((a) => a.attack === 'loss')!.auc, bestAuc: best.auc,
    advantage: Math.max(...r.attacks.map((a) => a.advantage)), trainSeconds,
  };
}

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const started = Date.now();
  checkOutputDir(opts.outDir, Object.values(DEMO_FILES), { force: opts.force, flag: '--out-dir' });
  mkdirSync(opts.outDir, { recursive: true });
  const trainAll = loadDefaultDataset('train');
  const test = loadDefaultDataset('test');
  const members: Dataset = subset(trainAll, Array.from({ length: Math.min(opts.trainExamples, trainAll.count) }, (_, i) => i));
  const base = buildResNet('resnet8', { inChannels: 1, classes: 10, imageSize: 28, norm: 'batch', seed: opts.seed });
  const noisy = perturbModel(base, { gamma: opts.gamma, strategy: opts.strategy, scale: 'absolute', toolVersion: opts.toolVersion }).model;
  // Work in epoch units: two trainings, then each audit about as long as an epoch.
  const units = 2 * opts.epochs + 2;
  const train = async (label: string, model: typeof base, stage: number) => {
    opts.onStage?.(`training ${label} on ${members.count} examples for ${opts.epochs} epochs`);
    return fit(model, members, test, {
      epochs: opts.epochs, batchSize: 64, lr: 0.05, optimizer: 'sgd', momentum: 0.9, weightDecay: 0,
      schedule: 'cosine', seed: opts.seed, threads: opts.threads,
      onProgress: (p) => opts.onProgress?.((stage * opts.epochs + p.epoch - 1 + p.step / p.stepsInEpoch) / units,
        `${label}: epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.stepsInEpoch}`),
      onEpoch: (e) => opts.onEpoch?.(label, e.epoch, e.testAccuracy, e.seconds),
    });
  };
  const plain = await train('baseline ResNet-8', base, 0);
  const perturbed = await train(`perturbed ResNet-8 (strategy ${opts.strategy}, gamma ${opts.gamma})`, noisy, 1);
  const files = {
    baseline: join(opts.outDir, DEMO_FILES.baseline),
    perturbed: join(opts.outDir, DEMO_FILES.perturbed),
    report: join(opts.outDir, DEMO_FILES.report),
    baselineReport: join(opts.outDir, DEMO_FILES.baselineReport),
  };
  // Checked again where it matters: another process may have written there meanwhile.
  checkOutputDir(opts.outDir, Object.values(DEMO_FILES), { force: opts.force, flag: '--out-dir' });
  saveModel(plain.model, files.baseline);
  saveModel(perturbed.model, files.perturbed);
  opts.onStage?.('auditing both models with membership-inference attacks');
  const audit = (m: typeof base) => auditMembership(m, { members, nonMembers: test, delta: 1e-5, seed: opts.seed, threads: opts.threads });
  opts.onProgress?.((units - 2) / units, 'auditing the baseline');
  const a = await audit(plain.model);
  opts.onProgress?.((units - 1) / units, 'auditing the perturbed model');
  const b = await audit(perturbed.model);
  writeFileAtomic(files.baselineReport, renderAuditHtml(a, 'rp-onnx demo: baseline ResNet-8'));
  writeFileAtomic(files.report, renderAuditHtml(b, `rp-onnx demo: perturbed ResNet-8 (gamma ${opts.gamma})`));
  return {
    rows: [row('baseline', a, plain.seconds), row(`perturbed (gamma ${opts.gamma})`, b, perturbed.seconds)],
    files, seconds: (Date.now() - started) / 1000,
  };
}
