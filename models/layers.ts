/**
 * The layers the built-in models are made of, each emitted as standard ONNX nodes with its
 * parameters as initializers and initialised the way the reference implementations do:
 * convolutions He-normal (std sqrt(2 / fan_in), He et al. 2015), normalisation scale 1 and
 * shift 0, the classifier like PyTorch's nn.Linear default (uniform +-1/sqrt(fan_in)).
 *
 * Node and initializer names follow the module path a PyTorch user would expect
 * ('stage2.block0.conv1', 'stage2.block0.conv1.weight'), because users see them in inspect
 * and perturb tables and address them in --freeze patterns.
 */
import { GraphBuilder, float } from '../src/graph/builder.js';
import { Random } from '../src/random.js';
import { RpOnnxError } from '../src/errors.js';
import { emitGroupNorm, groupNormConstants, type GroupNormConstants } from '../src/passes/group-norm.js';


/** Normalisation after each convolution. 'none' gives the convolutions biases instead. */
export type NormKind = 'batch' | 'group' | 'none';
export const NORM_KINDS: readonly NormKind[] = ['batch', 'group', 'none'];

/**
 * The options every built-in model takes (one set, so `models create` has one set of flags).
 * Each family documents its defaults in its resolve function and refuses what it cannot build
 * (dp-cnn and lenet have no normalisation: only norm 'none').
 */
export interface ModelOptions {
  /** Input channels: 3 for CIFAR/ImageNet, 1 for (Fashion-)MNIST. */
  inChannels?: number;
  /** Output classes. */
  classes?: number;
  /** Height and width of the declared input. */
  imageSize?: number;
  /** Normalisation after each convolution. */
  norm?: NormKind;
  /** Groups of GroupNormalization when norm is 'group'. */
  groups?: number;
  /** Seed of the weight initialisation. Default 0. */
  seed?: number;
}

/** The checks every family's resolved options need: positive integer sizes and an integer seed. */
export function checkModelOptions(r: Required<ModelOptions>): void {
  const positive = (flag: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new RpOnnxError(`${flag} must be a positive integer, got ${v}`);
  };
  positive('--in-channels', r.inChannels);
  positive('--classes', r.classes);
  positive('--image-size', r.imageSize);
  positive('--groups', r.groups);
  if (!Number.isInteger(r.seed)) throw new RpOnnxError(`--seed must be an integer, got ${r.seed}`);
}

/** PyTorch's defaults for BatchNorm2d and GroupNorm. */
const BN_EPSILON = 1e-5;
const BN_MOMENTUM = 0.9; // ONNX momentum = 1 - PyTorch momentum (0.1)


export class LayerEmitter {
  constructor(
    readonly b: GraphBuilder,
    /** null builds a skeleton with all-zero weights (counting parameters without the cost of sampling). */
    readonly rng: Random | null,
    readonly norm: NormKind,
    /** Groups of GroupNormalization; must divide every channel count. */
    readonly groups: number,
  ) {}

  private groupConstants?: GroupNormConstants;

  private weight(name: string, dims: number[], fill: (out: Float32Array) => void): string {
    const data = new Float32Array(dims.reduce((a, c) => a * c, 1));
    fill(data);
    return this.b.initializer(name, dims, data);
  }
  private constant(name: string, dims: number[], value: number): string {
    return this.weight(name, dims, (d) => d.fill(value));
  }
  private uniform(name: string, dims: number[], bound: number): string {
    return this.weight(name, dims, (d) => {
      const rng = this.rng;
      if (rng) for (let i = 0; i < d.length; i++) d[i] = (2 * rng.uniform() - 1) * bound;
    });
  }

  /**
   * A square convolution with 'same'-style padding (k/2), He-normal weights, and a bias (PyTorch
   * default init) only when the model has no normalisation to absorb it.
   */
  conv(name: string, x: string, cin: number, cout: number, kernel: number, stride: number): string {
    const fanIn = cin * kernel * kernel;
    const w = this.weight(`${name}.weight`, [cout, cin, kernel, kernel], (d) => this.rng?.fillNormal(d, Math.sqrt(2 / fanIn)));
    const inputs = [x, w];
    if (this.norm === 'none') inputs.push(this.uniform(`${name}.bias`, [cout], 1 / Math.sqrt(fanIn)));
    const p = Math.floor(kernel / 2);
    return this.b.op1('Conv', inputs, {
      kernel_shape: [kernel, kernel], strides: [stride, stride], pads: [p, p, p, p], dilations: [1, 1], group: 1,
    }, { name });
  }

  /**
   * The normalisation that follows a convolution, named `<prefix>bn<suffix>` or
   * `<prefix>gn<suffix>`; identity for 'none'.
   */
  normalize(prefix: string, suffix: string, x: string, channels: number): string {
    if (this.norm === 'batch') {
      const name = `${prefix}bn${suffix}`;
      const inputs = [
        x,
        this.constant(`${name}.weight`, [channels], 1),
        this.constant(`${name}.bias`, [channels], 0),
        this.constant(`${name}.running_mean`, [channels], 0),
        this.constant(`${name}.running_var`, [channels], 1),
      ];
      // Inference form (one output); the training engine rewrites it to use batch statistics.
      return this.b.op1('BatchNormalization', inputs, { epsilon: float(BN_EPSILON), momentum: float(BN_MOMENTUM) }, { name });
    }
    if (this.norm === 'group') return this.groupNorm(`${prefix}gn${suffix}`, x, channels);
    return x;
  }

  /** GroupNorm in elementary ops (src/passes/group-norm.ts says why). */
  private groupNorm(name: string, x: string, channels: number): string {
    this.groupConstants ??= groupNormConstants(this.b, this.groups, 17);
    const scale = this.constant(`${name}.weight`, [channels, 1, 1], 1);
    const shift = this.constant(`${name}.bias`, [channels, 1, 1], 0);
    return emitGroupNorm(this.b, this.groupConstants, name, x, scale, shift);
  }

  relu(name: string, x: string): string {
    return this.b.op1('Relu', [x], {}, { name });
  }

  /** A residual join: a plain Add whose operands are (branch output, skip). */
  add(name: string, branch: string, skip: string): string {
    return this.b.op1('Add', [branch, skip], {}, { name });
  }

  maxPool(name: string, x: string, kernel: number, stride: number, pad: number): string {
    return this.b.op1('MaxPool', [x], { kernel_shape: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad] }, { name });
  }

  /** Global average pool, flatten, fully connected layer; writes `output`. */
  classifier(prefix: string, x: string, features: number, classes: number, output: string): string {
    const pooled = this.b.op1('GlobalAveragePool', [x], {}, { name: `${prefix}pool` });
    const flat = this.b.op1('Flatten', [pooled], { axis: 1 }, { name: `${prefix}flatten` });
    const bound = 1 / Math.sqrt(features);
    const w = this.uniform(`${prefix}fc.weight`, [classes, features], bound);
    const bias = this.uniform(`${prefix}fc.bias`, [classes], bound);
    return this.b.op('Gemm', [flat, w, bias], { transB: 1, alpha: float(1), beta: float(1) }, { name: `${prefix}fc`, outputs: [output] })[0]!;
  }
}
