/**
 * The end-to-end tanh CNN of DP-SGD's literature for MNIST-sized images (Papernot, Thakurta,
 * Song, Chien, Erlingsson 2021, "Tempered sigmoid activations for deep learning with
 * differential privacy", table 1; the same network in Tramèr & Boneh 2021, "Differentially
 * private learning needs better features (or much more data)", their end-to-end CNN baseline):
 *
 *   conv 16 8x8 stride 2 pad 3, tanh, maxpool 2x2 stride 1,
 *   conv 32 4x4 stride 2,       tanh, maxpool 2x2 stride 1,
 *   flatten, fc 32, tanh, fc classes
 *
 * For 1x28x28 that is 28 -> 14 -> 13 -> 5 -> 4, 32*4*4 = 512 features and 26,010 parameters.
 * No normalisation layer: nothing mixes examples, so per-example gradients are exact. Weights
 * and biases are initialised as PyTorch's nn.Conv2d / nn.Linear defaults (the papers' code
 * uses them): uniform +-1/sqrt(fan_in).
 */
import { Graph, Model, makeTensorTypeProto } from '../src/graph/ir.js';
import { GraphBuilder, float } from '../src/graph/builder.js';
import { onnx } from '../src/graph/onnx.js';
import { Random } from '../src/random.js';
import { RpOnnxError } from '../src/errors.js';
import { countParameters, type ParameterCount } from './parameters.js';
import { checkModelOptions, type ModelOptions } from './layers.js';

const OPSET = 17;
const IR_VERSION = 8;
const PRODUCER_VERSION = '0.1.0';

/** Defaults: 1 channel, 10 classes, 28x28; only norm 'none' (no normalisation); groups unused. */
export type DpCnnOptions = ModelOptions;

export type ResolvedDpCnnOptions = Required<DpCnnOptions>;

/** Output size of a convolution or pool along one axis (floor mode, as PyTorch and ONNX). */
const out = (size: number, kernel: number, stride: number, pad: number) => Math.floor((size + 2 * pad - kernel) / stride) + 1;

/** Spatial sizes after each layer, for an input of `s` x `s`. */
export function dpCnnGeometry(s: number): { conv1: number; pool1: number; conv2: number; pool2: number } {
  const conv1 = out(s, 8, 2, 3);
  const pool1 = out(conv1, 2, 1, 0);
  const conv2 = out(pool1, 4, 2, 0);
  const pool2 = out(conv2, 2, 1, 0);
  return { conv1, pool1, conv2, pool2 };
}

export function resolveDpCnnOptions(opts: DpCnnOptions = {}): ResolvedDpCnnOptions {
  const r: ResolvedDpCnnOptions = {
    inChannels: opts.inChannels ?? 1,
    classes: opts.classes ?? 10,
    imageSize: opts.imageSize ?? 28,
    norm: opts.norm ?? 'none',
    groups: opts.groups ?? 1,
    seed: opts.seed ?? 0,
  };
  checkModelOptions(r);
  if (r.norm !== 'none') throw new RpOnnxError(`--norm ${r.norm}: dp-cnn has no normalisation layers (tanh CNN); leave --norm out`);
  if (dpCnnGeometry(r.imageSize).pool2 < 1) throw new RpOnnxError(`--image-size ${r.imageSize} is too small for dp-cnn: it needs at least 14`);
  return r;
}

export function buildDpCnn(opts: DpCnnOptions = {}): Model {
  const o = resolveDpCnnOptions(opts);
  return assemble(o, new Random(o.seed));
}

export function dpCnnParameterCount(opts: DpCnnOptions = {}): ParameterCount {
  return countParameters(assemble(resolveDpCnnOptions(opts), null));
}

function assemble(o: ResolvedDpCnnOptions, rng: Random | null): Model {
  const graph = new Graph({ name: 'dp-cnn' });
  graph.inputs.push({ name: 'input', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', o.inChannels, o.imageSize, o.imageSize] }) });
  const b = new GraphBuilder(graph);
  const uniform = (name: string, dims: number[], fanIn: number) => {
    const data = new Float32Array(dims.reduce((a, c) => a * c, 1));
    const bound = 1 / Math.sqrt(fanIn);
    if (rng) for (let i = 0; i < data.length; i++) data[i] = (2 * rng.uniform() - 1) * bound;
    return b.initializer(name, dims, data);
  };
  const conv = (name: string, x: string, cin: number, cout: number, k: number, stride: number, pad: number) => {
    const fanIn = cin * k * k;
    const w = uniform(`${name}.weight`, [cout, cin, k, k], fanIn);
    const bias = uniform(`${name}.bias`, [cout], fanIn);
    return b.op1('Conv', [x, w, bias], { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad], dilations: [1, 1], group: 1 }, { name });
  };
  const pool = (name: string, x: string) => b.op1('MaxPool', [x], { kernel_shape: [2, 2], strides: [1, 1], pads: [0, 0, 0, 0] }, { name });
  const tanh = (name: string, x: string) => b.op1('Tanh', [x], {}, { name });
  const fc = (name: string, x: string, fin: number, fout: number, output?: string) => {
    const w = uniform(`${name}.weight`, [fout, fin], fin);
    const bias = uniform(`${name}.bias`, [fout], fin);
    return b.op('Gemm', [x, w, bias], { transB: 1, alpha: float(1), beta: float(1) }, { name, outputs: output ? [output] : 1 })[0]!;
  };

  const g = dpCnnGeometry(o.imageSize);
  let x = pool('pool1', tanh('tanh1', conv('conv1', 'input', o.inChannels, 16, 8, 2, 3)));
  x = pool('pool2', tanh('tanh2', conv('conv2', x, 16, 32, 4, 2, 0)));
  x = b.op1('Flatten', [x], { axis: 1 }, { name: 'flatten' });
  x = tanh('tanh3', fc('fc1', x, 32 * g.pool2 * g.pool2, 32));
  fc('fc2', x, 32, o.classes, 'logits');
  graph.outputs.push({ name: 'logits', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', o.classes] }) });

  const proto = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'rp-onnx',
    producerVersion: PRODUCER_VERSION,
    docString: 'dp-cnn: the end-to-end tanh CNN of Papernot et al. 2021 / Tramer & Boneh 2021 (conv16 8x8/2, tanh, maxpool 2/1, conv32 4x4/2, tanh, maxpool 2/1, fc32, tanh, fc)',
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: OPSET })],
  });
  const model = new Model(proto, graph);
  model.setMetadata('rp-onnx.version', PRODUCER_VERSION);
  model.setMetadata('rp-onnx.builder', JSON.stringify({ model: 'dp-cnn', ...o }));
  return model;
}
