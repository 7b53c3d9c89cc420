/**
 * Developer measurement behind the residual-perturbation experiment's DP batch rule
 * (dpBatchSize in src/experiments/residual-perturbation.ts): one DP-SGD training of the
 * experiment's GroupNorm ResNet-8 on the first N Fashion-MNIST training images with the tuned
 * optimiser (momentum 0.9, constant lr, C 0.1, EMA), sigma calibrated to epsilon 3 (PRV,
 * delta 1e-5, Poisson sampling), then test accuracy on the whole test split. Prints one JSON line.
 * Run: node --import tsx scripts/dev/dp-batch-sweep.ts BATCH LR EPOCHS N [DATA_DIR]
 *   e.g. for B in 34 125 256 500; do node --import tsx scripts/dev/dp-batch-sweep.ts $B 4 30 1000; done
 */
import { buildResNet } from '../../models/index.js';
import { fitPrivate } from '../../src/train/dp/dp-sgd.js';
import { loadDataDir, subset } from '../../src/data/index.js';
import { predict } from '../../src/runtime/predict.js';

const [batch, lr, epochs, n] = process.argv.slice(2, 6).map(Number);
if (![batch, lr, epochs, n].every((v) => Number.isFinite(v) && v! > 0)) {
  process.stderr.write('usage: dp-batch-sweep.ts BATCH LR EPOCHS N [DATA_DIR]\n');
  process.exit(2);
}
const dir = process.argv[6] ?? '../shared/data/fashion-mnist';
const train = loadDataDir(dir, { split: 'train' });
const test = loadDataDir(dir, { split: 'test' });
const started = Date.now();
const model = buildResNet('resnet8', { inChannels: 1, classes: 10, imageSize: 28, norm: 'group', seed: 0 });
const r = await fitPrivate(model, subset(train, Array.from({ length: n! }, (_, i) => i)), undefined, {
  optimizer: 'sgd', momentum: 0.9, weightDecay: 0, threads: 1, schedule: 'constant', lr: lr!, batchSize: batch!, physicalBatchSize: 256,
  ema: { decay: 0.999, warmup: true }, epochs: epochs!, seed: 0,
  dp: {
    maxGradNorm: 0.1, delta: 1e-5, targetEpsilon: 3, noiseSchedule: 'constant', noiseEndRatio: 1, sampling: 'poisson',
    clip: 'constant', clipQuantile: 0.5, clipLearningRate: 0.2, noise: 'gaussian', secureRng: true,
  },
});
const acc = await predict([r.model], { data: test.images, count: test.count, shape: test.shape, labels: test.labels }, { threads: 1, batch: 500 });
process.stdout.write(`${JSON.stringify({ batch, lr, epochs, members: n, sigma: r.noiseMultiplier, steps: r.steps, epsilon: r.privacy.epsilon, testAccuracy: acc.accuracy, seconds: (Date.now() - started) / 1000 })}\n`);
