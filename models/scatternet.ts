/**
 * ScatterNet + linear (Tramer & Boneh 2021, "Differentially private learning needs better
 * features (or much more data)"): a fixed 2-D scattering transform (J = 2 scales, L = 8
 * orientations, Morlet wavelets; models/scattering-filters.ts), GroupNorm without affine
 * parameters, and one linear layer. Only the linear layer is trained, so DP-SGD clips and noises
 * 81 * 7 * 7 * 10 + 10 = 39,700 parameters for 1x28x28 input; the paper reports 89.7% on
 * Fashion-MNIST at (3, 1e-5)-DP with it (its repository's README table).
 *
 * The scattering is ordinary ONNX ops with its filters as Constant nodes (not initializers):
 * nothing can train them, and no trainer counts them in a per-example gradient or its norm.
 * For each input channel (the transform treats channels separately, as kymatio does):
 *
 *   S0          = (x * phi) subsampled by 2^J
 *   S1[j1,l1]   = (|x * psi_{j1,l1}| * phi) subsampled by 2^J
 *   S2[j1,l1,j2,l2] = (||x * psi_{j1,l1}| * psi_{j2,l2}| * phi) subsampled by 2^J, j1 < j2
 *
 * Complex wavelets are pairs of real Convs (real and imaginary parts as output channels) and the
 * modulus is ReduceL2 over the pair. Every convolution runs at full resolution on the image
 * padded by reflection (no periodisation), and the low-pass is one depthwise Conv with stride
 * 2^J. Channel order: S0, then S1 by (j1, l1), then S2 by (j1, l1, j2, l2); 1 + 16 + 64 = 81 for
 * J = 2, L = 8, each 7x7 for 28x28 input (ceil(28 / 4)).
 *
 * GroupNorm uses only the example's own features (no batch statistics), so it costs no privacy;
 * 27 groups of 3 channels is the paper's Fashion-MNIST setting (README: --num_groups=27).
 *
 * `part` builds the pieces separately, with the same names: 'features' (image -> scattering)
 * and 'head' (scattering -> logits). The features are a fixed function of each example alone,
 * so DP training may compute them once and train the head on them (as the paper's code does);
 * the head's trained initializers drop into the full model unchanged.
 */
import { Graph, Model, makeTensorTypeProto } from '../src/graph/ir.js';
import { GraphBuilder, float } from '../src/graph/builder.js';
import { float32Tensor, int64Tensor } from '../src/graph/tensor.js';
import { onnx } from '../src/graph/onnx.js';
import { Random } from '../src/random.js';
import { RpOnnxError } from '../src/errors.js';
import { emitGroupNorm, groupNormConstants } from '../src/passes/group-norm.js';
import { countParameters, type ParameterCount } from './parameters.js';
import { PRODUCER_VERSION, type ResNetOptions, type ResolvedResNetOptions } from './resnet.js';
import { checkModelOptions } from './layers.js';
import { scatteringChannels, scatteringFilterBank, waveletRadius, type ScatteringSpec } from './scattering-filters.js';
import type { BuiltinModel } from './index.js';

const OPSET = 17;
/** Tramer & Boneh's scattering (kymatio Scattering2D(J=2) with its default L = 8). */
export const SCATTERNET_SPEC: ScatteringSpec = Object.freeze({ J: 2, L: 8 });
/** Their GroupNorm groups on Fashion-MNIST. */
export const SCATTERNET_DEFAULT_GROUPS = 27;

export type ScatterNetPart = 'full' | 'features' | 'head';

/** Geometry of the scattering output for an input of `channels` x `size` x `size`. */
export function scatterNetGeometry(channels: number, size: number, spec: ScatteringSpec = SCATTERNET_SPEC): { channels: number; size: number } {
  return { channels: channels * scatteringChannels(spec), size: Math.ceil(size / 2 ** spec.J) };
}

/**
 * Defaults: 1 x 28 x 28, 10 classes, GroupNorm with 27 groups, seed 0. `norm` is 'group' or
 * 'none' (no normalisation of the features); the groups must divide the feature channels.
 */
export function resolveScatterNetOptions(opts: ResNetOptions = {}): ResolvedResNetOptions {
  const r: ResolvedResNetOptions = {
    inChannels: opts.inChannels ?? 1, classes: opts.classes ?? 10, imageSize: opts.imageSize ?? 28,
    norm: opts.norm ?? 'group', groups: opts.groups ?? SCATTERNET_DEFAULT_GROUPS, seed: opts.seed ?? 0,
  };
  checkModelOptions(r);
  if (r.norm === 'batch') throw new RpOnnxError('norm batch: scatternet-linear normalises its features per example (group) or not at all (none); batch statistics would cost privacy', { param: 'norm' });
  if (r.norm === 'none') r.groups = 1;
  const g = scatterNetGeometry(r.inChannels, r.imageSize);
  if (r.norm === 'group' && g.channels % r.groups !== 0) throw new RpOnnxError(`groups ${r.groups} must divide the ${g.channels} scattering channels`, { param: 'groups' });
  if (r.imageSize < 2 * waveletRadius(SCATTERNET_SPEC.J - 1, SCATTERNET_SPEC.L)) {
    throw new RpOnnxError(`imageSize ${r.imageSize} is too small for the scattering: it needs at least ${2 * waveletRadius(SCATTERNET_SPEC.J - 1, SCATTERNET_SPEC.L)} pixels (reflection padding of its widest filter)`, { param: 'imageSize' });
  }
  return r;
}

export function buildScatterNet(opts: ResNetOptions = {}, part: ScatterNetPart = 'full'): Model {
  const o = resolveScatterNetOptions(opts);
  return assemble(o, new Random(o.seed), part);
}

export function scatterNetParameterCount(opts: ResNetOptions = {}): ParameterCount {
  return countParameters(assemble(resolveScatterNetOptions(opts), null, 'full'));
}

/** Weights of a convolution computing x * f (true convolution: the kernel flipped for Conv's correlation). */
function flipped(f: Float64Array, radius: number): Float32Array {
  const k = 2 * radius + 1;
  const out = new Float32Array(k * k);
  for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) out[y * k + x] = f[(k - 1 - y) * k + (k - 1 - x)]!;
  return out;
}

function emitScattering(b: GraphBuilder, input: string, o: ResolvedResNetOptions, spec: ScatteringSpec): string {
  const { J, L } = spec;
  const bank = scatteringFilterBank(spec);
  const s = o.imageSize;
  const constant = (name: string, data: ArrayLike<number>, dims: number[]) =>
    b.op1('Constant', [], { value: float32Tensor(name, data, dims) }, { name });
  const ints = (name: string, values: number[]) => b.op1('Constant', [], { value: int64Tensor(name, values) }, { name });
  const pad = (name: string, x: string, r: number) =>
    b.op1('Pad', [x, ints(`${name}.pads`, [0, 0, r, r, 0, 0, r, r])], { mode: 'reflect' }, { name });

  // Wavelets of scale j as 2L single-channel kernels: real parts of l = 0..L-1, then imaginary parts.
  const waveletKernels = (j: number): { data: Float32Array; radius: number } => {
    const ws = bank.psi.filter((p) => p.j === j);
    const radius = ws[0]!.radius;
    const k = (2 * radius + 1) ** 2;
    const data = new Float32Array(2 * L * k);
    ws.forEach((w, l) => {
      data.set(flipped(w.re, radius), l * k);
      data.set(flipped(w.im, radius), (L + l) * k);
    });
    return { data, radius };
  };
  // Side of the grid at resolution r (Conv with padding = radius and stride 2^r: ceil(s / 2^r)).
  const side = (r: number) => Math.floor((s - 1) / 2 ** r) + 1;
  const checkPad = (radius: number, r: number) => {
    if (radius >= side(r)) throw new RpOnnxError(`imageSize ${s} is too small for the scattering: a ${2 * radius + 1}-tap filter on a ${side(r)}-pixel grid`, { param: 'imageSize' });
  };
  /**
   * |u * psi_{j,l}| for l = 0..L-1 and each of the `channels` channels of u (at resolution
   * `from`), subsampled to resolution j: [N, channels * L, side(j), side(j)], channel-major.
   * The channels are folded into the batch for one single-input Conv with the 2L real kernels
   * (onnxruntime runs that about 8x faster than the same work as a grouped Conv); the modulus is
   * ReduceL2 over the (re, im) axis.
   */
  const wavelet = (name: string, u: string, from: number, j: number, channels: number) => {
    const { data, radius } = waveletKernels(j - from);
    checkPad(radius, from);
    const k = 2 * radius + 1;
    const stride = 2 ** (j - from);
    const [h, h2] = [side(from), side(j)];
    const folded = channels === 1 ? u : b.op1('Reshape', [u, ints(`${name}.fold`, [-1, 1, h, h])], {}, { name: `${name}.fold` });
    const w = constant(`${name}.psi`, data, [2 * L, 1, k, k]);
    const y = b.op1('Conv', [pad(`${name}.pad`, folded, radius), w], { kernel_shape: [k, k], strides: [stride, stride], pads: [0, 0, 0, 0], group: 1 }, { name });
    const split = b.op1('Reshape', [y, ints(`${name}.split`, [-1, channels, 2, L, h2, h2])], {}, { name: `${name}.split` });
    const m = b.op1('ReduceL2', [split], { axes: [2], keepdims: 0 }, { name: `${name}.modulus` });
    return b.op1('Reshape', [m, ints(`${name}.merge`, [-1, channels * L, h2, h2])], {}, { name: `${name}.merge` });
  };

  const x = b.op1('Reshape', [input, ints('scattering.per_channel', [-1, 1, s, s])], {}, { name: 'scattering.per_channel' });
  // Signals to low-pass, by resolution: S0 and S1[0] at full resolution, S1[j] and S2[., j] at j.
  const byResolution: { names: string[]; channels: number }[] = Array.from({ length: J }, () => ({ names: [], channels: 0 }));
  const add = (r: number, u: string, channels: number) => {
    byResolution[r]!.names.push(u);
    byResolution[r]!.channels += channels;
  };
  add(0, x, 1);
  const first: string[] = [];
  for (let j = 0; j < J; j++) {
    first.push(wavelet(`scattering.order1.j${j}`, x, 0, j, 1));
    add(j, first[j]!, L);
  }
  for (let j2 = 1; j2 < J; j2++) {
    for (let j1 = 0; j1 < j2; j1++) add(j2, wavelet(`scattering.order2.j${j1}.j${j2}`, first[j1]!, j1, j2, L), L * L);
  }
  const outputs = byResolution.map(({ names, channels }, r) => {
    const phi = bank.phi[r]!;
    checkPad(phi.radius, r);
    const k = 2 * phi.radius + 1;
    const one = flipped(phi.data, phi.radius);
    const kernels = new Float32Array(channels * k * k);
    for (let c = 0; c < channels; c++) kernels.set(one, c * k * k);
    const stride = 2 ** (J - r);
    const name = `scattering.lowpass.r${r}`;
    const all = names.length === 1 ? names[0]! : b.op1('Concat', names, { axis: 1 }, { name: `${name}.paths` });
    return b.op1('Conv', [pad(`${name}.pad`, all, phi.radius), constant(`${name}.phi`, kernels, [channels, 1, k, k])],
      { kernel_shape: [k, k], strides: [stride, stride], pads: [0, 0, 0, 0], group: channels }, { name });
  });
  const low = outputs.length === 1 ? outputs[0]! : b.op1('Concat', outputs, { axis: 1 }, { name: 'scattering.concat' });
  const g = scatterNetGeometry(o.inChannels, s, spec);
  return b.op('Reshape', [low, ints('scattering.per_example', [-1, g.channels, g.size, g.size])], {}, { name: 'scattering.per_example', outputs: ['scattering'] })[0]!;
}

function emitHead(b: GraphBuilder, features: string, o: ResolvedResNetOptions, rng: Random | null, channels: number, size: number): void {
  let x = features;
  if (o.norm === 'group') {
    // affine = False (the paper's nn.GroupNorm(groups, K, affine=False)): scale and shift are constants.
    const ones = b.op1('Constant', [], { value: float32Tensor('gn.scale', new Float32Array(channels).fill(1), [channels, 1, 1]) }, { name: 'gn.scale' });
    const zeros = b.op1('Constant', [], { value: float32Tensor('gn.shift', new Float32Array(channels), [channels, 1, 1]) }, { name: 'gn.shift' });
    x = emitGroupNorm(b, groupNormConstants(b, o.groups, OPSET, 'gn'), 'gn', x, ones, zeros);
  }
  const flat = b.op1('Flatten', [x], { axis: 1 }, { name: 'flatten' });
  const fin = channels * size * size;
  const bound = 1 / Math.sqrt(fin);
  const uniform = (n: number) => Float32Array.from({ length: n }, () => (rng ? (2 * rng.uniform() - 1) * bound : 0));
  const w = b.initializer('fc.weight', [o.classes, fin], uniform(o.classes * fin));
  const bias = b.initializer('fc.bias', [o.classes], uniform(o.classes));
  b.op('Gemm', [flat, w, bias], { transB: 1, alpha: float(1), beta: float(1) }, { name: 'fc', outputs: ['logits'] });
}

function assemble(o: ResolvedResNetOptions, rng: Random | null, part: ScatterNetPart): Model {
  const graph = new Graph({ name: part === 'full' ? 'scatternet-linear' : `scatternet-linear.${part}` });
  const geo = scatterNetGeometry(o.inChannels, o.imageSize);
  const b = new GraphBuilder(graph);
  const imageType = makeTensorTypeProto({ dtype: 'float32', shape: ['N', o.inChannels, o.imageSize, o.imageSize] });
  const featureType = makeTensorTypeProto({ dtype: 'float32', shape: ['N', geo.channels, geo.size, geo.size] });
  if (part === 'head') {
    graph.inputs.push({ name: 'scattering', type: featureType });
  } else {
    graph.inputs.push({ name: 'input', type: imageType });
    emitScattering(b, 'input', o, SCATTERNET_SPEC);
  }
  if (part === 'features') {
    graph.outputs.push({ name: 'scattering', type: featureType });
  } else {
    emitHead(b, 'scattering', o, rng, geo.channels, geo.size);
    graph.outputs.push({ name: 'logits', type: makeTensorTypeProto({ dtype: 'float32', shape: ['N', o.classes] }) });
  }
  const proto = onnx.ModelProto.create({
    irVersion: 8, producerName: 'rp-onnx', producerVersion: PRODUCER_VERSION,
    docString: `scatternet-linear${part === 'full' ? '' : ` (${part})`}: fixed scattering transform (J ${SCATTERNET_SPEC.J}, L ${SCATTERNET_SPEC.L}, Morlet; ${geo.channels} x ${geo.size} x ${geo.size}), `
      + `${o.norm === 'group' ? `GroupNorm (${o.groups} groups, no affine), ` : ''}linear -> ${o.classes} (Tramer & Boneh 2021)`,
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: OPSET })],
  });
  const model = new Model(proto, graph);
  model.setMetadata('rp-onnx.version', PRODUCER_VERSION);
  model.setMetadata('rp-onnx.builder', JSON.stringify({ model: 'scatternet-linear', ...o, scattering: { ...SCATTERNET_SPEC, wavelet: 'morlet' }, ...(part === 'full' ? {} : { part }) }));
  return model;
}

export const SCATTERNET_LINEAR_MODEL: BuiltinModel = {
  name: 'scatternet-linear', depth: 1, style: 'mnist',
  description: 'Tramer & Boneh 2021 ScatterNet + linear for DP-SGD: fixed scattering (J 2, L 8, Morlet; 81 x 7 x 7 on 1x28x28, filters as constants), GroupNorm (27 groups, no affine), linear; only the linear layer trains',
  build: (opts?: ResNetOptions) => buildScatterNet(opts),
  parameters: scatterNetParameterCount,
  resolve: resolveScatterNetOptions,
};
