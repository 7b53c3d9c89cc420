/**
 * The LeNet of DLG (Zhu, Liu, Han 2019, "Deep Leakage from Gradients"), the model the
 * gradient-leakage literature attacks first: three 5x5 convolutions with 12 channels (strides
 * 2, 2, 1, padding 2), each followed by a sigmoid, then one fully connected layer to the logits.
 * Every weight and bias is drawn from U(-0.5, 0.5), DLG's initialisation (their `weights_init`);
 * smooth activations and no pooling make the gradient an injective-looking, twice
 * differentiable function of the input, which is why DLG recovers it almost exactly.
 * On 32x32 RGB it has DLG's 768-wide head; on 28x28 Fashion-MNIST 588.
 */
import { Graph, Model, makeTensorTypeProto } from '../src/graph/ir.js';
import { GraphBuilder } from '../src/graph/builder.js';
import { onnx } from '../src/graph/onnx.js';
import { Random } from '../src/random.js';
import { countParameters, type ParameterCount } from './parameters.js';
import { PRODUCER_VERSION, type ResNetOptions, type ResolvedResNetOptions } from './resnet.js';
import { checkModelOptions } from './layers.js';
import type { BuiltinModel } from './index.js';

const WIDTH = 12;
const LAYERS: readonly { stride: number }[] = [{ stride: 2 }, { stride: 2 }, { stride: 1 }];

/**
 * Defaults: 1 x 28 x 28 (Fashion-MNIST), 10 classes, seed 0. The LeNet has no normalisation
 * layers, so `norm` and `groups` (the CLI passes its ResNet default) are recorded as 'none' and 1.
 */
export function resolveLeNetOptions(opts: ResNetOptions = {}): ResolvedResNetOptions {
  const r: ResolvedResNetOptions = {
    inChannels: opts.inChannels ?? 1, classes: opts.classes ?? 10, imageSize: opts.imageSize ?? 28,
    norm: 'none', groups: 1, seed: opts.seed ?? 0,
  };
  checkModelOptions(r);
  return r;
}

function assemble(o: ResolvedResNetOptions, rng: Random | null): Model {
  const g = new Graph({ name: 'lenet' });
  g.inputs.push({ name: 'input', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', o.inChannels, o.imageSize, o.imageSize] }) });
  const b = new GraphBuilder(g);
  const uniform = (n: number) => Float32Array.from({ length: n }, () => (rng ? rng.uniform() - 0.5 : 0));
  let x = 'input';
  let cin = o.inChannels;
  let size = o.imageSize;
  LAYERS.forEach(({ stride }, i) => {
    const w = b.initializer(`conv${i + 1}.weight`, [WIDTH, cin, 5, 5], uniform(WIDTH * cin * 25));
    const bias = b.initializer(`conv${i + 1}.bias`, [WIDTH], uniform(WIDTH));
    const conv = b.op1('Conv', [x, w, bias], { kernel_shape: [5, 5], pads: [2, 2, 2, 2], strides: [stride, stride] }, { name: `conv${i + 1}` });
    x = b.op1('Sigmoid', [conv], {}, { name: `sigmoid${i + 1}` });
    cin = WIDTH;
    size = Math.floor((size + 4 - 5) / stride) + 1;
  });
  const features = WIDTH * size * size;
  const flat = b.op1('Flatten', [x], { axis: 1 }, { name: 'flatten' });
  const w = b.initializer('fc.weight', [o.classes, features], uniform(o.classes * features));
  const bias = b.initializer('fc.bias', [o.classes], uniform(o.classes));
  b.op('Gemm', [flat, w, bias], { transB: 1 }, { outputs: ['logits'], name: 'fc' });
  g.outputs.push({ name: 'logits', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', o.classes] }) });
  const proto = onnx.ModelProto.create({
    irVersion: 8, producerName: 'rp-onnx', producerVersion: PRODUCER_VERSION,
    docString: `lenet: DLG's sigmoid LeNet, 3 conv 5x5 x ${WIDTH} (strides 2, 2, 1) + linear ${features} -> ${o.classes}, U(-0.5, 0.5) init`,
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 17 })],
  });
  const model = new Model(proto, g);
  model.setMetadata('rp-onnx.version', PRODUCER_VERSION);
  model.setMetadata('rp-onnx.builder', JSON.stringify({ model: 'lenet', ...o }));
  return model;
}

export function buildLeNet(opts: ResNetOptions = {}): Model {
  const o = resolveLeNetOptions(opts);
  return assemble(o, new Random(o.seed));
}

export function leNetParameterCount(opts: ResNetOptions = {}): ParameterCount {
  return countParameters(assemble(resolveLeNetOptions(opts), null));
}

export const LENET_MODEL: BuiltinModel = {
  name: 'lenet', depth: 4, style: 'cifar',
  description: "DLG's LeNet: three 5x5 convs (12 channels, strides 2/2/1) with sigmoids + linear head, U(-0.5, 0.5) weights (1x28x28 by default)",
  build: buildLeNet, parameters: leNetParameterCount, resolve: resolveLeNetOptions,
};
