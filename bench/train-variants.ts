/**
 * The networks of the training-step benchmark (bench/train-step.ts), each with its PyTorch /
 * Opacus twin (bench/pytorch/train_step.py), and one step of ours as `rp-onnx train` runs it. A
 * variant is named by its index so that a child process (bench/train-step-worker.ts) builds the
 * same model the parent describes.
 */
import { Trainer } from '../src/train/trainer.js';
import { buildResNet } from '../models/index.js';
import { perturbModel } from '../src/passes/perturb.js';
import { Random } from '../src/random.js';
import type { Model } from '../src/graph/ir.js';

export const THREADS = 2;

/** Twin network of bench/pytorch/train_step.py. */
export interface TorchNet {
  name: string;
  cin: number;
  size: number;
  classes: number;
  norm?: 'batch' | 'group' | 'none';
  /**
   * The twin's step is Opacus 1.4's DP-SGD step (DP=1). Opacus has no Debian package: the twin
   * finds it through OPACUS_PATH (folders with the opacus and opt_einsum sources), else the peer
   * reads as not installed.
   */
  opacus?: boolean;
}

export interface TrainVariant {
  label: string;
  build: () => Model;
  shape: [number, number, number];
  batch: number;
  dp?: boolean;
  pytorch?: TorchNet;
}

const resnet = (name: string, cin: number, size: number, norm: 'batch' | 'group' | 'none', classes = 10) => () =>
  buildResNet(name, { inChannels: cin, imageSize: size, norm, classes, seed: 0 });

export const TRAIN_VARIANTS: readonly TrainVariant[] = [
  { label: 'resnet8 1x28x28 b128 (BN)', build: resnet('resnet8', 1, 28, 'batch'), shape: [1, 28, 28], batch: 128, pytorch: { name: 'resnet8', cin: 1, size: 28, classes: 10 } },
  { label: 'resnet8 perturbed (gamma 0.5)', build: () => perturbModel(resnet('resnet8', 1, 28, 'batch')(), { gamma: 0.5, strategy: 'I', scale: 'absolute', toolVersion: 'bench' }).model, shape: [1, 28, 28], batch: 128 },
  { label: 'resnet8 GroupNorm', build: resnet('resnet8', 1, 28, 'group'), shape: [1, 28, 28], batch: 128 },
  { label: 'resnet8 GroupNorm DP-SGD', build: resnet('resnet8', 1, 28, 'group'), shape: [1, 28, 28], batch: 128, dp: true, pytorch: { name: 'resnet8', cin: 1, size: 28, classes: 10, norm: 'group', opacus: true } },
  { label: 'resnet20 3x32x32 b128 (BN)', build: resnet('resnet20', 3, 32, 'batch'), shape: [3, 32, 32], batch: 128, pytorch: { name: 'resnet20', cin: 3, size: 32, classes: 10 } },
  { label: 'resnet18 3x224x224 b16 (BN)', build: resnet('resnet18', 3, 224, 'batch', 1000), shape: [3, 224, 224], batch: 16, pytorch: { name: 'resnet18', cin: 3, size: 224, classes: 1000 } },
  // The first Opacus comparison was on this network (no normalisation layers).
  { label: 'resnet8 no norm DP-SGD', build: resnet('resnet8', 1, 28, 'none'), shape: [1, 28, 28], batch: 128, dp: true, pytorch: { name: 'resnet8', cin: 1, size: 28, classes: 10, norm: 'none', opacus: true } },
];

/** Variants whose step is ~10x ResNet-8's: fewer rounds and warm-up steps keep a run within minutes. */
export const isLarge = (v: TrainVariant): boolean => v.batch * v.shape[0] * v.shape[1] * v.shape[2] > 1e6;

/**
 * A Trainer for `v` and one training step on fixed random data: forward, loss, backward and the
 * SGD momentum update (with DP-SGD: per-example clipping in the graph, then the update).
 */
export async function stepRunner(v: TrainVariant): Promise<{ step: () => Promise<void>; release: () => Promise<void> }> {
  const rng = new Random(1);
  const t = await Trainer.create(v.build(), { optimizer: 'sgd', momentum: 0.9, weightDecay: 5e-4, threads: THREADS, dp: v.dp ? { mode: 'clip' } : undefined });
  const x = Float32Array.from({ length: v.batch * v.shape[0] * v.shape[1] * v.shape[2] }, () => rng.uniform());
  const y = Int32Array.from({ length: v.batch }, () => rng.int(v.pytorch?.classes ?? 10));
  const step = async () => {
    if (v.dp) {
      const g = await t.dpGradients(x, y, v.batch, 1);
      t.applyUpdate(g.grads, 0.01);
    } else await t.step(x, y, v.batch, 0.01);
  };
  return { step, release: () => t.release() };
}
