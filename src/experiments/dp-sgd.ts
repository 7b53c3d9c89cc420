/**
 * DP-SGD at the literature's level: a documented recipe trained on the full training split and
 * scored on the test split, so our figure can be set beside the published ones on the same
 * footing (Fashion-MNIST, epsilon 3, delta 1e-5):
 *   Papernot et al. 2021 (tanh CNN):                     86.1% at eps 2.93
 *   Tramer & Boneh 2021 (end-to-end CNN, same network):  86.0% at eps 3
 * The dp-cnn recipe starts from Tramer & Boneh's (batch 2048, lr 4, momentum 0.9, C 0.1,
 * 40 epochs, pixels in [0, 1]) and adds parameter averaging (De et al. 2022), which is
 * post-processing of the private iterates and free under DP.
 *
 * Measured here (2026-12-01, one seed, 2 cores at load average 20-27, nice 10, 1 thread): the
 * dp-cnn recipe at target 3 gave sigma 1.9238 (RDP), 1,160 steps, epsilon 2.993, test accuracy
 * 86.40% with EMA and 86.44% for the last iterate, in 4,228 s. Opacus 1.4 with the same recipe:
 * 86.62% in 1,260 s on a less loaded machine. With the PRV accountant (the default since): sigma
 * 1.8055, epsilon 2.9969, 86.24% with EMA and 86.47% for the last iterate, in 1,288 s (1 thread,
 * load ~2). The goal (>= 87%, faster than Opacus) is not met with dp-cnn.
 *
 * Better features (Tramer & Boneh 2021; their repository's README table: ScatterNet + linear
 * 89.7% on Fashion-MNIST at (3, 1e-5)): scatternet-linear, the fixed scattering (J 2, L 8)
 * computed once, DP-SGD on the GroupNorm + linear head. Measured here (2026-12-02, one run, nice
 * 10, 1 thread, load average 11.8-28.7, mean 17.6 over the run):
 *   nice -n 10 rp-onnx experiment dp-sgd --data /work/shared/data/fashion-mnist --target-epsilon 3 --model scatternet-linear --threads 1 --json
 * sigma 2.4617 (PRV), 140 steps at q 0.13653, epsilon 2.99994, delta 1e-5: test accuracy 88.93%
 * with EMA, 88.95% for the last iterate, and 88.93% for the deployed ONNX graph (scattering +
 * head) on the raw test images, in 935 s in all (387 s computing the features of the 70,000
 * images, the rest training). That meets the goal: >= 87% at eps 3, in less time than Opacus's
 * 1,260 s for 86.62% with dp-cnn. JSON: docs/experiment-dp-sgd-scatternet-linear.json. The same
 * command again (fresh noise; load 8.9-17.4, mean 13.3): 88.90% EMA, 89.02% last iterate, 88.90%
 * deployed, in 693 s (296 s features).
 *
 * resnet8 (GroupNorm, 8 groups; the residual-perturbation experiment's network), measured here
 * (2026-12-07, one run, nice 5, 1 thread, load average 2-7) with 10 epochs instead of the
 * recipe's 40 (40 would take about 2.6 hours on this machine):
 *   rp-onnx experiment dp-sgd --data ../shared/data/fashion-mnist --target-epsilon 3 --model resnet8 --epochs 10 --threads 1 --json
 * sigma 1.1292 (PRV), 290 steps at q 0.03413, epsilon 2.99981, delta 1e-5: test accuracy 75.22%
 * with EMA and 76.17% for the last iterate, in 2,360 s. JSON: docs/experiment-dp-sgd-resnet8.json.
 * Far under dp-cnn (86.4%) and scatternet-linear (88.9%) at the same epsilon; the 40-epoch
 * recipe was not run.
 *
 * Privacy: Poisson sampling at rate q = B / N (add/remove adjacency), Gaussian noise from the OS
 * CSPRNG, sigma calibrated so the planned steps end at or below the target epsilon by the
 * library's accountant. Only the parameters (and the averaged parameters derived from them) are
 * covered; the test accuracy is computed on the public test split.
 */
import { buildModel, buildScatterNet } from '../../models/index.js';
import type { Model } from '../graph/ir.js';
import { predict } from '../runtime/predict.js';
import { featureDataset } from './feature-dataset.js';
import { fitPrivate, type DpFitResult, type DpEpochReport } from '../train/dp/dp-sgd.js';
import { subset, type Dataset } from '../data/index.js';
import type { EmaOptions } from '../train/ema.js';
import { RpOnnxError } from '../errors.js';

export const DP_SGD_MODELS = ['dp-cnn', 'resnet8', 'scatternet-linear'] as const;
export type DpSgdModel = (typeof DP_SGD_MODELS)[number];

export interface DpSgdRecipe {
  model: DpSgdModel;
  epochs: number;
  /** Expected (logical) batch size: the Poisson rate is batchSize / N. */
  batchSize: number;
  /** Examples per run of the training graph (memory only; no effect on the step). */
  physicalBatchSize: number;
  lr: number;
  momentum: number;
  schedule: 'constant' | 'cosine';
  maxGradNorm: number;
  /** Parameter averaging; null for the raw last iterate. */
  ema: EmaOptions | null;
  delta: number;
  seed: number;
}

/**
 * The recipes, by model. dp-cnn: Tramer & Boneh 2021's hyper-parameters plus EMA.
 * scatternet-linear: theirs for Fashion-MNIST (their repository's README: batch 8192, lr 16,
 * GroupNorm with 27 groups; momentum 0.9 and C 0.1 are its defaults) with 20 epochs (our
 * choice; their noise multiplier 4.05 comes from their own accountant) plus EMA. resnet8
 * (GroupNorm, the residual-perturbation experiment's network): the same optimiser settings,
 * which are what src/experiments/residual-perturbation.ts uses for its DP-SGD rows.
 */
export const DP_SGD_RECIPES: Readonly<Record<DpSgdModel, DpSgdRecipe>> = {
  'dp-cnn': {
    model: 'dp-cnn', epochs: 40, batchSize: 2048, physicalBatchSize: 512, lr: 4, momentum: 0.9, schedule: 'constant',
    maxGradNorm: 0.1, ema: { decay: 0.999, warmup: true }, delta: 1e-5, seed: 0,
  },
  resnet8: {
    model: 'resnet8', epochs: 40, batchSize: 2048, physicalBatchSize: 256, lr: 4, momentum: 0.9, schedule: 'constant',
    maxGradNorm: 0.1, ema: { decay: 0.999, warmup: true }, delta: 1e-5, seed: 0,
  },
  'scatternet-linear': {
    model: 'scatternet-linear', epochs: 20, batchSize: 8192, physicalBatchSize: 1024, lr: 16, momentum: 0.9, schedule: 'constant',
    maxGradNorm: 0.1, ema: { decay: 0.999, warmup: true }, delta: 1e-5, seed: 0,
  },
};

export interface DpSgdExperimentOptions {
  train: Dataset;
  test: Dataset;
  targetEpsilon: number;
  /** Overrides of the model's recipe. */
  recipe?: Partial<DpSgdRecipe>;
  model?: DpSgdModel;
  /** Only the first N training examples (exploration; the rate is then B / N). */
  limit?: number;
  threads?: number;
  onProgress?: (p: { epoch: number; epochs: number; step: number; stepsInEpoch: number; epsilon: number | null; sigma: number }) => void;
  onEpoch?: (e: DpEpochReport) => void;
}

export interface DpSgdExperimentResult {
  /** Test accuracy of the model returned (the EMA average when the recipe has one). */
  testAccuracy: number;
  /** Test accuracy of the last raw iterate. */
  lastIterateTestAccuracy: number | null;
  epsilon: number | null;
  delta: number;
  accountant: string;
  sampling: 'poisson';
  sigma: number;
  sampleRate: number;
  steps: number;
  trainExamples: number;
  testExamples: number;
  /** Wall time of the whole run: fixed feature extraction (scatternet-linear) plus training. */
  seconds: number;
  /** Of which computing the fixed features of the train and test splits (0 for other models). */
  featureSeconds: number;
  /**
   * scatternet-linear: test accuracy of the deployable model (scattering + trained head, one
   * ONNX graph) on the raw test images; it must equal testAccuracy. null for other models.
   */
  deployedTestAccuracy: number | null;
  recipe: DpSgdRecipe;
  statement: string;
  epochs: DpEpochReport[];
  result: DpFitResult;
}

export function resolveRecipe(model: DpSgdModel, overrides: Partial<DpSgdRecipe> = {}): DpSgdRecipe {
  const base = DP_SGD_RECIPES[model];
  if (!base) throw new RpOnnxError(`model must be one of ${DP_SGD_MODELS.join(', ')}, got '${model}'`, { param: 'model' });
  const r: DpSgdRecipe = { ...base, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)), model };
  const positiveInt = (flag: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new RpOnnxError(`${flag} must be a positive integer, got ${v}`);
  };
  positiveInt('--epochs', r.epochs);
  positiveInt('--batch-size', r.batchSize);
  positiveInt('--physical-batch-size', r.physicalBatchSize);
  if (!(r.lr > 0)) throw new RpOnnxError(`lr must be > 0, got ${r.lr}`, { param: 'lr' });
  if (!(r.momentum >= 0 && r.momentum < 1)) throw new RpOnnxError(`momentum must be in [0, 1), got ${r.momentum}`, { param: 'momentum' });
  if (!(r.maxGradNorm > 0)) throw new RpOnnxError(`maxGradNorm must be > 0, got ${r.maxGradNorm}`, { param: 'maxGradNorm' });
  if (r.ema && !(r.ema.decay >= 0 && r.ema.decay < 1)) throw new RpOnnxError(`emaDecay must be in [0, 1), got ${r.ema.decay}`, { param: 'emaDecay' });
  return r;
}

export async function runDpSgdExperiment(o: DpSgdExperimentOptions): Promise<DpSgdExperimentResult> {
  if (!(o.targetEpsilon > 0 && Number.isFinite(o.targetEpsilon))) throw new RpOnnxError(`targetEpsilon must be a positive number, got ${o.targetEpsilon}`, { param: 'targetEpsilon' });
  const recipe = resolveRecipe(o.model ?? 'dp-cnn', o.recipe);
  if (o.train.shape.length !== 3 || o.train.shape[1] !== o.train.shape[2]) {
    throw new RpOnnxError(`the experiment needs square images [C, H, W], got [${o.train.shape.join(', ')}]`);
  }
  const train = o.limit !== undefined && o.limit < o.train.count ? subset(o.train, Array.from({ length: o.limit }, (_, i) => i)) : o.train;
  if (recipe.batchSize > train.count) throw new RpOnnxError(`batchSize ${recipe.batchSize} exceeds the ${train.count} training examples`, { param: 'batchSize' });
  const [c, s] = [o.train.shape[0]!, o.train.shape[1]!];
  const classes = Math.max(o.train.classes, o.test.classes);
  const started = Date.now();
  let trainSet = train;
  let testSet = o.test;
  let model: Model;
  let featureSeconds = 0;
  const scatterOptions = { inChannels: c, imageSize: s, classes, seed: recipe.seed };
  if (recipe.model === 'scatternet-linear') {
    // The scattering is fixed and per-example: computed once, and DP-SGD trains the head on it.
    const extractor = buildScatterNet(scatterOptions, 'features');
    trainSet = await featureDataset(extractor, train, { threads: o.threads, name: `${train.name}/scattering` });
    testSet = await featureDataset(extractor, o.test, { threads: o.threads, name: `${o.test.name}/scattering` });
    featureSeconds = (Date.now() - started) / 1000;
    model = buildScatterNet(scatterOptions, 'head');
  } else if (recipe.model === 'dp-cnn') {
    model = buildModel('dp-cnn', { inChannels: c, imageSize: s, classes, seed: recipe.seed });
  } else {
    model = buildModel('resnet8', { inChannels: c, imageSize: s, classes, norm: 'group', seed: recipe.seed });
  }
  const r = await fitPrivate(model, trainSet, testSet, {
    optimizer: 'sgd', momentum: recipe.momentum, weightDecay: 0, threads: o.threads,
    epochs: recipe.epochs, batchSize: recipe.batchSize, lr: recipe.lr, schedule: recipe.schedule, seed: recipe.seed,
    physicalBatchSize: recipe.physicalBatchSize, ema: recipe.ema ?? undefined,
    dp: {
      maxGradNorm: recipe.maxGradNorm, delta: recipe.delta, targetEpsilon: o.targetEpsilon, noiseSchedule: 'constant', noiseEndRatio: 1,
      sampling: 'poisson', clip: 'constant', clipQuantile: 0.5, clipLearningRate: 0.2, noise: 'gaussian', secureRng: true,
    },
    onProgress: o.onProgress ? (p) => o.onProgress!({ epoch: p.epoch, epochs: p.epochs, step: p.step, stepsInEpoch: p.stepsInEpoch, epsilon: p.epsilon, sigma: p.sigma }) : undefined,
    onEpoch: o.onEpoch,
  });
  let result = r;
  let statement = r.privacy.statement;
  let deployedTestAccuracy: number | null = null;
  if (recipe.model === 'scatternet-linear') {
    // The deployable model: the fixed scattering with the trained head's weights dropped in.
    const full = buildScatterNet(scatterOptions, 'full');
    for (const [name, t] of r.model.graph.initializers) {
      if (!full.graph.initializers.has(name)) throw new RpOnnxError(`internal: the trained head's '${name}' is not in the full scatternet-linear`);
      full.graph.initializers.set(name, t);
    }
    for (const [k, v] of r.model.metadata()) if (k !== 'rp-onnx.builder') full.setMetadata(k, v);
    const p = await predict([full], { data: o.test.images, count: o.test.count, shape: o.test.shape, labels: o.test.labels }, { threads: o.threads, batch: 500 });
    deployedTestAccuracy = p.accuracy;
    result = { ...r, model: full };
    statement = `${statement.replace(/\.?\s*$/, '')}. The scattering features are a fixed function of each image alone (no data statistics), so the guarantee holds for the raw training images.`;
  }
  const last = r.epochs.at(-1);
  return {
    testAccuracy: r.finalTestAccuracy ?? 0,
    lastIterateTestAccuracy: last?.testAccuracy ?? null,
    epsilon: r.privacy.epsilon, delta: recipe.delta, accountant: r.privacy.accountant, sampling: 'poisson',
    sigma: r.noiseMultiplier, sampleRate: Math.min(1, recipe.batchSize / train.count), steps: r.steps,
    trainExamples: train.count, testExamples: o.test.count, seconds: (Date.now() - started) / 1000, featureSeconds, deployedTestAccuracy, recipe,
    statement, epochs: r.epochs, result,
  };
}
