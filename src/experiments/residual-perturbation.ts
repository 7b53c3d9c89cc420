/**
 * The residual-perturbation paper's experiment on Fashion-MNIST with ResNet-8: a gamma sweep for
 * Strategy I and II (gamma 0 = the baseline), single models and ensembles (the paper's
 * En5ResNet8: logits of 5 noisy ResNet-8s averaged), against DP-SGD at several epsilons. For each:
 * test accuracy, membership-inference AUC and advantage (the best of the threshold attacks
 * against the model as deployed), and training time. Whatever the numbers say is the result.
 */
import { buildResNet } from '../../models/index.js';
import { perturbModel } from '../passes/perturb.js';
import { fit } from '../train/fit.js';
import { fitPrivate } from '../train/dp/dp-sgd.js';
import { DP_SGD_RECIPES } from './dp-sgd.js';
import { predict } from '../runtime/predict.js';
import { auditMembership } from '../audit/membership-inference.js';
import { subset, type Dataset } from '../data/index.js';
import type { Model } from '../graph/ir.js';
import type { JobRunner } from '../jobs/runner.js';

export interface ExperimentOptions {
  train: Dataset;
  test: Dataset;
  members: number;
  epochs: number;
  gammasI: number[];
  gammasII: number[];
  ensemble: number;
  /** Gamma of the ensembles (one per strategy). */
  ensembleGamma: { I: number; II: number };
  epsilons: number[];
  seed: number;
  threads?: number;
  toolVersion: string;
  onRow?: (row: ExperimentRow) => void;
  onStage?: (s: string) => void;
  /** Fraction of all trainings done (one unit per model trained, ensemble members included; with jobs: runs done). */
  onProgress?: (fraction: number) => void;
  /** Every run a job of `runner` (default: in this process); `data` is the folder of train and test, as the workers see it. */
  jobs?: { runner: JobRunner; data: string };
}

export interface ExperimentRow {
  method: string;
  testAccuracy: number;
  trainAccuracy: number;
  auc: number;
  advantage: number;
  bestAttack: string;
  trainSeconds: number;
  epsilon: number | null;
}

const first = (ds: Dataset, n: number) => subset(ds, Array.from({ length: Math.min(n, ds.count) }, (_, i) => i));

/** One run of the experiment (a row of its table): plain JSON, so it can be a job (residual-perturbation-jobs.ts). */
export type ExperimentRun =
  | { kind: 'baseline' }
  | { kind: 'perturbed'; strategy: 'I' | 'II'; gamma: number }
  | { kind: 'ensemble'; strategy: 'I' | 'II'; gamma: number; size: number }
  | { kind: 'dp-sgd'; epsilon: number };

/** The runs of a configuration, in table order. */
export function experimentRuns(o: Pick<ExperimentOptions, 'gammasI' | 'gammasII' | 'ensemble' | 'ensembleGamma' | 'epsilons'>): ExperimentRun[] {
  const runs: ExperimentRun[] = [{ kind: 'baseline' }];
  for (const [strategy, gammas] of [['I', o.gammasI], ['II', o.gammasII]] as const) {
    for (const gamma of gammas) runs.push({ kind: 'perturbed', strategy, gamma });
    if (o.ensemble > 1) runs.push({ kind: 'ensemble', strategy, gamma: o.ensembleGamma[strategy], size: o.ensemble });
  }
  for (const epsilon of o.epsilons) runs.push({ kind: 'dp-sgd', epsilon });
  return runs;
}

/** Models a run trains (the progress unit). */
export const runUnits = (r: ExperimentRun) => (r.kind === 'ensemble' ? r.size : 1);

export function runStage(r: ExperimentRun): string {
  switch (r.kind) {
    case 'baseline': return 'baseline (gamma 0)';
    case 'perturbed': return `strategy ${r.strategy}, gamma ${r.gamma}`;
    case 'ensemble': return `En${r.size}ResNet8, strategy ${r.strategy}, gamma ${r.gamma}`;
    case 'dp-sgd': return `DP-SGD, epsilon ${r.epsilon}`;
  }
}

/** What every run of one configuration shares (the data, sizes and seeds). */
export interface RunSetting {
  train: Dataset;
  test: Dataset;
  members: number;
  epochs: number;
  seed: number;
  threads?: number;
  toolVersion: string;
}

/** Trains and measures one run; `onProgress` gets the fraction of this run's trainings done. */
export async function runExperimentRun(run: ExperimentRun, o: RunSetting, onProgress?: (fraction: number) => void): Promise<ExperimentRow> {
  const members = first(o.train, o.members);
  const nonMembers = first(o.test, o.members);
  const sgd = { batchSize: 64, lr: 0.05, optimizer: 'sgd', momentum: 0.9, weightDecay: 5e-4, schedule: 'cosine', threads: o.threads } as const;
  const base = (seed: number, norm: 'batch' | 'group' = 'batch') => buildResNet('resnet8', { inChannels: 1, classes: 10, imageSize: 28, norm, seed });
  const units = runUnits(run);
  let unitsDone = 0;
  const within = (p: { epoch: number; step: number; stepsInEpoch: number; epochs: number }) =>
    onProgress?.((unitsDone + (p.epoch - 1 + p.step / p.stepsInEpoch) / p.epochs) / units);
  const trainOne = async (model: Model, seed: number) => {
    const r = await fit(model, members, undefined, { ...sgd, epochs: o.epochs, seed, onProgress: within });
    onProgress?.(++unitsDone / units);
    return { model: r.model, seconds: r.seconds };
  };
  const perturbed = (seed: number, strategy: 'I' | 'II', gamma: number) =>
    perturbModel(base(seed), { gamma, strategy, scale: 'absolute', toolVersion: o.toolVersion }).model;
  const measure = async (method: string, models: Model[], seconds: number, epsilon: number | null): Promise<ExperimentRow> => {
    // Accuracy on the full test set; the attack on balanced members / non-members.
    const acc = await predict(models, { data: o.test.images, count: o.test.count, shape: o.test.shape, labels: o.test.labels }, { threads: o.threads, batch: 256 });
    const audited = models.length > 1 ? await auditEnsemble(models) : models[0]!;
    const r = await auditMembership(audited, { members, nonMembers, delta: 1e-5, seed: o.seed, threads: o.threads });
    const best = r.attacks.reduce((a, b) => (b.auc > a.auc ? b : a));
    return {
      method, testAccuracy: acc.accuracy ?? 0, trainAccuracy: r.trainAccuracy, auc: best.auc,
      advantage: Math.max(...r.attacks.map((a) => a.advantage)), bestAttack: best.attack, trainSeconds: seconds, epsilon,
    };
  };

  switch (run.kind) {
    case 'baseline': {
      const b = await trainOne(base(o.seed), o.seed);
      return measure('baseline ResNet-8 (gamma 0)', [b.model], b.seconds, null);
    }
    case 'perturbed': {
      const t = await trainOne(perturbed(o.seed, run.strategy, run.gamma), o.seed);
      return measure(`ResNet-8, strategy ${run.strategy}, gamma ${run.gamma}`, [t.model], t.seconds, null);
    }
    case 'ensemble': {
      const models: Model[] = [];
      let seconds = 0;
      for (let k = 0; k < run.size; k++) {
        const t = await trainOne(perturbed(o.seed + 1 + k, run.strategy, run.gamma), o.seed + 1 + k);
        models.push(t.model);
        seconds += t.seconds;
      }
      return measure(`En${run.size}ResNet8, strategy ${run.strategy}, gamma ${run.gamma}`, models, seconds, null);
    }
    case 'dp-sgd': {
      // DP-SGD rows: the tuned recipe of src/experiments/dp-sgd.ts (Tramer & Boneh 2021's optimiser:
      // momentum 0.9, constant lr 4, C 0.1, plus EMA of the weights), on this experiment's ResNet-8
      // (GroupNorm), so the membership-inference comparison with residual perturbation stays at equal
      // architecture (dp-cnn is not a ResNet and cannot be perturbed). The batch keeps the recipe's
      // sampling rate 2048 / 60,000 on the members, so the accountant sees the same q per step.
      const dpRecipe = DP_SGD_RECIPES.resnet8;
      const dpBatch = Math.max(1, Math.round(members.count * (dpRecipe.batchSize / 60_000)));
      const r = await fitPrivate(base(o.seed, 'group'), members, undefined, {
        optimizer: 'sgd', momentum: dpRecipe.momentum, weightDecay: 0, threads: o.threads, schedule: dpRecipe.schedule,
        lr: dpRecipe.lr, batchSize: dpBatch, physicalBatchSize: dpRecipe.physicalBatchSize, ema: dpRecipe.ema ?? undefined,
        epochs: o.epochs, seed: o.seed, onProgress: within,
        dp: {
          maxGradNorm: dpRecipe.maxGradNorm, delta: dpRecipe.delta, targetEpsilon: run.epsilon, noiseSchedule: 'constant', noiseEndRatio: 1, sampling: 'poisson',
          clip: 'constant', clipQuantile: 0.5, clipLearningRate: 0.2, noise: 'gaussian', secureRng: true,
        },
      });
      onProgress?.(1);
      return measure(`DP-SGD ResNet-8 (GroupNorm, tuned recipe + EMA), epsilon ${run.epsilon}`, [r.model], r.seconds, r.privacy.epsilon);
    }
  }
}

/**
 * Runs every run of the configuration: in this process, one after the other (the default), or
 * with `jobs` as jobs of a runner (`--queue`: BullMQ, executed by `rp-onnx worker` processes that
 * load the data from `jobs.data`, a folder every worker can read).
 */
export async function runResidualPerturbationExperiment(o: ExperimentOptions): Promise<ExperimentRow[]> {
  const runs = experimentRuns(o);
  const units = runs.reduce((s, r) => s + runUnits(r), 0);
  const setting: RunSetting = { train: o.train, test: o.test, members: o.members, epochs: o.epochs, seed: o.seed, threads: o.threads, toolVersion: o.toolVersion };
  if (o.jobs) {
    const { runExperimentJobs } = await import('./residual-perturbation-jobs.js');
    o.onStage?.(`${runs.length} runs as jobs`);
    const rows = await runExperimentJobs(runs, { ...setting, data: o.jobs.data }, o.jobs.runner, (p) => o.onProgress?.(p.done / p.total));
    rows.forEach((r) => o.onRow?.(r));
    return rows;
  }
  const rows: ExperimentRow[] = [];
  let unitsDone = 0;
  for (const run of runs) {
    o.onStage?.(runStage(run));
    const n = runUnits(run);
    const row = await runExperimentRun(run, setting, (f) => o.onProgress?.((unitsDone + f * n) / units));
    unitsDone += n;
    rows.push(row);
    o.onRow?.(row);
  }
  return rows;
}

/** An ensemble is audited through its averaged logits: wrap the members in one runner. */
async function auditEnsemble(models: Model[]) {
  const { ensembleModel } = await import('./ensemble-model.js');
  return ensembleModel(models);
}

export function markdownTable(rows: ExperimentRow[]): string {
  const head = '| method | test accuracy | train accuracy (members) | MIA AUC (best attack) | advantage | epsilon | training time |\n|---|---|---|---|---|---|---|';
  const body = rows.map((r) => `| ${r.method} | ${(100 * r.testAccuracy).toFixed(2)}% | ${(100 * r.trainAccuracy).toFixed(2)}% | ${r.auc.toFixed(3)} (${r.bestAttack}) | ${r.advantage.toFixed(3)} | ${r.epsilon === null ? '-' : r.epsilon.toFixed(2)} | ${r.trainSeconds.toFixed(0)} s |`);
  return [head, ...body].join('\n');
}
