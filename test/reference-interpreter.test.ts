/**
 * The float64 reference interpreter (src/reference) against two independent implementations:
 *  1. onnxruntime-node (float32): one tiny model per op / attribute combination, built with
 *     GraphBuilder and run in both; every op the interpreter registers must have a case here
 *     unless listed in NOT_COMPARABLE_WITH_ORT with a reason.
 *  2. The ONNX backend node tests shipped by Debian's libonnx-testdata (expected outputs
 *     computed by ONNX's numpy reference): every test whose ops are all implemented and whose
 *     inputs/outputs are float/double/int64/bool runs; exclusions are listed with reasons.
 * Plus whole-model cross-checks (exported fixture CNNs and transformers) and the API's
 * deterministic-randomness, override and error behaviour.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { Graph, Model, makeTensorTypeProto, tensorTypeOf } from '../src/graph/ir.js';
import { GraphBuilder, float, floats, type BuilderAttr } from '../src/graph/builder.js';
import { onnx } from '../src/graph/onnx.js';
import { encodeModel, loadModel } from '../src/graph/io.js';
import { makeTensor, type DType } from '../src/graph/tensor.js';
import { Random } from '../src/random.js';
import { evaluate, f64, i64, isSupported, supportedOps, type RefTensor } from '../src/reference/interpreter.js';
import { fromProto, toRef } from '../src/reference/tensor.js';
import { erf, erfc } from '../src/reference/special.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const rng = new Random(20240611);

// ---------------------------------------------------------------------------------------------
// Tiny single-node models run in onnxruntime (float32) and in the interpreter (float64).

type Kind = 'float' | 'int64' | 'bool';
interface InSpec {
  kind: Kind;
  dims: number[];
  /** bigint only for int64 values beyond 2^53 (INT64_MAX sentinels). */
  data: (number | bigint)[];
  /** Stored as an initializer instead of a graph input (shapes, axes, weights). */
  init: boolean;
}
interface OrtCase {
  name: string;
  op: string;
  inputs: (InSpec | null)[];
  attrs?: Record<string, BuilderAttr>;
  /** Output kinds; default one float output. */
  outs?: Kind[];
  opset?: number;
  /** Relative tolerance (against max(|expected|, 1)); default 1e-5. */
  tol?: number;
}

const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const f32 = (v: number) => Math.fround(v);
/** Random float32 input: normal, or uniform in [lo, hi). */
function F(dims: number[], range?: [number, number]): InSpec {
  const data = Array.from({ length: count(dims) }, () => f32(range ? range[0] + (range[1] - range[0]) * rng.uniform() : rng.normal()));
  return { kind: 'float', dims, data, init: false };
}
/** A float32 weight stored as an initializer. */
const W = (dims: number[], range?: [number, number]): InSpec => ({ ...F(dims, range), init: true });
const V = (dims: number[], data: number[]): InSpec => ({ kind: 'float', dims, data: data.map(f32), init: false });
/** int64 constant (an initializer). */
const I = (data: (number | bigint)[], dims: number[] = [data.length]): InSpec => ({ kind: 'int64', dims, data, init: true });
/** int64 graph input. */
const IIn = (data: number[], dims: number[] = [data.length]): InSpec => ({ kind: 'int64', dims, data, init: false });
const B = (dims: number[]): InSpec => ({ kind: 'bool', dims, data: Array.from({ length: count(dims) }, () => (rng.uniform() < 0.5 ? 1 : 0)), init: false });
const randInts = (n: number, lo: number, hi: number) => Array.from({ length: n }, () => lo + rng.int(hi - lo));

const ONNX_TYPE: Record<Kind, DType> = { float: 'float32', int64: 'int64', bool: 'bool' };

function buildModel(c: OrtCase): { model: Model; inputNames: string[]; outputNames: string[] } {
  const graph = new Graph({ name: c.name });
  const b = new GraphBuilder(graph);
  const inputNames = c.inputs.map((spec, i) => {
    if (!spec) return '';
    const name = `in${i}`;
    if (spec.init) {
      const data = spec.kind === 'float' ? Float32Array.from(spec.data, Number)
        : spec.kind === 'int64' ? BigInt64Array.from(spec.data.map(BigInt)) : Uint8Array.from(spec.data, Number);
      graph.addInitializer(makeTensor(name, spec.dims, data, ONNX_TYPE[spec.kind]));
    } else {
      graph.inputs.push({ name, type: makeTensorTypeProto({ dtype: ONNX_TYPE[spec.kind], shape: spec.dims }) });
    }
    return name;
  });
  const outs = c.outs ?? ['float'];
  const outputNames = outs.map((_, i) => `out${i}`);
  b.op(c.op, inputNames, c.attrs ?? {}, { outputs: outputNames });
  graph.outputs = outs.map((k, i) => ({ name: outputNames[i]!, type: makeTensorTypeProto({ dtype: ONNX_TYPE[k], shape: null }) }));
  const opset = c.opset ?? 17;
  const proto = onnx.ModelProto.create({ irVersion: opset >= 21 ? 10 : 8, producerName: 'reference-interpreter-test', opsetImport: [{ domain: '', version: opset }] });
  return { model: new Model(proto, graph), inputNames, outputNames };
}

function ortFeed(spec: InSpec): ort.Tensor {
  if (spec.kind === 'float') return new ort.Tensor('float32', Float32Array.from(spec.data, Number), spec.dims);
  if (spec.kind === 'int64') return new ort.Tensor('int64', BigInt64Array.from(spec.data.map(BigInt)), spec.dims);
  return new ort.Tensor('bool', Uint8Array.from(spec.data, Number), spec.dims);
}
function refFeed(spec: InSpec): RefTensor {
  if (spec.kind === 'float') return f64(spec.dims, spec.data.map(Number));
  if (spec.kind === 'int64') return { dims: spec.dims, data: BigInt64Array.from(spec.data.map(BigInt)), dtype: 'int64' };
  return { dims: spec.dims, data: Uint8Array.from(spec.data, Number), dtype: 'bool' };
}

/** Largest difference relative to max(|expected|, 1), or Infinity on a shape/type mismatch. */
function compare(got: RefTensor, want: { dims: readonly number[]; data: ArrayLike<number | bigint> }, kind: Kind): { err: number; why: string } {
  if (got.dims.join() !== want.dims.join()) return { err: Infinity, why: `shape [${got.dims}] vs [${want.dims}]` };
  const wantType = kind === 'float' ? 'float64' : kind;
  if (got.dtype !== wantType) return { err: Infinity, why: `dtype ${got.dtype} vs ${wantType}` };
  let err = 0;
  let why = '';
  for (let i = 0; i < got.data.length; i++) {
    const a = Number(got.data[i]!);
    const b = Number(want.data[i]!);
    if (a === b || (Number.isNaN(a) && Number.isNaN(b))) continue;
    const e = Math.abs(a - b) / Math.max(Math.abs(b), 1);
    if (!(e <= err)) {
      err = Number.isNaN(e) ? Infinity : e;
      why = `[${i}] ${a} vs ${b}`;
    }
  }
  return { err, why };
}

async function crossCheck(c: OrtCase): Promise<void> {
  const { model, inputNames, outputNames } = buildModel(c);
  const session = await ort.InferenceSession.create(encodeModel(model.toProto()), { intraOpNumThreads: 1, graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
  const ortFeeds: Record<string, ort.Tensor> = {};
  const refFeeds: Record<string, RefTensor> = {};
  c.inputs.forEach((spec, i) => {
    if (!spec || spec.init) return;
    ortFeeds[inputNames[i]!] = ortFeed(spec);
    refFeeds[inputNames[i]!] = refFeed(spec);
  });
  const want = await session.run(ortFeeds);
  const got = evaluate(model.graph, refFeeds, { opset: model.opset() });
  const outs = c.outs ?? ['float'];
  outputNames.forEach((name, i) => {
    const w = want[name]!;
    const { err, why } = compare(got[name]!, { dims: w.dims, data: w.data as ArrayLike<number | bigint> }, outs[i]!);
    const tol = outs[i] === 'float' ? c.tol ?? 1e-5 : 0;
    assert.ok(err <= tol, `${c.name} output ${i}: error ${err.toExponential(2)} > ${tol} (${why})`);
  });
}

// --- Cases, by op family -----------------------------------------------------------------------

const X = () => F([2, 3, 4]);
const unary = (op: string, range?: [number, number], attrs?: Record<string, BuilderAttr>, opset?: number): OrtCase =>
  ({ name: `${op}${attrs ? ' ' + JSON.stringify(attrs) : ''}`, op, inputs: [F([2, 3, 4], range)], attrs, opset });

const ELEMENTWISE: OrtCase[] = [
  ...['Relu', 'Neg', 'Abs', 'Sign', 'Floor', 'Ceil', 'Exp', 'Sigmoid', 'Tanh', 'Erf', 'Sin', 'Cos', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Softplus', 'Softsign', 'HardSwish']
    .map((op) => unary(op, [-4, 4])),
  unary('Round', [-4, 4]),
  { name: 'Round half to even', op: 'Round', inputs: [V([6], [0.5, 1.5, 2.5, -0.5, -1.5, -2.5])] },
  unary('Log', [0.01, 5]), unary('Sqrt', [0, 5]), unary('Reciprocal', [0.5, 3]), unary('Tan', [-1.4, 1.4]),
  unary('Asin', [-0.99, 0.99]), unary('Acos', [-0.99, 0.99]), unary('Atanh', [-0.99, 0.99]), unary('Acosh', [1, 5]),
  unary('Mish', [-4, 4], undefined, 18),
  unary('LeakyRelu'), unary('LeakyRelu', undefined, { alpha: float(0.3) }),
  unary('Elu'), unary('Elu', undefined, { alpha: float(0.5) }),
  unary('Celu', undefined, { alpha: float(2) }),
  unary('Selu'), unary('Selu', undefined, { alpha: float(1.5), gamma: float(2) }),
  unary('ThresholdedRelu', undefined, { alpha: float(0.3) }),
  unary('HardSigmoid', [-5, 5]), unary('HardSigmoid', [-5, 5], { alpha: float(0.3), beta: float(0.4) }),
  unary('Shrink', undefined, { bias: float(0.1), lambd: float(0.4) }),
  unary('Gelu', [-6, 6], undefined, 20), unary('Gelu', [-6, 6], { approximate: 'tanh' }, 20),
  { name: 'IsNaN', op: 'IsNaN', inputs: [V([4], [1, NaN, Infinity, -2])], outs: ['bool'] },
  { name: 'IsInf', op: 'IsInf', inputs: [V([4], [1, NaN, Infinity, -Infinity])], outs: ['bool'] },
  { name: 'IsInf detect_negative=0', op: 'IsInf', inputs: [V([4], [1, NaN, Infinity, -Infinity])], attrs: { detect_negative: 0 }, outs: ['bool'] },
  { name: 'Not', op: 'Not', inputs: [B([2, 5])], outs: ['bool'] },
  ...['Add', 'Sub', 'Mul', 'Div'].map((op): OrtCase => ({ name: `${op} broadcast`, op, inputs: [F([2, 3, 4]), F([3, 1], [0.5, 2])] })),
  { name: 'Add int64', op: 'Add', inputs: [IIn([1, -2, 3]), IIn([10], [1])], outs: ['int64'] },
  { name: 'Div int64 truncates', op: 'Div', inputs: [IIn([7, -7, 7, -7]), IIn([2, 2, -2, -2])], outs: ['int64'] },
  { name: 'Pow', op: 'Pow', inputs: [F([2, 3], [0.1, 3]), F([3], [-2, 2])] },
  { name: 'Pow int exponent', op: 'Pow', inputs: [F([2, 3], [-2, 2]), IIn([2, 3, 0])] },
  { name: 'Mod fmod=1', op: 'Mod', inputs: [F([2, 4], [-5, 5]), F([4], [0.5, 2])], attrs: { fmod: 1 } },
  { name: 'Mod int64 (sign of divisor)', op: 'Mod', inputs: [IIn([7, -7, 7, -7, 0]), IIn([3, 3, -3, -3, 3])], outs: ['int64'] },
  { name: 'Mod int64 fmod=1', op: 'Mod', inputs: [IIn([7, -7, 7, -7]), IIn([3, 3, -3, -3])], attrs: { fmod: 1 }, outs: ['int64'] },
  ...['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual'].map((op): OrtCase =>
    ({ name: op, op, inputs: [IIn(randInts(12, 0, 3), [3, 4]), IIn(randInts(4, 0, 3), [4])], outs: ['bool'] })),
  { name: 'Less float', op: 'Less', inputs: [F([3, 4]), F([1, 4])], outs: ['bool'] },
  ...['And', 'Or', 'Xor'].map((op): OrtCase => ({ name: op, op, inputs: [B([3, 4]), B([4])], outs: ['bool'] })),
  { name: 'PRelu per channel', op: 'PRelu', inputs: [F([2, 3, 4, 4]), W([3, 1, 1])] },
  { name: 'PRelu scalar slope', op: 'PRelu', inputs: [X(), W([1])] },
  { name: 'Where', op: 'Where', inputs: [B([3, 1]), F([3, 4]), F([4])] },
  { name: 'Clip min/max inputs', op: 'Clip', inputs: [X(), W([], [-0.5, -0.4]), W([], [0.6, 0.7])], opset: 13 },
  { name: 'Clip min only', op: 'Clip', inputs: [X(), W([], [-0.5, -0.4])], opset: 13 },
  { name: 'Clip max only', op: 'Clip', inputs: [X(), null, W([], [0.3, 0.4])], opset: 13 },
  { name: 'Clip opset 6 attributes', op: 'Clip', inputs: [X()], attrs: { min: float(-0.5), max: float(0.25) }, opset: 6 },
  { name: 'Clip int64', op: 'Clip', inputs: [IIn([-5, 0, 5, 9]), I([-1], []), I([6], [])], outs: ['int64'], opset: 13 },
  { name: 'Cast float->int64 truncates', op: 'Cast', inputs: [F([8], [-5, 5])], attrs: { to: onnx.TensorProto.DataType.INT64 }, outs: ['int64'] },
  { name: 'Cast int64->float', op: 'Cast', inputs: [IIn([-3, 0, 7])], attrs: { to: onnx.TensorProto.DataType.FLOAT } },
  { name: 'Cast float->bool', op: 'Cast', inputs: [V([4], [0, 1.5, -2, 0])], attrs: { to: onnx.TensorProto.DataType.BOOL }, outs: ['bool'] },
  { name: 'Cast bool->float', op: 'Cast', inputs: [B([6])], attrs: { to: onnx.TensorProto.DataType.FLOAT } },
  { name: 'CastLike', op: 'CastLike', inputs: [F([5], [-5, 5]), I([0], [1])], outs: ['int64'] },
  ...['Sum', 'Mean', 'Max', 'Min'].map((op): OrtCase => ({ name: `${op} 3 inputs broadcast`, op, inputs: [F([2, 3, 4]), F([3, 1]), F([4])] })),
  { name: 'Max one input', op: 'Max', inputs: [X()] },
];

const MATMUL: OrtCase[] = [
  { name: 'MatMul 2-D', op: 'MatMul', inputs: [F([3, 4]), W([4, 5])] },
  { name: 'MatMul batch broadcast', op: 'MatMul', inputs: [F([2, 1, 3, 4]), F([3, 4, 5])] },
  { name: 'MatMul 1-D x 2-D', op: 'MatMul', inputs: [F([4]), F([4, 5])] },
  { name: 'MatMul 3-D x 1-D', op: 'MatMul', inputs: [F([2, 3, 4]), F([4])] },
  { name: 'MatMul 1-D x 1-D', op: 'MatMul', inputs: [F([4]), F([4])] },
  { name: 'Gemm defaults', op: 'Gemm', inputs: [F([3, 4]), W([4, 5]), W([5])] },
  { name: 'Gemm transA transB alpha beta', op: 'Gemm', inputs: [F([4, 3]), W([5, 4]), W([3, 5])], attrs: { transA: 1, transB: 1, alpha: float(0.5), beta: float(2) } },
  { name: 'Gemm scalar C', op: 'Gemm', inputs: [F([3, 4]), W([4, 5]), W([1])] },
  { name: 'Gemm column C', op: 'Gemm', inputs: [F([3, 4]), W([4, 5]), W([3, 1])] },
  { name: 'Gemm no C', op: 'Gemm', inputs: [F([3, 4]), W([4, 5])], opset: 13 },
  ...([
    ['ij,jk->ik', [[3, 4], [4, 5]]],
    ['bij,bjk->bik', [[2, 3, 4], [2, 4, 5]]],
    ['ii->i', [[4, 4]]],
    ['ij->', [[3, 4]]],
    ['ij->ji', [[3, 4]]],
    ['...ij->...ji', [[2, 3, 4]]],
    ['i,i', [[5], [5]]],
    ['ij,ij->ij', [[3, 4], [3, 4]]],
    ['bhqd,bhkd->bhqk', [[1, 2, 3, 4], [1, 2, 5, 4]]],
    ['ij,jk', [[3, 4], [4, 2]]],
  ] as [string, number[][]][]).map(([eq, shapes]): OrtCase => ({ name: `Einsum ${eq}`, op: 'Einsum', inputs: shapes.map((s) => F(s)), attrs: { equation: eq }, opset: 12 })),
];

const CONV: OrtCase[] = [
  { name: 'Conv 3x3 pads 1 + bias', op: 'Conv', inputs: [F([2, 3, 6, 6]), W([4, 3, 3, 3]), W([4])], attrs: { pads: [1, 1, 1, 1] } },
  { name: 'Conv stride 2', op: 'Conv', inputs: [F([1, 2, 7, 7]), W([3, 2, 3, 3])], attrs: { strides: [2, 2] } },
  { name: 'Conv dilation 2', op: 'Conv', inputs: [F([1, 2, 7, 7]), W([3, 2, 3, 3])], attrs: { dilations: [2, 2], pads: [2, 1, 0, 2] } },
  { name: 'Conv asymmetric pads and strides', op: 'Conv', inputs: [F([1, 2, 6, 7]), W([2, 2, 3, 2])], attrs: { pads: [0, 1, 2, 0], strides: [2, 3] } },
  { name: 'Conv group 2', op: 'Conv', inputs: [F([2, 4, 5, 5]), W([6, 2, 3, 3]), W([6])], attrs: { group: 2, pads: [1, 1, 1, 1] } },
  { name: 'Conv depthwise', op: 'Conv', inputs: [F([1, 3, 5, 5]), W([3, 1, 3, 3])], attrs: { group: 3 } },
  { name: 'Conv auto_pad SAME_UPPER stride 2 even kernel', op: 'Conv', inputs: [F([1, 2, 7, 6]), W([2, 2, 4, 4])], attrs: { auto_pad: 'SAME_UPPER', strides: [2, 2] } },
  { name: 'Conv auto_pad SAME_LOWER stride 2 even kernel', op: 'Conv', inputs: [F([1, 2, 7, 6]), W([2, 2, 4, 4])], attrs: { auto_pad: 'SAME_LOWER', strides: [2, 2] } },
  { name: 'Conv auto_pad VALID', op: 'Conv', inputs: [F([1, 2, 6, 6]), W([2, 2, 3, 3])], attrs: { auto_pad: 'VALID', strides: [2, 2] } },
  { name: 'Conv kernel_shape attribute', op: 'Conv', inputs: [F([1, 2, 5, 5]), W([2, 2, 2, 3])], attrs: { kernel_shape: [2, 3] } },
  { name: 'Conv 1-D', op: 'Conv', inputs: [F([2, 3, 9]), W([4, 3, 3])], attrs: { pads: [1, 2], strides: [2] } },
  { name: 'Conv 3-D', op: 'Conv', inputs: [F([1, 2, 4, 5, 4]), W([3, 2, 2, 3, 2])], attrs: { pads: [1, 0, 1, 0, 1, 1] } },
  { name: 'ConvTranspose basic + bias', op: 'ConvTranspose', inputs: [F([2, 3, 4, 4]), W([3, 2, 3, 3]), W([2])] },
  { name: 'ConvTranspose stride 2 pads 1 output_padding 1', op: 'ConvTranspose', inputs: [F([1, 2, 4, 4]), W([2, 3, 3, 3])], attrs: { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] } },
  { name: 'ConvTranspose asymmetric pads', op: 'ConvTranspose', inputs: [F([1, 2, 4, 5]), W([2, 2, 3, 3])], attrs: { strides: [2, 1], pads: [0, 1, 2, 0] } },
  { name: 'ConvTranspose group 2', op: 'ConvTranspose', inputs: [F([1, 4, 3, 3]), W([4, 3, 2, 2])], attrs: { group: 2, strides: [2, 2] } },
  { name: 'ConvTranspose dilation 2', op: 'ConvTranspose', inputs: [F([1, 2, 4, 4]), W([2, 2, 3, 3])], attrs: { dilations: [2, 2] } },
  { name: 'ConvTranspose output_shape', op: 'ConvTranspose', inputs: [F([1, 2, 3, 3]), W([2, 2, 3, 3])], attrs: { strides: [3, 2], output_shape: [10, 8] } },
  { name: 'ConvTranspose output_shape odd total padding', op: 'ConvTranspose', inputs: [F([1, 1, 3, 3]), W([1, 1, 3, 3])], attrs: { strides: [2, 2], output_shape: [6, 6] } },
  { name: 'ConvTranspose auto_pad SAME_UPPER', op: 'ConvTranspose', inputs: [F([1, 2, 3, 3]), W([2, 2, 3, 3])], attrs: { auto_pad: 'SAME_UPPER', strides: [2, 2] } },
  { name: 'ConvTranspose auto_pad SAME_LOWER', op: 'ConvTranspose', inputs: [F([1, 2, 3, 3]), W([2, 2, 3, 3])], attrs: { auto_pad: 'SAME_LOWER', strides: [2, 2] } },
  { name: 'ConvTranspose 1-D', op: 'ConvTranspose', inputs: [F([2, 2, 5]), W([2, 3, 3])], attrs: { strides: [2], pads: [1, 0] } },
  { name: 'ConvTranspose 3-D', op: 'ConvTranspose', inputs: [F([1, 2, 3, 2, 3]), W([2, 2, 2, 2, 2])], attrs: { strides: [2, 1, 2] } },
];

const POOL: OrtCase[] = [
  { name: 'MaxPool 2x2 stride 2', op: 'MaxPool', inputs: [F([2, 3, 6, 6])], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
  { name: 'MaxPool 3x3 stride 2 pads 1 + Indices', op: 'MaxPool', inputs: [F([2, 2, 7, 6])], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, outs: ['float', 'int64'] },
  { name: 'MaxPool Indices storage_order 1', op: 'MaxPool', inputs: [F([2, 2, 5, 4])], attrs: { kernel_shape: [2, 2], storage_order: 1 }, outs: ['float', 'int64'] },
  { name: 'MaxPool ceil_mode', op: 'MaxPool', inputs: [F([1, 2, 7, 7])], attrs: { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }, outs: ['float', 'int64'] },
  { name: 'MaxPool ceil_mode drops window starting in padding', op: 'MaxPool', inputs: [F([1, 1, 6, 6])], attrs: { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 } },
  { name: 'MaxPool dilations', op: 'MaxPool', inputs: [F([1, 2, 7, 7])], attrs: { kernel_shape: [2, 2], dilations: [2, 2], pads: [1, 0, 0, 1] }, outs: ['float', 'int64'] },
  { name: 'MaxPool SAME_UPPER', op: 'MaxPool', inputs: [F([1, 2, 7, 6])], attrs: { kernel_shape: [2, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' } },
  { name: 'MaxPool SAME_LOWER', op: 'MaxPool', inputs: [F([1, 2, 7, 6])], attrs: { kernel_shape: [2, 3], strides: [2, 2], auto_pad: 'SAME_LOWER' } },
  { name: 'MaxPool 1-D', op: 'MaxPool', inputs: [F([2, 3, 9])], attrs: { kernel_shape: [3], strides: [2], pads: [1, 1] }, outs: ['float', 'int64'] },
  { name: 'MaxPool 3-D + Indices', op: 'MaxPool', inputs: [F([1, 2, 4, 4, 4])], attrs: { kernel_shape: [2, 2, 2], strides: [2, 2, 2] }, outs: ['float', 'int64'] },
  { name: 'AveragePool exclude pad', op: 'AveragePool', inputs: [F([2, 2, 6, 6])], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } },
  { name: 'AveragePool count_include_pad', op: 'AveragePool', inputs: [F([2, 2, 6, 6])], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 } },
  { name: 'AveragePool asymmetric pads count_include_pad', op: 'AveragePool', inputs: [F([1, 2, 5, 6])], attrs: { kernel_shape: [3, 2], pads: [2, 0, 0, 1], count_include_pad: 1 } },
  { name: 'AveragePool ceil_mode', op: 'AveragePool', inputs: [F([1, 2, 7, 7])], attrs: { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 } },
  { name: 'AveragePool ceil_mode count_include_pad', op: 'AveragePool', inputs: [F([1, 2, 6, 6])], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: 1 } },
  { name: 'AveragePool SAME_UPPER', op: 'AveragePool', inputs: [F([1, 2, 7, 6])], attrs: { kernel_shape: [3, 2], strides: [2, 2], auto_pad: 'SAME_UPPER' } },
  { name: 'AveragePool SAME_LOWER count_include_pad', op: 'AveragePool', inputs: [F([1, 2, 7, 6])], attrs: { kernel_shape: [3, 2], strides: [2, 2], auto_pad: 'SAME_LOWER', count_include_pad: 1 } },
  { name: 'AveragePool dilations (opset 19)', op: 'AveragePool', inputs: [F([1, 2, 7, 7])], attrs: { kernel_shape: [2, 2], dilations: [2, 2], pads: [1, 1, 1, 1] }, opset: 19 },
  { name: 'AveragePool 1-D', op: 'AveragePool', inputs: [F([2, 3, 9])], attrs: { kernel_shape: [3], strides: [2] } },
  { name: 'AveragePool 3-D', op: 'AveragePool', inputs: [F([1, 2, 4, 4, 4])], attrs: { kernel_shape: [2, 2, 2], pads: [1, 0, 1, 0, 1, 0] } },
  { name: 'LpPool p=2', op: 'LpPool', inputs: [F([1, 2, 6, 6])], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
  { name: 'LpPool p=3 pads', op: 'LpPool', inputs: [F([1, 2, 5, 5])], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], p: 3 } },
  { name: 'GlobalAveragePool', op: 'GlobalAveragePool', inputs: [F([2, 3, 5, 4])] },
  { name: 'GlobalMaxPool', op: 'GlobalMaxPool', inputs: [F([2, 3, 5, 4])] },
  { name: 'GlobalLpPool', op: 'GlobalLpPool', inputs: [F([2, 3, 5, 4])] },
  { name: 'GlobalAveragePool 1-D', op: 'GlobalAveragePool', inputs: [F([2, 3, 7])] },
];

const NORM: OrtCase[] = [
  { name: 'BatchNormalization inference', op: 'BatchNormalization', inputs: [F([2, 3, 4, 4]), W([3]), W([3]), W([3]), W([3], [0.5, 2])], attrs: { epsilon: float(1e-3) } },
  { name: 'BatchNormalization 2-D input', op: 'BatchNormalization', inputs: [F([4, 3]), W([3]), W([3]), W([3]), W([3], [0.5, 2])] },
  {
    name: 'BatchNormalization training_mode (opset 15)', op: 'BatchNormalization', opset: 15,
    inputs: [F([3, 2, 4, 5]), W([2]), W([2]), W([2]), W([2], [0.5, 2])], attrs: { training_mode: 1, momentum: float(0.8) }, outs: ['float', 'float', 'float'],
  },
  { name: 'InstanceNormalization', op: 'InstanceNormalization', inputs: [F([2, 3, 4, 5]), W([3]), W([3])], attrs: { epsilon: float(1e-3) } },
  { name: 'GroupNormalization opset 18', op: 'GroupNormalization', inputs: [F([2, 6, 3, 3]), W([3]), W([3])], attrs: { num_groups: 3 }, opset: 18 },
  { name: 'GroupNormalization opset 21', op: 'GroupNormalization', inputs: [F([2, 6, 3, 3]), W([6]), W([6])], attrs: { num_groups: 3 }, opset: 21 },
  { name: 'LayerNormalization last axis + Mean/InvStdDev', op: 'LayerNormalization', inputs: [F([2, 3, 5]), W([5]), W([5])], outs: ['float', 'float', 'float'] },
  { name: 'LayerNormalization axis 1', op: 'LayerNormalization', inputs: [F([2, 3, 4]), W([3, 4]), W([3, 4])], attrs: { axis: 1, epsilon: float(1e-3) }, outs: ['float', 'float', 'float'] },
  { name: 'LayerNormalization no bias', op: 'LayerNormalization', inputs: [F([2, 3, 4]), W([4])], attrs: { axis: -1 } },
  { name: 'MeanVarianceNormalization', op: 'MeanVarianceNormalization', inputs: [F([2, 3, 4, 4])] },
  { name: 'MeanVarianceNormalization axes', op: 'MeanVarianceNormalization', inputs: [F([2, 3, 4])], attrs: { axes: [2] } },
  { name: 'LpNormalization p=2', op: 'LpNormalization', inputs: [F([3, 4])] },
  { name: 'LpNormalization p=1 axis 0', op: 'LpNormalization', inputs: [F([3, 4])], attrs: { p: 1, axis: 0 } },
  { name: 'LRN', op: 'LRN', inputs: [F([2, 5, 3, 3])], attrs: { size: 3, alpha: float(0.01), beta: float(0.6), bias: float(1.5) } },
];

const SOFTMAX: OrtCase[] = [
  ...['Softmax', 'LogSoftmax', 'Hardmax'].flatMap((op): OrtCase[] => [
    { name: `${op} opset 11 default axis (2-D coercion)`, op, inputs: [F([2, 3, 4])], opset: 11 },
    { name: `${op} opset 11 axis 2`, op, inputs: [F([2, 3, 4])], attrs: { axis: 2 }, opset: 11 },
    { name: `${op} opset 13 default axis`, op, inputs: [F([2, 3, 4])], opset: 13 },
    { name: `${op} opset 13 axis 1`, op, inputs: [F([2, 3, 4])], attrs: { axis: 1 }, opset: 13 },
  ]),
  { name: 'Softmax large inputs', op: 'Softmax', inputs: [V([4], [1000, 1001, 1002, -1000])] },
];

const SHAPE: OrtCase[] = [
  { name: 'Reshape 0 and -1', op: 'Reshape', inputs: [F([2, 3, 4]), I([0, -1, 2])] },
  { name: 'Reshape allowzero=1', op: 'Reshape', inputs: [F([2, 3, 4]), I([4, 6])], attrs: { allowzero: 1 }, opset: 14 },
  { name: 'Flatten default', op: 'Flatten', inputs: [F([2, 3, 4])] },
  { name: 'Flatten axis 0', op: 'Flatten', inputs: [F([2, 3, 4])], attrs: { axis: 0 } },
  { name: 'Flatten axis -1', op: 'Flatten', inputs: [F([2, 3, 4])], attrs: { axis: -1 } },
  { name: 'Transpose perm', op: 'Transpose', inputs: [F([2, 3, 4])], attrs: { perm: [1, 2, 0] } },
  { name: 'Transpose default', op: 'Transpose', inputs: [F([2, 3, 4])] },
  { name: 'Concat axis 1', op: 'Concat', inputs: [F([2, 1, 3]), F([2, 2, 3]), F([2, 3, 3])], attrs: { axis: 1 } },
  { name: 'Concat axis -1 int64', op: 'Concat', inputs: [IIn([1, 2], [1, 2]), IIn([3], [1, 1])], attrs: { axis: -1 }, outs: ['int64'] },
  { name: 'Split split input', op: 'Split', inputs: [F([2, 7]), I([2, 5])], attrs: { axis: 1 }, outs: ['float', 'float'], opset: 13 },
  { name: 'Split equal', op: 'Split', inputs: [F([6, 2])], outs: ['float', 'float', 'float'], opset: 13 },
  { name: 'Split split attribute (opset 11)', op: 'Split', inputs: [F([2, 6])], attrs: { axis: -1, split: [1, 2, 3] }, outs: ['float', 'float', 'float'], opset: 11 },
  { name: 'Split num_outputs uneven (opset 18)', op: 'Split', inputs: [F([2, 7])], attrs: { axis: 1, num_outputs: 3 }, outs: ['float', 'float', 'float'], opset: 18 },
  { name: 'Slice basic', op: 'Slice', inputs: [F([4, 5]), I([1, 0]), I([3, 4])] },
  { name: 'Slice axes and steps', op: 'Slice', inputs: [F([4, 6, 3]), I([0, 1]), I([6, 3]), I([1, -1]), I([2, 1])] },
  { name: 'Slice negative step', op: 'Slice', inputs: [F([5, 6]), I([-1, 4]), I([-6, 0]), I([0, 1]), I([-2, -1])] },
  { name: 'Slice INT64 clamp', op: 'Slice', inputs: [F([4, 5]), I([1, -(2n ** 63n)]), I([2n ** 63n - 1n, 9])] },
  { name: 'Slice negative step to start', op: 'Slice', inputs: [F([6]), I([10]), I([-(2n ** 63n)]), I([0]), I([-3])] },
  { name: 'Slice opset 1 attributes', op: 'Slice', inputs: [F([4, 5])], attrs: { starts: [1, 1], ends: [3, 100], axes: [0, 1] }, opset: 1 },
  { name: 'Squeeze axes input', op: 'Squeeze', inputs: [F([1, 3, 1, 2]), I([0, -2])], opset: 13 },
  { name: 'Squeeze all', op: 'Squeeze', inputs: [F([1, 3, 1, 2])], opset: 13 },
  { name: 'Squeeze axes attribute (opset 11)', op: 'Squeeze', inputs: [F([1, 3, 1, 2])], attrs: { axes: [2] }, opset: 11 },
  { name: 'Unsqueeze axes input', op: 'Unsqueeze', inputs: [F([3, 2]), I([0, 3])], opset: 13 },
  { name: 'Unsqueeze negative axes', op: 'Unsqueeze', inputs: [F([3, 2]), I([-1, 1])], opset: 13 },
  { name: 'Unsqueeze axes attribute (opset 11)', op: 'Unsqueeze', inputs: [F([3, 2])], attrs: { axes: [1] }, opset: 11 },
  { name: 'Expand', op: 'Expand', inputs: [F([3, 1]), I([2, 1, 4])] },
  { name: 'Expand to smaller rank', op: 'Expand', inputs: [F([2, 1, 3]), I([4, 1])] },
  { name: 'Tile', op: 'Tile', inputs: [F([2, 3]), I([2, 3])] },
  { name: 'Pad constant', op: 'Pad', inputs: [F([2, 3]), I([1, 0, 2, 3]), W([], [1, 2])], opset: 13 },
  { name: 'Pad reflect', op: 'Pad', inputs: [F([1, 2, 4, 5]), I([0, 0, 2, 3, 0, 0, 3, 1])], attrs: { mode: 'reflect' }, opset: 13 },
  { name: 'Pad edge', op: 'Pad', inputs: [F([1, 2, 4, 5]), I([0, 0, 2, 3, 0, 0, 3, 1])], attrs: { mode: 'edge' }, opset: 13 },
  { name: 'Pad wrap (opset 19)', op: 'Pad', inputs: [F([3, 4]), I([1, 2, 2, 1])], attrs: { mode: 'wrap' }, opset: 19 },
  { name: 'Pad negative (crop)', op: 'Pad', inputs: [F([4, 5]), I([-1, 2, 1, -2])], opset: 13 },
  { name: 'Pad axes (opset 18)', op: 'Pad', inputs: [F([2, 3, 4]), I([1, 2, 0, 1]), W([], [1, 2]), I([0, 2])], opset: 18 },
  { name: 'Pad opset 2 attributes', op: 'Pad', inputs: [F([2, 3])], attrs: { pads: [0, 1, 1, 0], value: float(0.5) }, opset: 2 },
  { name: 'Gather axis 0', op: 'Gather', inputs: [F([5, 3]), I([[0, 4], [-1, 2]].flat(), [2, 2])] },
  { name: 'Gather axis 1', op: 'Gather', inputs: [F([2, 5, 3]), I([3, 0, 3])], attrs: { axis: 1 } },
  { name: 'Gather scalar index', op: 'Gather', inputs: [F([4, 3]), I([2], [])], attrs: { axis: 0 } },
  { name: 'GatherElements', op: 'GatherElements', inputs: [F([3, 4]), I([0, 2, -1, 1, 2, 0], [3, 2])], attrs: { axis: 1 } },
  { name: 'GatherElements axis 0', op: 'GatherElements', inputs: [F([3, 4]), I([0, 2, 1, 1, 2, 0, 0, 1], [2, 4])], attrs: { axis: 0 } },
  { name: 'GatherND', op: 'GatherND', inputs: [F([2, 3, 4]), I([0, 1, 1, 2], [2, 2])] },
  { name: 'GatherND batch_dims 1', op: 'GatherND', inputs: [F([2, 3, 4]), I([1, 0, 2, 3], [2, 1, 2])], attrs: { batch_dims: 1 } },
  { name: 'Scatter (opset 10)', op: 'Scatter', inputs: [F([3, 4]), I([1, 0, 3, 2, -1, 0], [3, 2]), F([3, 2])], attrs: { axis: 1 }, opset: 10 },
  { name: 'ScatterElements', op: 'ScatterElements', inputs: [F([3, 4]), I([1, 0, 3, 2, -1, 0], [3, 2]), F([3, 2])], attrs: { axis: 1 } },
  { name: 'ScatterElements add duplicates', op: 'ScatterElements', inputs: [F([3, 4]), I([1, 1, 0, 3, 3, 3], [3, 2]), F([3, 2])], attrs: { axis: 1, reduction: 'add' }, opset: 16 },
  { name: 'ScatterElements mul (opset 16)', op: 'ScatterElements', inputs: [F([3, 4]), I([1, 2, 0, 0], [2, 2]), F([2, 2])], attrs: { axis: 0, reduction: 'mul' }, opset: 16 },
  { name: 'ScatterElements max (opset 18)', op: 'ScatterElements', inputs: [F([3, 4]), I([1, 2, 0, 0], [2, 2]), F([2, 2])], attrs: { axis: 0, reduction: 'max' }, opset: 18 },
  { name: 'ScatterND', op: 'ScatterND', inputs: [F([4, 3]), I([2, 0], [2, 1]), F([2, 3])] },
  { name: 'ScatterND element indices', op: 'ScatterND', inputs: [F([2, 3, 4]), I([0, 1, 2, 1, 2, 3], [2, 3]), F([2])] },
  { name: 'ScatterND add duplicates', op: 'ScatterND', inputs: [F([4, 3]), I([1, 1, 3], [3, 1]), F([3, 3])], attrs: { reduction: 'add' }, opset: 16 },
  { name: 'Shape', op: 'Shape', inputs: [F([2, 3, 4])], outs: ['int64'] },
  { name: 'Shape start/end (opset 15)', op: 'Shape', inputs: [F([2, 3, 4, 5])], attrs: { start: 1, end: -1 }, outs: ['int64'], opset: 15 },
  { name: 'Shape start clamps (opset 15)', op: 'Shape', inputs: [F([2, 3, 4])], attrs: { start: -10 }, outs: ['int64'], opset: 15 },
  { name: 'Size', op: 'Size', inputs: [F([2, 3, 4])], outs: ['int64'] },
  { name: 'ConstantOfShape default', op: 'ConstantOfShape', inputs: [I([2, 3])] },
  { name: 'ConstantOfShape int64 value', op: 'ConstantOfShape', inputs: [I([3])], attrs: { value: makeTensor('v', [1], BigInt64Array.of(7n)) }, outs: ['int64'] },
  { name: 'Constant tensor', op: 'Constant', inputs: [], attrs: { value: makeTensor('v', [2, 2], Float32Array.of(1, -2, 3.5, 4)) } },
  { name: 'Constant value_floats', op: 'Constant', inputs: [], attrs: { value_floats: floats([1, 2.5]) }, opset: 13 },
  { name: 'Constant value_int', op: 'Constant', inputs: [], attrs: { value_int: 5 }, outs: ['int64'], opset: 13 },
  { name: 'Range float', op: 'Range', inputs: [W([], [0, 1]), V([], [3.3]), V([], [0.4])] },
  { name: 'Range int64 negative delta', op: 'Range', inputs: [I([10], []), I([1], []), I([-3], [])], outs: ['int64'] },
  { name: 'Identity', op: 'Identity', inputs: [X()] },
  { name: 'Dropout inference + mask', op: 'Dropout', inputs: [X(), W([], [0.3, 0.4])], outs: ['float', 'bool'], opset: 13 },
  { name: 'Dropout opset 7', op: 'Dropout', inputs: [X()], attrs: { ratio: float(0.2) }, opset: 7 },
  { name: 'OneHot', op: 'OneHot', inputs: [I([1, 3, -1, 0], [2, 2]), I([4], []), W([2])] },
  { name: 'OneHot axis 0', op: 'OneHot', inputs: [I([1, 2, 0]), I([3], []), W([2])], attrs: { axis: 0 } },
  { name: 'ArgMax', op: 'ArgMax', inputs: [F([3, 4, 2])], attrs: { axis: 1 }, outs: ['int64'] },
  { name: 'ArgMax keepdims 0 select_last_index', op: 'ArgMax', inputs: [V([2, 4], [1, 3, 3, 0, 2, 2, 1, 2])], attrs: { axis: -1, keepdims: 0, select_last_index: 1 }, outs: ['int64'] },
  { name: 'ArgMin', op: 'ArgMin', inputs: [V([2, 4], [1, 3, 0, 0, 2, 2, 1, 2])], attrs: { axis: 1 }, outs: ['int64'] },
  { name: 'TopK largest', op: 'TopK', inputs: [F([3, 5]), I([2])], outs: ['float', 'int64'] },
  { name: 'TopK smallest axis 0', op: 'TopK', inputs: [F([4, 3]), I([3])], attrs: { axis: 0, largest: 0 }, outs: ['float', 'int64'] },
  { name: 'TopK ties keep lower index', op: 'TopK', inputs: [V([6], [1, 3, 3, 2, 3, 1]), I([4])], outs: ['float', 'int64'] },
  { name: 'CumSum', op: 'CumSum', inputs: [F([3, 4]), I([1], [])] },
  { name: 'CumSum exclusive reverse', op: 'CumSum', inputs: [F([3, 4]), I([0], [])], attrs: { exclusive: 1, reverse: 1 } },
  { name: 'DepthToSpace DCR', op: 'DepthToSpace', inputs: [F([1, 8, 2, 3])], attrs: { blocksize: 2 } },
  { name: 'DepthToSpace CRD', op: 'DepthToSpace', inputs: [F([1, 8, 2, 3])], attrs: { blocksize: 2, mode: 'CRD' } },
  { name: 'SpaceToDepth', op: 'SpaceToDepth', inputs: [F([1, 2, 4, 6])], attrs: { blocksize: 2 } },
  { name: 'Trilu upper', op: 'Trilu', inputs: [F([2, 3, 4])], opset: 14 },
  { name: 'Trilu lower k=1', op: 'Trilu', inputs: [F([3, 4]), I([1], [])], attrs: { upper: 0 }, opset: 14 },
  { name: 'Trilu upper k=-1', op: 'Trilu', inputs: [F([4, 3]), I([-1], [])], opset: 14 },
  { name: 'NonZero', op: 'NonZero', inputs: [V([2, 3], [0, 1, 0, 2, 2, 0])], outs: ['int64'] },
  { name: 'EyeLike k=1', op: 'EyeLike', inputs: [F([3, 4])], attrs: { k: 1 } },
  { name: 'EyeLike int64 k=-1', op: 'EyeLike', inputs: [F([4, 3])], attrs: { k: -1, dtype: onnx.TensorProto.DataType.INT64 }, outs: ['int64'] },
];

const REDUCERS = ['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSum', 'ReduceLogSumExp'];
const REDUCE: OrtCase[] = [
  ...REDUCERS.flatMap((op): OrtCase[] => {
    const pos = op === 'ReduceLogSum' ? ([0.1, 2] as [number, number]) : undefined;
    return [
      { name: `${op} axes input (opset 18)`, op, inputs: [F([2, 3, 4], pos), I([0, -1])], opset: 18 },
      { name: `${op} keepdims 0 (opset 18)`, op, inputs: [F([2, 3, 4], pos), I([1])], attrs: { keepdims: 0 }, opset: 18 },
      { name: `${op} all axes (opset 18)`, op, inputs: [F([2, 3, 4], pos)], opset: 18 },
      { name: `${op} axes attribute (opset 11)`, op, inputs: [F([2, 3, 4], pos)], attrs: { axes: [1], keepdims: 0 }, opset: 11 },
    ];
  }),
  { name: 'ReduceSum axes input (opset 13)', op: 'ReduceSum', inputs: [F([2, 3, 4]), I([2])], opset: 13 },
  { name: 'ReduceSum noop_with_empty_axes', op: 'ReduceSum', inputs: [F([2, 3])], attrs: { noop_with_empty_axes: 1 }, opset: 13 },
  { name: 'ReduceMean noop_with_empty_axes (opset 18)', op: 'ReduceMean', inputs: [F([2, 3]), I([], [0])], attrs: { noop_with_empty_axes: 1 }, opset: 18 },
  { name: 'ReduceLogSumExp large', op: 'ReduceLogSumExp', inputs: [V([2, 2], [1000, 1001, -3, 2])], attrs: { axes: [1] }, opset: 13 },
  { name: 'ReduceSum int64', op: 'ReduceSum', inputs: [IIn([1, 2, 3, 4], [2, 2]), I([0])], outs: ['int64'], opset: 13 },
];

const LOSS: OrtCase[] = [
  { name: 'SoftmaxCrossEntropyLoss mean', op: 'SoftmaxCrossEntropyLoss', inputs: [F([4, 5]), I([0, 4, 2, 1])], opset: 13 },
  { name: 'SoftmaxCrossEntropyLoss sum + log_prob', op: 'SoftmaxCrossEntropyLoss', inputs: [F([4, 5]), I([0, 4, 2, 1])], attrs: { reduction: 'sum' }, outs: ['float', 'float'], opset: 13 },
  { name: 'SoftmaxCrossEntropyLoss none 3-D', op: 'SoftmaxCrossEntropyLoss', inputs: [F([2, 3, 4]), I([0, 2, 1, 1, 2, 0, 0, 1], [2, 4])], attrs: { reduction: 'none' }, opset: 13 },
  { name: 'SoftmaxCrossEntropyLoss weights + ignore_index', op: 'SoftmaxCrossEntropyLoss', inputs: [F([5, 3]), I([0, 2, -1, 1, 2]), W([3], [0.5, 2])], attrs: { ignore_index: -1 }, outs: ['float', 'float'], opset: 13 },
  { name: 'SoftmaxCrossEntropyLoss weights none', op: 'SoftmaxCrossEntropyLoss', inputs: [F([4, 3, 2]), I([0, 2, 1, 1, 2, 0, 0, 1], [4, 2]), W([3], [0.5, 2])], attrs: { reduction: 'none' }, opset: 13 },
  { name: 'NegativeLogLikelihoodLoss mean', op: 'NegativeLogLikelihoodLoss', inputs: [F([4, 5]), I([0, 4, 2, 1])], opset: 13 },
  { name: 'NegativeLogLikelihoodLoss weights ignore_index 3-D', op: 'NegativeLogLikelihoodLoss', inputs: [F([2, 3, 4]), I([0, 2, 1, 1, 2, 5, 0, 1], [2, 4]), W([3], [0.5, 2])], attrs: { ignore_index: 5 }, opset: 13 },
  { name: 'NegativeLogLikelihoodLoss sum', op: 'NegativeLogLikelihoodLoss', inputs: [F([4, 5]), I([0, 4, 2, 1])], attrs: { reduction: 'sum' }, opset: 13 },
  { name: 'NegativeLogLikelihoodLoss none', op: 'NegativeLogLikelihoodLoss', inputs: [F([4, 5]), I([0, 4, 2, 1])], attrs: { reduction: 'none' }, opset: 13 },
];

const ORT_CASES: Record<string, OrtCase[]> = { ELEMENTWISE, MATMUL, CONV, POOL, NORM, SOFTMAX, SHAPE, REDUCE, LOSS };

/** Registered ops that cannot be compared with onnxruntime, and what checks them instead. */
const NOT_COMPARABLE_WITH_ORT: Record<string, string> = {
  RandomNormal: 'random: checked against randomValues below',
  RandomNormalLike: 'random: checked against randomValues below',
  RandomUniform: 'random: checked against randomValues below',
  RandomUniformLike: 'random: checked against randomValues below',
  Bernoulli: 'random: checked against randomValues below',
};

describe('reference interpreter vs onnxruntime (float32), one model per op/attributes', () => {
  for (const [family, cases] of Object.entries(ORT_CASES)) {
    describe(family, () => {
      for (const c of cases) it(c.name, () => crossCheck(c));
    });
  }
  it('covers every registered op', () => {
    const covered = new Set(Object.values(ORT_CASES).flat().map((c) => c.op));
    const missing = supportedOps().filter((op) => !covered.has(op) && !(op in NOT_COMPARABLE_WITH_ORT));
    assert.deepEqual(missing, []);
  });
});

// ---------------------------------------------------------------------------------------------
// ONNX backend node tests (libonnx-testdata).

const NODE_TESTS = '/usr/share/libonnx-testdata/data/node';
const SELECTED_TYPES = new Set(['float32', 'float64', 'int64', 'bool']);
/** Tests that meet the selection rule but cannot pass by design. */
const NODE_TEST_EXCLUSIONS: Record<string, string> = {
  test_bernoulli: 'random draws from numpy',
  test_bernoulli_double: 'random draws from numpy',
  test_bernoulli_double_expanded: 'random draws from numpy',
  test_bernoulli_expanded: 'random draws from numpy',
  test_bernoulli_seed: 'random draws from numpy',
  test_bernoulli_seed_expanded: 'random draws from numpy',
  test_training_dropout: 'random mask from numpy (the interpreter takes masks from dropoutMask)',
  test_training_dropout_default: 'random mask from numpy',
  test_training_dropout_default_mask: 'random mask from numpy',
  test_training_dropout_mask: 'random mask from numpy',
};

interface NodeTestResult { name: string; ok: boolean; why: string }

function runNodeTest(dir: string): NodeTestResult | 'skip' {
  const name = dir.split('/').pop()!;
  if (name in NODE_TEST_EXCLUSIONS || !existsSync(join(dir, 'model.onnx'))) return 'skip';
  const model = loadModel(join(dir, 'model.onnx'));
  const g = model.graph;
  if (!g.nodes.every((n) => isSupported(n))) return 'skip';
  const ios = [...g.realInputs(), ...g.outputs];
  if (!ios.every((v) => SELECTED_TYPES.has(tensorTypeOf(v.type)?.dtype ?? 'non-tensor'))) return 'skip';
  const data = join(dir, 'test_data_set_0');
  const read = (file: string) => fromProto(onnx.TensorProto.decode(readFileSync(join(data, file))));
  const feeds: Record<string, RefTensor> = {};
  g.realInputs().forEach((v, i) => {
    if (existsSync(join(data, `input_${i}.pb`))) feeds[v.name] = toRef(read(`input_${i}.pb`));
  });
  try {
    const got = evaluate(g, feeds, { opset: model.opset() });
    for (const [i, v] of g.outputs.entries()) {
      const want = read(`output_${i}.pb`);
      const kind: Kind = want.dtype === 'float64' ? 'float' : want.dtype;
      const { err, why } = compare(got[v.name]!, want, kind);
      // Expected values are float32 (or float64) computed by numpy: 1e-4 mixed abs/rel.
      if (!(err <= 1e-4)) return { name, ok: false, why: `${v.name}: ${why}` };
    }
    return { name, ok: true, why: '' };
  } catch (e) {
    return { name, ok: false, why: (e as Error).message };
  }
}

describe('reference interpreter vs ONNX backend node tests (libonnx-testdata)', { skip: !existsSync(NODE_TESTS) && 'libonnx-testdata is not installed' }, () => {
  it('passes every selected node test', () => {
    const results = readdirSync(NODE_TESTS).sort().map((d) => runNodeTest(join(NODE_TESTS, d))).filter((r): r is NodeTestResult => r !== 'skip');
    const failed = results.filter((r) => !r.ok);
    console.log(`# libonnx node tests: ${results.length} run, ${results.length - failed.length} passed, ${Object.keys(NODE_TEST_EXCLUSIONS).length} excluded`);
    assert.ok(results.length > 600, `only ${results.length} node tests selected`);
    assert.deepEqual(failed.map((f) => `${f.name}: ${f.why}`), []);
  });
});

// ---------------------------------------------------------------------------------------------
// Whole models.

async function crossCheckModel(model: Model, feeds: Record<string, { dims: number[]; data: Float32Array | BigInt64Array }>, tol: number): Promise<number> {
  const session = await ort.InferenceSession.create(encodeModel(model.toProto()), { intraOpNumThreads: 1, logSeverityLevel: 3 });
  const ortFeeds: Record<string, ort.Tensor> = {};
  const refFeeds: Record<string, RefTensor> = {};
  for (const [k, v] of Object.entries(feeds)) {
    ortFeeds[k] = new ort.Tensor(v.data instanceof BigInt64Array ? 'int64' : 'float32', v.data, v.dims);
    refFeeds[k] = v.data instanceof BigInt64Array ? { dims: v.dims, data: v.data, dtype: 'int64' } : f64(v.dims, v.data);
  }
  const want = await session.run(ortFeeds);
  const start = performance.now();
  const got = evaluate(model.graph, refFeeds, { opset: model.opset() });
  const ms = performance.now() - start;
  for (const o of model.graph.outputs) {
    const w = want[o.name]!;
    const g = got[o.name]!;
    assert.deepEqual(g.dims, [...w.dims]);
    // Error relative to the output's largest magnitude: float32 accumulates through many layers.
    const scale = Math.max(1e-6, ...Array.from(w.data as Float32Array, Math.abs));
    for (let i = 0; i < g.data.length; i++) {
      const e = Math.abs(Number(g.data[i]!) - Number(w.data[i]!)) / scale;
      assert.ok(e <= tol, `${o.name}[${i}]: ${g.data[i]} vs ${w.data[i]}`);
    }
  }
  return ms;
}

const normal32 = (n: number) => Float32Array.from({ length: n }, () => rng.normal());

/** A ResNet-8 (three stages of one basic block each, BN, projection shortcuts) built with GraphBuilder. */
function resnet8(): Model {
  const graph = new Graph({ name: 'resnet8' });
  const b = new GraphBuilder(graph);
  graph.inputs.push({ name: 'x', type: makeTensorTypeProto({ dtype: 'float32', shape: [1, 1, 12, 12] }) });
  const w = (name: string, dims: number[], std: number) => b.initializer(name, dims, Float32Array.from(normal32(count(dims)), (v) => v * std));
  const bn = (x: string, c: number) => b.op1('BatchNormalization', [x,
    b.initializer('g', [c], Float32Array.from({ length: c }, () => 1 + 0.1 * rng.normal())), w('b', [c], 0.1), w('m', [c], 0.1),
    b.initializer('v', [c], Float32Array.from({ length: c }, () => 0.5 + rng.uniform()))], { epsilon: float(1e-5) });
  const conv = (x: string, cin: number, cout: number, stride: number, k = 3) =>
    b.op1('Conv', [x, w('w', [cout, cin, k, k], Math.sqrt(2 / (cin * k * k)))], { pads: k === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0], strides: [stride, stride] });
  let h = b.op1('Relu', [bn(conv('x', 1, 16, 1), 16)]);
  let c = 16;
  for (const [cout, stride] of [[16, 1], [32, 2], [64, 2]] as const) {
    const a = b.op1('Relu', [bn(conv(h, c, cout, stride), cout)]);
    const branch = bn(conv(a, cout, cout, 1), cout);
    const skip = stride === 1 && c === cout ? h : bn(conv(h, c, cout, stride, 1), cout);
    h = b.op1('Relu', [b.op1('Add', [branch, skip])]);
    c = cout;
  }
  const pooled = b.op1('Flatten', [b.op1('GlobalAveragePool', [h])]);
  const logits = b.op1('Gemm', [pooled, w('fc', [10, 64], 0.1), w('fcb', [10], 0.1)], { transB: 1 });
  graph.outputs = [{ name: logits, type: makeTensorTypeProto({ dtype: 'float32', shape: [1, 10] }) }];
  return new Model(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }] }), graph);
}

/** Conv-ReLU-MaxPool-Conv-ReLU-GAP-Gemm-Softmax on a batch of two 1x8x8 images. */
function smallCnn(): Model {
  const graph = new Graph({ name: 'cnn' });
  const b = new GraphBuilder(graph);
  graph.inputs.push({ name: 'x', type: makeTensorTypeProto({ dtype: 'float32', shape: [2, 1, 8, 8] }) });
  const w = (dims: number[]) => b.initializer('w', dims, Float32Array.from(normal32(count(dims)), (v) => v * 0.3));
  let h = b.op1('Relu', [b.op1('Conv', ['x', w([8, 1, 3, 3]), w([8])], { pads: [1, 1, 1, 1] })]);
  h = b.op1('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] });
  h = b.op1('Relu', [b.op1('Conv', [h, w([16, 8, 3, 3]), w([16])], { pads: [1, 1, 1, 1] })]);
  h = b.op1('Flatten', [b.op1('GlobalAveragePool', [h])]);
  const y = b.op1('Softmax', [b.op1('Gemm', [h, w([16, 10]), w([10])])], { axis: -1 });
  graph.outputs = [{ name: y, type: makeTensorTypeProto({ dtype: 'float32', shape: [2, 10] }) }];
  return new Model(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }] }), graph);
}

describe('reference interpreter on whole models vs onnxruntime', () => {
  it('small CNN, batch 2 of 1x8x8, in well under a second', async () => {
    const ms = await crossCheckModel(smallCnn(), { x: { dims: [2, 1, 8, 8], data: normal32(128) } }, 1e-5);
    console.log(`# small CNN: ${ms.toFixed(1)} ms (first run)`);
    assert.ok(ms < 500, `took ${ms.toFixed(0)} ms`);
  });
  it('ResNet-8 at 1x12x12 in well under a second', async () => {
    const model = resnet8();
    const cold = await crossCheckModel(model, { x: { dims: [1, 1, 12, 12], data: normal32(144) } }, 1e-5);
    // Timed again once warm: the first run includes JIT compilation of every op.
    const start = performance.now();
    evaluate(model.graph, { x: f64([1, 1, 12, 12], normal32(144)) }, { opset: 17 });
    const ms = performance.now() - start;
    console.log(`# ResNet-8 1x12x12: ${cold.toFixed(1)} ms first run, ${ms.toFixed(1)} ms warm`);
    assert.ok(ms < 400, `took ${ms.toFixed(0)} ms`);
  });
  const fixtures: [string, Record<string, { dims: number[]; data: Float32Array | BigInt64Array }>][] = [
    ['cifar-resnet8-optA-concat-op13.onnx', { 'input.1': { dims: [1, 3, 32, 32], data: normal32(3072) } }],
    ['mobilenetv2-bn-op17.onnx', { 'input.1': { dims: [1, 3, 64, 64], data: normal32(3 * 64 * 64) } }],
    ['torch-encoder-prenorm-op17.onnx', { ids: { dims: [2, 5], data: BigInt64Array.from({ length: 10 }, () => BigInt(rng.int(5))) } }],
    ['hand-transformer-postnorm-op13.onnx', {
      ids: { dims: [2, 5], data: BigInt64Array.from({ length: 10 }, () => BigInt(rng.int(5))) },
      pad_mask: { dims: [2, 5], data: Float32Array.from({ length: 10 }, (_, i) => (i % 5 < 4 ? 1 : 0)) },
    }],
  ];
  for (const [file, feeds] of fixtures) {
    const path = join(ROOT, 'test', 'fixtures', file);
    it(`fixture ${file}`, { skip: !existsSync(path) && 'fixture missing' }, async () => {
      await crossCheckModel(loadModel(path), feeds, 1e-5);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Semantics onnxruntime cannot check, and the API.

function singleNode(op: string, inputs: string[], attrs: Record<string, BuilderAttr>, outputs = 1): Graph {
  const graph = new Graph({ name: op });
  const b = new GraphBuilder(graph);
  for (const i of inputs) graph.inputs.push({ name: i, type: null });
  const outs = b.op(op, inputs, attrs, { outputs: Array.from({ length: outputs }, (_, k) => `y${k}`) });
  graph.outputs = outs.map((name) => ({ name, type: null }));
  return graph;
}
const values = (t: RefTensor) => Array.from(t.data, Number);

describe('reference interpreter semantics and API', () => {
  it('erf and erfc match tabulated values to ~1e-15 relative', () => {
    // Abramowitz & Stegun / high-precision tables.
    const erfTable: [number, number][] = [[0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [3, 0.9999779095030014]];
    for (const [x, v] of erfTable) {
      assert.ok(Math.abs(erf(x) - v) <= 2e-15 * v, `erf(${x})`);
      assert.ok(Math.abs(erf(-x) + v) <= 2e-15 * v, `erf(${-x})`);
    }
    const erfcTable: [number, number][] = [[1, 0.1572992070502851], [2.5, 4.069520174449590e-4], [3, 2.209049699858544e-5], [5, 1.537459794428035e-12], [10, 2.088487583762545e-45]];
    for (const [x, v] of erfcTable) assert.ok(Math.abs(erfc(x) - v) <= 1e-14 * v, `erfc(${x}) = ${erfc(x)}`);
  });

  it('GroupNormalization: opset 18 per-group and opset 21 per-channel affine, against Instance/LayerNormalization', () => {
    const x = f64([2, 4, 3, 3], normal32(72));
    const scaleC = [0.5, -1, 2, 1.5];
    const biasC = [0.1, 0.2, -0.3, 0.4];
    // num_groups == C is InstanceNormalization with the same per-channel affine (opset 21).
    const gn = evaluate(singleNode('GroupNormalization', ['x', 's', 'b'], { num_groups: 4 }), { x, s: f64([4], scaleC), b: f64([4], biasC) }, { opset: 21 });
    const inorm = evaluate(singleNode('InstanceNormalization', ['x', 's', 'b'], {}), { x, s: f64([4], scaleC), b: f64([4], biasC) });
    values(gn.y0!).forEach((v, i) => assert.ok(Math.abs(v - values(inorm.y0!)[i]!) < 1e-12));
    // Opset 18: 2 groups with per-group scale equals LayerNormalization over each group's
    // (channels, H, W) block with that scale.
    const gn18 = evaluate(singleNode('GroupNormalization', ['x', 's', 'b'], { num_groups: 2 }), { x, s: f64([2], [2, -0.5]), b: f64([2], [0.3, 0.1]) }, { opset: 18 });
    const x5 = { ...x, dims: [2, 2, 2, 3, 3] };
    const ln = evaluate(singleNode('LayerNormalization', ['x', 's', 'b'], { axis: 2 }), {
      x: x5, s: f64([2, 1, 1, 1], [2, -0.5]), b: f64([2, 1, 1, 1], [0.3, 0.1]),
    });
    values(gn18.y0!).forEach((v, i) => assert.ok(Math.abs(v - values(ln.y0!)[i]!) < 1e-12));
  });

  it('random ops read standard noise from randomValues (zeros by default)', () => {
    const g = singleNode('RandomNormalLike', ['x'], { mean: float(1.5), scale: float(2) });
    const x = f64([2, 2], [9, 9, 9, 9]);
    assert.deepEqual(values(evaluate(g, { x }).y0!), [1.5, 1.5, 1.5, 1.5]);
    const z = Float64Array.of(0.5, -1, 2, 0);
    assert.deepEqual(values(evaluate(g, { x }, { randomValues: () => z }).y0!), [2.5, -0.5, 5.5, 1.5]);
    const u = singleNode('RandomUniform', [], { shape: [3], low: float(-1), high: float(3) });
    assert.deepEqual(values(evaluate(u, {}, { randomValues: () => Float64Array.of(0, 0.5, 0.75) }).y0!), [-1, 1, 2]);
    const ul = singleNode('RandomUniformLike', ['x'], { high: float(2) });
    assert.deepEqual(values(evaluate(ul, { x }, { randomValues: () => Float64Array.of(0, 0.25, 0.5, 1) }).y0!), [0, 0.5, 1, 2]);
    const rn = singleNode('RandomNormal', [], { shape: [2] });
    assert.deepEqual(values(evaluate(rn, {}).y0!), [0, 0]);
    const bern = singleNode('Bernoulli', ['p'], {});
    assert.deepEqual(values(evaluate(bern, { p: f64([3], [0.2, 0.5, 0.9]) }, { randomValues: () => Float64Array.of(0.3, 0.3, 0.3) }).y0!), [0, 1, 1]);
    assert.throws(() => evaluate(g, { x }, { randomValues: () => Float64Array.of(1) }), /randomValues gave 1 values for 4/);
  });

  it('training-mode Dropout applies the dropoutMask option and scales by 1/(1-ratio)', () => {
    const g = singleNode('Dropout', ['x', 'r', 't'], {}, 2);
    const feeds = { x: f64([4], [1, 2, 3, 4]), r: f64([], [0.5]), t: { dims: [], data: Uint8Array.of(1), dtype: 'bool' as const } };
    const out = evaluate(g, feeds, { dropoutMask: () => [1, 0, 0, 1] });
    assert.deepEqual(values(out.y0!), [2, 0, 0, 8]);
    assert.deepEqual(values(out.y1!), [1, 0, 0, 1]);
    assert.equal(out.y1!.dtype, 'bool');
    assert.throws(() => evaluate(g, feeds), /needs the dropoutMask option/);
    // training_mode with ratio 0 is an identity.
    assert.deepEqual(values(evaluate(g, { ...feeds, r: f64([], [0]) }).y0!), [1, 2, 3, 4]);
  });

  it('initializerOverrides replace initializers; outputs selects intermediate values', () => {
    const graph = new Graph({ name: 'g' });
    const b = new GraphBuilder(graph);
    graph.inputs.push({ name: 'x', type: null });
    const w = b.initializer('w', [2], Float32Array.of(2, 3));
    const m = b.op1('Mul', ['x', w]);
    const y = b.op1('ReduceSum', [m], { keepdims: 0 });
    graph.outputs = [{ name: y, type: null }];
    const x = f64([2], [1, 1]);
    assert.deepEqual(values(evaluate(graph, { x }, { opset: 13 })[y]!), [5]);
    assert.deepEqual(values(evaluate(graph, { x }, { opset: 13, initializerOverrides: { [w]: f64([2], [10, 0.5]) } })[y]!), [10.5]);
    const both = evaluate(graph, { x }, { opset: 13, outputs: [m, y] });
    assert.deepEqual(values(both[m]!), [2, 3]);
    assert.throws(() => evaluate(graph, { x }, { initializerOverrides: { nope: x } }), /'nope', which is not an initializer/);
  });

  it('int64 results keep their type and saturate at the int64 range', () => {
    const g = singleNode('Add', ['a', 'b'], {});
    const out = evaluate(g, { a: i64([2], [2 ** 40, -5]), b: i64([2], [1, 2]) });
    assert.equal(out.y0!.dtype, 'int64');
    assert.deepEqual([...(out.y0!.data as BigInt64Array)], [2n ** 40n + 1n, -3n]);
    const s = singleNode('Slice', ['x', 's', 'e'], {});
    const sl = evaluate(s, { x: f64([4], [1, 2, 3, 4]), s: i64([1], [1]), e: { dims: [1], data: BigInt64Array.of(2n ** 63n - 1n), dtype: 'int64' } });
    assert.deepEqual(values(sl.y0!), [2, 3, 4]);
  });

  it('errors name the unknown op, the missing feed and the failing node', () => {
    const g = singleNode('FancyOp', ['x'], {});
    assert.throws(() => evaluate(g, { x: f64([1], [1]) }), /operator FancyOp \(node 'FancyOp'\) is not implemented/);
    const custom = singleNode('Relu', ['x'], {});
    custom.nodes[0]!.domain = 'com.example';
    assert.throws(() => evaluate(custom, { x: f64([1], [1]) }), /operator com\.example:Relu/);
    const relu = singleNode('Relu', ['x'], {});
    assert.throws(() => evaluate(relu, {}), /graph input 'x' was not fed/);
    assert.throws(() => evaluate(relu, { x: f64([1], [1]), z: f64([1], [1]) }), /feed 'z' is not an input/);
    const mm = singleNode('MatMul', ['a', 'b'], {});
    assert.throws(() => evaluate(mm, { a: f64([2, 3], [1, 2, 3, 4, 5, 6]), b: f64([2, 2], [1, 2, 3, 4]) }), /MatMul node 'MatMul'.*inner dimensions/);
  });

  it('evaluates nodes listed out of topological order', () => {
    const graph = new Graph({ name: 'g' });
    const b = new GraphBuilder(graph);
    graph.inputs.push({ name: 'x', type: null });
    const a = b.op1('Neg', ['x']);
    const y = b.op1('Exp', [a]);
    graph.nodes.reverse();
    graph.outputs = [{ name: y, type: null }];
    assert.deepEqual(values(evaluate(graph, { x: f64([1], [0]) })[y]!), [1]);
  });
});
