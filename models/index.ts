/**
 * The built-in models, by name. Each entry says how to build the model and what it is; the
 * CLI (`rp-onnx models list|create`) and the tests only look entries up, so adding a family
 * means adding entries here, not editing callers.
 */
import type { Model } from '../src/graph/ir.js';
import { RpOnnxError } from '../src/errors.js';
import { buildResNet, resnetParameterCount, resolveResNetOptions, RESNET_SPECS } from './resnet.js';
import type { ParameterCount } from './parameters.js';
import { LENET_MODEL } from './lenet.js';
import { buildDpCnn, dpCnnParameterCount, resolveDpCnnOptions } from './dp-cnn.js';

export { buildResNet, resolveResNetOptions, RESNET_NAMES, RESNET_SPECS, type ResNetOptions, type ResolvedResNetOptions } from './resnet.js';
export { countParameters, type ParameterCount } from './parameters.js';
export { buildDpCnn, dpCnnGeometry, type DpCnnOptions } from './dp-cnn.js';
export { NORM_KINDS, type NormKind, type ModelOptions } from './layers.js';
import type { ModelOptions } from './layers.js';

export interface BuiltinModel {
  name: string;
  /** Weighted layers. */
  depth: number;
  /** 'cifar' (32x32, 10 classes by default), 'imagenet' (224x224, 1000 classes) or 'mnist' (1x28x28, 10 classes). */
  style: 'cifar' | 'imagenet' | 'mnist';
  description: string;
  build(opts?: ModelOptions): Model;
  /** Parameter counts for the given options, without sampling weights. */
  parameters(opts?: ModelOptions): ParameterCount;
  /** The options with defaults filled in. */
  resolve(opts?: ModelOptions): Required<ModelOptions>;
}

const RESNETS: BuiltinModel[] = Object.entries(RESNET_SPECS).map(([name, spec]) => ({
  name,
  depth: spec.depth,
  style: spec.style,
  description: spec.style === 'cifar'
    ? `CIFAR-style ResNet-${spec.depth}: ${spec.blocks[0]} basic block${spec.blocks[0] === 1 ? '' : 's'} per stage, 16/32/64 channels`
    : `ImageNet-style ResNet-${spec.depth}: 2 basic blocks per stage, 64/128/256/512 channels`,
  build: (opts?: ModelOptions) => buildResNet(name, opts),
  parameters: (opts?: ModelOptions) => resnetParameterCount(name, opts),
  resolve: (opts?: ModelOptions) => resolveResNetOptions(name, opts),
}));

/** The end-to-end tanh CNN of DP-SGD papers (models/dp-cnn.ts). */
const DP_CNN: BuiltinModel = {
  name: 'dp-cnn',
  depth: 4,
  style: 'mnist',
  description: 'tanh CNN of Papernot et al. 2021 / Tramer & Boneh 2021 for DP-SGD: conv16 8x8/2, conv32 4x4/2, fc32, fc; no normalisation',
  build: (opts?: ModelOptions) => buildDpCnn(opts),
  parameters: (opts?: ModelOptions) => dpCnnParameterCount(opts),
  resolve: (opts?: ModelOptions) => resolveDpCnnOptions(opts),
};

export const BUILTIN_MODELS: readonly BuiltinModel[] = [...RESNETS, DP_CNN, LENET_MODEL];

export function findModel(name: string): BuiltinModel {
  const m = BUILTIN_MODELS.find((x) => x.name === name.toLowerCase());
  if (!m) throw new RpOnnxError(`unknown model '${name}': choose one of ${BUILTIN_MODELS.map((x) => x.name).join(', ')}`);
  return m;
}

/** Builds a built-in model by name with fresh weights. */
export function buildModel(name: string, opts?: ModelOptions): Model {
  return findModel(name).build(opts);
}
