/**
 * ResNets with basic blocks, as ONNX models (He, Zhang, Ren, Sun 2016).
 *
 * CIFAR-style ResNet-(6n+2) (paper section 4.2): 3x3 conv with 16 channels, three stages of n
 * basic blocks with 16/32/64 channels, stride 2 in the first block of stages 2 and 3, global
 * average pooling, fully connected layer. Where a stage changes shape the shortcut is the
 * paper's option B, a 1x1 stride-2 convolution plus normalisation.
 *
 * ImageNet-style ResNet-18 (paper table 1, torchvision's layout): 7x7 stride-2 conv with 64
 * channels, normalisation, ReLU, 3x3 stride-2 max pool, four stages of 2 basic blocks with
 * 64/128/256/512 channels, projection shortcuts where the shape changes, average pool, Gemm.
 *
 * A basic block is conv-norm-relu-conv-norm, then Add(branch, skip), then ReLU: the residual
 * Add the perturb pass finds and instruments.
 */
import { Graph, Model, makeTensorTypeProto } from '../src/graph/ir.js';
import { GraphBuilder } from '../src/graph/builder.js';
import { onnx } from '../src/graph/onnx.js';
import { Random } from '../src/random.js';
import { RpOnnxError } from '../src/errors.js';
import { countParameters, type ParameterCount } from './parameters.js';
import { LayerEmitter, NORM_KINDS, checkModelOptions, type ModelOptions } from './layers.js';

/** Opset 17 / IR 8 (ONNX 1.12): every op used here exists in it, and older runtimes and checkers read it. */
const OPSET = 17;
const IR_VERSION = 8;

export const PRODUCER_VERSION = '0.1.0';

/** Defaults: 3 channels, 10 classes, 32x32 for CIFAR-style, 1000 classes and 224x224 for resnet18; norm 'batch'; 8 groups. */
export type ResNetOptions = ModelOptions;

interface ResNetSpec {
  style: 'cifar' | 'imagenet';
  /** Weighted layers, the number in the name. */
  depth: number;
  /** Basic blocks per stage. */
  blocks: number[];
  widths: number[];
  defaultClasses: number;
  defaultImageSize: number;
}

function cifar(depth: number): ResNetSpec {
  const n = (depth - 2) / 6;
  return { style: 'cifar', depth, blocks: [n, n, n], widths: [16, 32, 64], defaultClasses: 10, defaultImageSize: 32 };
}

/** The architectures `buildResNet` knows, by name. */
export const RESNET_SPECS: Readonly<Record<string, ResNetSpec>> = {
  resnet8: cifar(8),
  resnet20: cifar(20),
  resnet32: cifar(32),
  resnet56: cifar(56),
  resnet110: cifar(110),
  resnet18: { style: 'imagenet', depth: 18, blocks: [2, 2, 2, 2], widths: [64, 128, 256, 512], defaultClasses: 1000, defaultImageSize: 224 },
};
export const RESNET_NAMES = Object.keys(RESNET_SPECS);

/** The options with every default filled in, as recorded in the model's metadata. */
export type ResolvedResNetOptions = Required<ResNetOptions>;

export function resolveResNetOptions(name: string, opts: ResNetOptions = {}): ResolvedResNetOptions {
  const spec = RESNET_SPECS[name];
  if (!spec) throw new RpOnnxError(`unknown model '${name}': choose one of ${RESNET_NAMES.join(', ')}`);
  const r: ResolvedResNetOptions = {
    inChannels: opts.inChannels ?? 3,
    classes: opts.classes ?? spec.defaultClasses,
    imageSize: opts.imageSize ?? spec.defaultImageSize,
    norm: opts.norm ?? 'batch',
    groups: opts.groups ?? 8,
    seed: opts.seed ?? 0,
  };
  checkModelOptions(r);
  if (!NORM_KINDS.includes(r.norm)) throw new RpOnnxError(`--norm must be one of ${NORM_KINDS.join(', ')}, got '${r.norm}'`);
  if (r.norm === 'group') {
    const bad = spec.widths.find((w) => w % r.groups !== 0);
    if (bad !== undefined) throw new RpOnnxError(`--groups ${r.groups} does not divide ${name}'s ${bad} channels: choose a divisor of ${spec.widths.join(', ')}`);
  }
  return r;
}

/** Builds the named ResNet with freshly initialised weights; the same options give the same bytes. */
export function buildResNet(name: string, opts: ResNetOptions = {}): Model {
  const o = resolveResNetOptions(name, opts);
  return assemble(name, o, new Random(o.seed));
}

/** Parameter counts of the named ResNet, from a skeleton whose weights are not sampled. */
export function resnetParameterCount(name: string, opts: ResNetOptions = {}): ParameterCount {
  return countParameters(assemble(name, resolveResNetOptions(name, opts), null));
}

function assemble(name: string, o: ResolvedResNetOptions, rng: Random | null): Model {
  const spec = RESNET_SPECS[name]!;

  const graph = new Graph({ name });
  graph.inputs.push({ name: 'input', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', o.inChannels, o.imageSize, o.imageSize] }) });
  const L = new LayerEmitter(new GraphBuilder(graph), rng, o.norm, o.groups);

  let x = 'input';
  let channels: number;
  if (spec.style === 'cifar') {
    channels = spec.widths[0]!;
    x = L.relu('stem.relu', L.normalize('stem.', '', L.conv('stem.conv', x, o.inChannels, channels, 3, 1), channels));
  } else {
    channels = spec.widths[0]!;
    x = L.relu('stem.relu', L.normalize('stem.', '', L.conv('stem.conv', x, o.inChannels, channels, 7, 2), channels));
    x = L.maxPool('stem.maxpool', x, 3, 2, 1);
  }

  spec.blocks.forEach((count, s) => {
    const width = spec.widths[s]!;
    for (let i = 0; i < count; i++) {
      const stride = s > 0 && i === 0 ? 2 : 1;
      x = basicBlock(L, `stage${s + 1}.block${i}.`, x, channels, width, stride);
      channels = width;
    }
  });

  L.classifier('head.', x, channels, o.classes, 'logits');
  graph.outputs.push({ name: 'logits', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', o.classes] }) });

  const proto = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'rp-onnx',
    producerVersion: PRODUCER_VERSION,
    docString: `${name}: ${describe(spec)}`,
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: OPSET })],
  });
  const model = new Model(proto, graph);
  model.setMetadata('rp-onnx.version', PRODUCER_VERSION);
  model.setMetadata('rp-onnx.builder', JSON.stringify({ model: name, ...o }));
  return model;
}

/** conv-norm-relu-conv-norm, Add(branch, skip), ReLU; a projection skip where the shape changes. */
function basicBlock(L: LayerEmitter, p: string, x: string, cin: number, cout: number, stride: number): string {
  let h = L.relu(`${p}relu1`, L.normalize(p, '1', L.conv(`${p}conv1`, x, cin, cout, 3, stride), cout));
  h = L.normalize(p, '2', L.conv(`${p}conv2`, h, cout, cout, 3, 1), cout);
  const skip = stride !== 1 || cin !== cout
    ? L.normalize(`${p}shortcut.`, '', L.conv(`${p}shortcut.conv`, x, cin, cout, 1, stride), cout)
    : x;
  return L.relu(`${p}relu2`, L.add(`${p}add`, h, skip));
}

function describe(spec: ResNetSpec): string {
  const stages = spec.blocks.map((n, i) => `${n}x${spec.widths[i]}`).join(', ');
  return spec.style === 'cifar'
    ? `CIFAR-style ResNet (He et al. 2016), basic blocks per stage ${stages}, option-B projection shortcuts`
    : `ImageNet-style ResNet (He et al. 2016), basic blocks per stage ${stages}, projection shortcuts`;
}
