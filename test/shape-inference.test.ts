import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Graph, Model, makeTensorTypeProto, tensorTypeOf, type Dim, type TensorType } from '../src/graph/ir.js';
import { GraphBuilder, float, floats } from '../src/graph/builder.js';
import { onnx } from '../src/graph/onnx.js';
import { encodeModel, readModelProto } from '../src/graph/io.js';
import { dtypeName, int64Tensor, makeTensor, tensorDims, tensorToArray, type DType } from '../src/graph/tensor.js';
import { inferShapes, inferModelShapes, opsWithShapeRules, registerShapeRule } from '../src/graph/shape-inference.js';
import { Random } from '../src/random.js';
import { TESTDATA, findModels } from './helpers/onnx-testdata.js';

type Inputs = Record<string, [DType, Dim[]]>;

function graphWith(inputs: Inputs): { g: Graph; b: GraphBuilder } {
  const g = new Graph({
    name: 'g',
    inputs: Object.entries(inputs).map(([name, [dtype, shape]]) => ({ name, type: makeTensorTypeProto({ dtype, shape }) })),
  });
  return { g, b: new GraphBuilder(g) };
}

function shapeOf(types: Map<string, TensorType>, name: string): Dim[] | null | undefined {
  return types.get(name)?.shape;
}

/** The textbook output length of a convolution / pooling window. */
function windowOut(d: number, k: number, s: number, padSum: number, dil = 1): number {
  return Math.floor((d + padSum - dil * (k - 1) - 1) / s) + 1;
}

test('Conv output sizes follow the closed form for strides, pads, dilations and auto_pad', () => {
  const { g, b } = graphWith({ x: ['float32', ['N', 3, 224, 224]] });
  const w7 = b.initializer('w7', [64, 3, 7, 7], new Float32Array(64 * 3 * 49));
  const y1 = b.op1('Conv', [x(), w7], { strides: [2, 2], pads: [3, 3, 3, 3] });
  const w3 = b.initializer('w3', [8, 3, 3, 3], new Float32Array(8 * 27));
  const y2 = b.op1('Conv', [x(), w3], { dilations: [2, 3], pads: [1, 0, 2, 1], strides: [1, 2] });
  const y3 = b.op1('Conv', [x(), w3], { auto_pad: 'SAME_UPPER', strides: [3, 3] });
  const y4 = b.op1('Conv', [x(), w3], { auto_pad: 'VALID', strides: [2, 2] });
  const wg = b.initializer('wg', [6, 1, 3, 3], new Float32Array(54));
  const y5 = b.op1('Conv', [x(), wg], { group: 3, pads: [1, 1, 1, 1] });
  function x() {
    return 'x';
  }
  const t = inferShapes(g);
  assert.deepEqual(shapeOf(t, y1), ['N', 64, 112, 112]); // ResNet stem, by hand
  assert.deepEqual(shapeOf(t, y2), ['N', 8, windowOut(224, 3, 1, 3, 2), windowOut(224, 3, 2, 1, 3)]);
  assert.deepEqual(shapeOf(t, y3), ['N', 8, 75, 75]); // ceil(224 / 3)
  assert.deepEqual(shapeOf(t, y4), ['N', 8, 111, 111]); // floor((224 - 3) / 2) + 1
  assert.deepEqual(shapeOf(t, y5), ['N', 6, 224, 224]);
  assert.equal(t.get(y1)?.dtype, 'float32');
  // Recorded in the graph as value_info, batch still symbolic.
  assert.deepEqual(tensorTypeOf(g.valueInfo.get(y1)?.type)?.shape, ['N', 64, 112, 112]);
});

test('ConvTranspose: strides/pads/output_padding, output_shape, SAME, groups', () => {
  const { g, b } = graphWith({ x: ['float32', [2, 4, 7, 9]] });
  const w = b.initializer('w', [4, 3, 3, 3], new Float32Array(108));
  const y1 = b.op1('ConvTranspose', ['x', w], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 0] });
  const y2 = b.op1('ConvTranspose', ['x', w], { strides: [2, 3], output_shape: [15, 28] });
  const y3 = b.op1('ConvTranspose', ['x', w], { strides: [2, 2], auto_pad: 'SAME_UPPER' });
  const y4 = b.op1('ConvTranspose', ['x', w], { group: 2, dilations: [2, 1] });
  const t = inferShapes(g);
  // stride * (in - 1) + output_padding + (k - 1) * dilation + 1 - pads
  assert.deepEqual(shapeOf(t, y1), [2, 3, 2 * 6 + 1 + 3 - 2, 2 * 8 + 0 + 3 - 2]);
  assert.deepEqual(shapeOf(t, y2), [2, 3, 15, 28]);
  assert.deepEqual(shapeOf(t, y3), [2, 3, 14, 18]);
  assert.deepEqual(shapeOf(t, y4), [2, 6, 6 + 4 + 1, 8 + 2 + 1]);
});

test('pooling: ceil_mode, auto_pad, dilations, global pools, indices output', () => {
  const { g, b } = graphWith({ x: ['float32', ['N', 16, 32, 33]] });
  const [m1, idx] = b.op('MaxPool', ['x'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, { outputs: 2 });
  const m2 = b.op1('MaxPool', ['x'], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 });
  const m3 = b.op1('MaxPool', ['x'], { kernel_shape: [2, 2], dilations: [2, 2] });
  const a1 = b.op1('AveragePool', ['x'], { kernel_shape: [2, 2], strides: [2, 2], auto_pad: 'SAME_LOWER' });
  const a2 = b.op1('AveragePool', ['x'], { kernel_shape: [5, 4], auto_pad: 'VALID' });
  const gp = b.op1('GlobalAveragePool', ['x']);
  const gm = b.op1('GlobalMaxPool', ['x']);
  const t = inferShapes(g);
  assert.deepEqual(shapeOf(t, m1), ['N', 16, 16, 17]);
  assert.deepEqual(t.get(idx), { dtype: 'int64', shape: ['N', 16, 16, 17] });
  assert.deepEqual(shapeOf(t, m2), ['N', 16, 16, 16]); // ceil(29/2)+1 = 16, ceil(30/2)+1 = 16
  assert.deepEqual(shapeOf(t, m3), ['N', 16, 30, 31]);
  assert.deepEqual(shapeOf(t, a1), ['N', 16, 16, 17]);
  assert.deepEqual(shapeOf(t, a2), ['N', 16, 28, 30]);
  assert.deepEqual(shapeOf(t, gp), ['N', 16, 1, 1]);
  assert.deepEqual(shapeOf(t, gm), ['N', 16, 1, 1]);
});

test('normalization layers, including training-mode and statistics outputs', () => {
  const { g, b } = graphWith({ x: ['float32', ['N', 8, 5, 5]], s: ['float16', ['B', 'T', 32]] });
  const c = (name: string) => b.initializer(name, [8], new Float32Array(8));
  const [y, rm, rv] = b.op('BatchNormalization', ['x', c('sc'), c('bi'), c('mu'), c('va')], { training_mode: 1 }, { outputs: 3 });
  const inorm = b.op1('InstanceNormalization', ['x', c('s2'), c('b2')]);
  const gn = b.op1('GroupNormalization', ['x', c('s3'), c('b3')], { num_groups: 2 });
  const gamma = b.initializer('gamma', [32], new Uint16Array(32), 'float16');
  const [ln, mean, inv] = b.op('LayerNormalization', ['s', gamma], { axis: -1 }, { outputs: 3 });
  const [ln2, mean2] = b.op('LayerNormalization', ['s', gamma], { axis: 1, stash_type: 1 }, { outputs: 2 });
  const t = inferShapes(g);
  assert.deepEqual(shapeOf(t, y), ['N', 8, 5, 5]);
  assert.deepEqual(shapeOf(t, rm), [8]);
  assert.deepEqual(shapeOf(t, rv), [8]);
  assert.deepEqual(shapeOf(t, inorm), ['N', 8, 5, 5]);
  assert.deepEqual(shapeOf(t, gn), ['N', 8, 5, 5]);
  assert.deepEqual(t.get(ln), { dtype: 'float16', shape: ['B', 'T', 32] });
  assert.deepEqual(t.get(mean), { dtype: 'float32', shape: ['B', 'T', 1] });
  assert.deepEqual(t.get(inv), { dtype: 'float32', shape: ['B', 'T', 1] });
  assert.deepEqual(shapeOf(t, ln2), ['B', 'T', 32]);
  assert.deepEqual(shapeOf(t, mean2), ['B', 1, 1]);
});

test('Gemm, MatMul (batched, broadcast, 1-D) and Einsum', () => {
  const { g, b } = graphWith({
    a: ['float32', ['N', 10]], w: ['float32', [20, 10]], p: ['float32', [2, 1, 4, 5]], q: ['float32', [3, 5, 6]],
    v: ['float32', [5]], m: ['float32', ['B', 'T', 5]],
  });
  const gemm = b.op1('Gemm', ['a', 'w'], { transB: 1 });
  const gemmT = b.op1('Gemm', ['w', 'a'], { transA: 1, transB: 1 });
  const mm = b.op1('MatMul', ['p', 'q']);
  const vm = b.op1('MatMul', ['v', 'q']);
  const mv = b.op1('MatMul', ['p', 'v']);
  const vv = b.op1('MatMul', ['v', 'v']);
  const e1 = b.op1('Einsum', ['m', 'q'], { equation: 'btj,bjk->btk' });
  const e2 = b.op1('Einsum', ['p'], { equation: '...ij->...ji' });
  const e3 = b.op1('Einsum', ['a', 'w'], { equation: 'ni,ki' }); // implicit output: 'kn'
  const t = inferShapes(g);
  assert.deepEqual(shapeOf(t, gemm), ['N', 20]);
  assert.deepEqual(shapeOf(t, gemmT), [10, 'N']);
  assert.deepEqual(shapeOf(t, mm), [2, 3, 4, 6]);
  assert.deepEqual(shapeOf(t, vm), [3, 6]);
  assert.deepEqual(shapeOf(t, mv), [2, 1, 4]);
  assert.deepEqual(shapeOf(t, vv), []);
  assert.deepEqual(shapeOf(t, e1), [3, 'T', 6]); // B broadcasts against 3 only if B is 3 or 1
  assert.deepEqual(shapeOf(t, e2), [2, 1, 5, 4]);
  assert.deepEqual(shapeOf(t, e3), [20, 'N']);
});

test('elementwise ops broadcast numpy-style and keep or change dtypes as specified', () => {
  const { g, b } = graphWith({ x: ['float32', ['N', 3, 1, 5]], y: ['float32', [4, 1]], i: ['int32', [5]], c: ['bool', [1, 4, 5]] });
  const add = b.op1('Add', ['x', 'y']);
  const unary = ['Relu', 'Sigmoid', 'Tanh', 'Erf', 'Sqrt', 'Exp', 'Log', 'Neg', 'Abs', 'Reciprocal', 'Softmax', 'LogSoftmax', 'HardSigmoid', 'HardSwish', 'Gelu', 'Softplus', 'Identity', 'Clip']
    .map((op) => b.op1(op, ['x']));
  const leaky = b.op1('LeakyRelu', ['x'], { alpha: float(0.1) });
  const eq = b.op1('Equal', ['i', 'i']);
  const less = b.op1('Less', ['x', 'y']);
  const not = b.op1('Not', ['c']);
  const where = b.op1('Where', ['c', 'x', 'y']);
  const cast = b.op1('Cast', ['x'], { to: onnx.TensorProto.DataType.FLOAT16 });
  const castLike = b.op1('CastLike', ['i', 'x']);
  const [drop, mask] = b.op('Dropout', ['x'], {}, { outputs: 2 });
  const sum = b.op1('Sum', ['x', 'y', 'c']);
  const max = b.op1('Max', ['x', 'y']);
  const pow = b.op1('Pow', ['x', 'i']);
  const t = inferShapes(g);
  assert.deepEqual(shapeOf(t, add), ['N', 3, 4, 5]);
  for (const u of unary) assert.deepEqual(t.get(u), { dtype: 'float32', shape: ['N', 3, 1, 5] });
  assert.deepEqual(shapeOf(t, leaky), ['N', 3, 1, 5]);
  assert.deepEqual(t.get(eq), { dtype: 'bool', shape: [5] });
  assert.deepEqual(t.get(less), { dtype: 'bool', shape: ['N', 3, 4, 5] });
  assert.deepEqual(t.get(not), { dtype: 'bool', shape: [1, 4, 5] });
  assert.deepEqual(t.get(where), { dtype: 'float32', shape: ['N', 3, 4, 5] });
  assert.deepEqual(t.get(cast), { dtype: 'float16', shape: ['N', 3, 1, 5] });
  assert.deepEqual(t.get(castLike), { dtype: 'float32', shape: [5] });
  assert.deepEqual(t.get(drop), { dtype: 'float32', shape: ['N', 3, 1, 5] });
  assert.deepEqual(t.get(mask), { dtype: 'bool', shape: ['N', 3, 1, 5] });
  assert.deepEqual(shapeOf(t, sum), ['N', 3, 4, 5]);
  assert.deepEqual(shapeOf(t, max), ['N', 3, 4, 5]);
  assert.deepEqual(t.get(pow), { dtype: 'float32', shape: ['N', 3, 1, 5] });
});

test('Reshape (0, -1, allowzero, Constant target), Flatten, Transpose, Concat, Split', () => {
  const { g, b } = graphWith({ x: ['float32', ['N', 4, 6, 8]], z: ['float32', [0, 3]] });
  const r1 = b.op1('Reshape', ['x', b.int64s('s1', [0, -1, 8])]);
  const shapeConst = b.op1('Constant', [], { value: int64Tensor('v', [0, 24, -1]) });
  const r2 = b.op1('Reshape', ['x', shapeConst]);
  const r3 = b.op1('Reshape', ['z', b.int64s('s3', [3, 0])], { allowzero: 1 });
  const r4 = b.op1('Reshape', ['x', b.int64s('s4', [-1, 48])]);
  const f0 = b.op1('Flatten', ['x'], { axis: 0 });
  const f2 = b.op1('Flatten', ['x'], { axis: -2 });
  const tr = b.op1('Transpose', ['x'], { perm: [0, 2, 3, 1] });
  const trDefault = b.op1('Transpose', ['x']);
  const cat = b.op1('Concat', ['x', 'x', 'x'], { axis: -1 });
  const [s1, s2] = b.op('Split', ['x', b.int64s('sp', [2, 4])], { axis: 2 }, { outputs: 2 });
  const [u1, u2, u3] = b.op('Split', ['x'], { axis: 3, num_outputs: 3 }, { outputs: 3 });
  const [e1, e2] = b.op('Split', ['x'], { axis: 1 }, { outputs: 2 });
  const t = inferShapes(g);
  assert.deepEqual(shapeOf(t, r1), ['N', 24, 8]);
  assert.deepEqual(shapeOf(t, r2), ['N', 24, 8]);
  assert.deepEqual(shapeOf(t, r3), [3, 0]);
  assert.deepEqual(shapeOf(t, r4), ['4*N', 48]); // products of symbols stay symbolic
  assert.deepEqual(shapeOf(t, f0), [1, '192*N']);
  assert.deepEqual(shapeOf(t, f2), ['4*N', 48]);
  assert.deepEqual(shapeOf(t, tr), ['N', 6, 8, 4]);
  assert.deepEqual(shapeOf(t, trDefault), [8, 6, 4, 'N']);
  assert.deepEqual(shapeOf(t, cat), ['N', 4, 6, 24]);
  assert.deepEqual([shapeOf(t, s1), shapeOf(t, s2)], [['N', 4, 2, 8], ['N', 4, 4, 8]]);
  assert.deepEqual([u1, u2, u3].map((u) => shapeOf(t, u)), [['N', 4, 6, 3], ['N', 4, 6, 3], ['N', 4, 6, 2]]);
  assert.deepEqual([shapeOf(t, e1), shapeOf(t, e2)], [['N', 2, 6, 8], ['N', 2, 6, 8]]);
});

test('Slice clamps starts/ends (INT64 limits, negative steps); Squeeze/Unsqueeze attr and input forms', () => {
  const { g, b } = graphWith({ x: ['float32', [10, 20, 'T']] });
  const INT64_MAX = 2n ** 63n - 1n;
  const i64 = (name: string, vals: bigint[]) => b.initializer(name, [vals.length], BigInt64Array.from(vals), 'int64');
  const s1 = b.op1('Slice', ['x', i64('st', [1n, -5n]), i64('en', [INT64_MAX, 1000n]), i64('ax', [0n, 1n])]);
  const s2 = b.op1('Slice', ['x', i64('st2', [-1n]), i64('en2', [-INT64_MAX - 1n]), i64('ax2', [1n]), i64('sp2', [-3n])]);
  const s3 = b.op1('Slice', ['x', i64('st3', [0n]), i64('en3', [INT64_MAX]), i64('ax3', [-1n])]);
  const s4 = b.op1('Slice', ['x', i64('st4', [2n]), i64('en4', [9n]), i64('ax4', [0n]), i64('sp4', [2n])]);
  const sOld = b.op1('Slice', ['x'], { starts: [0, 3], ends: [5, -3], axes: [0, 1] });
  const u13 = b.op1('Unsqueeze', ['x', b.int64s('ua', [0, -1])]);
  const u11 = b.op1('Unsqueeze', ['x'], { axes: [1] });
  const sq13 = b.op1('Squeeze', [u13, b.int64s('sa', [0])]);
  const sqAll = b.op1('Squeeze', [b.op1('Unsqueeze', [s1, b.int64s('ub', [0])])]);
  const sq11 = b.op1('Squeeze', [u11], { axes: [1] });
  const t = inferShapes(g);
  assert.deepEqual(shapeOf(t, s1), [9, 5, 'T']);
  assert.deepEqual(shapeOf(t, s2), [10, 7, 'T']); // indices 19, 16, ..., 1
  assert.deepEqual(shapeOf(t, s3), [10, 20, 'T']);
  assert.deepEqual(shapeOf(t, s4), [4, 20, 'T']); // 2, 4, 6, 8
  assert.deepEqual(shapeOf(t, sOld), [5, 14, 'T']);
  assert.deepEqual(shapeOf(t, u13), [1, 10, 20, 'T', 1]);
  assert.deepEqual(shapeOf(t, u11), [10, 1, 20, 'T']);
  assert.deepEqual(shapeOf(t, sq13), [10, 20, 'T', 1]);
  assert.equal(shapeOf(t, sqAll), null); // T might be 1: the rank is unknown
  assert.deepEqual(shapeOf(t, sq11), [10, 20, 'T']);
});

test('Gather, GatherElements, Expand, Tile, Pad (input and attribute forms)', () => {
  const { g, b } = graphWith({ x: ['float32', [5, 'N', 3]], idx: ['int64', [2, 7]], one: ['float32', [3, 1]] });
  const g0 = b.op1('Gather', ['x', 'idx']);
  const g1 = b.op1('Gather', ['x', b.initializer('k', [], BigInt64Array.of(1n), 'int64')], { axis: 2 });
  const ge = b.op1('GatherElements', ['x', 'idx'], { axis: 1 });
  const ex = b.op1('Expand', ['one', b.int64s('es', [2, 1, 6])]);
  const tile = b.op1('Tile', ['x', b.int64s('rep', [2, 1, 4])]);
  const pad = b.op1('Pad', ['x', b.int64s('pads', [1, 0, 2, 0, 0, 3])]);
  const padAttr = b.op1('Pad', ['x'], { pads: [0, 0, 1, 0, 0, 1] });
  const padAxes = b.op1('Pad', ['x', b.int64s('pads2', [1, 1]), '', b.int64s('pax', [-1])]);
  const t = inferShapes(g);
  assert.deepEqual(shapeOf(t, g0), [2, 7, 'N', 3]);
  assert.deepEqual(shapeOf(t, g1), [5, 'N']);
  assert.deepEqual(shapeOf(t, ge), [2, 7]);
  assert.deepEqual(shapeOf(t, ex), [2, 3, 6]);
  assert.deepEqual(shapeOf(t, tile), [10, 'N', 12]);
  assert.deepEqual(shapeOf(t, pad), [6, 'N', 8]); // begins [1, 0, 2], ends [0, 0, 3]
  assert.deepEqual(shapeOf(t, padAttr), [5, 'N', 5]);
  assert.deepEqual(shapeOf(t, padAxes), [5, 'N', 5]);
});

test('reductions: axes attribute before opset 18, input after, keepdims, noop_with_empty_axes; ArgMax, TopK', () => {
  const { g, b } = graphWith({ x: ['float32', ['N', 4, 6]] });
  const m1 = b.op1('ReduceMean', ['x'], { axes: [1, 2] });
  const m2 = b.op1('ReduceMean', ['x', b.int64s('ax', [-1])], { keepdims: 0 });
  const s1 = b.op1('ReduceSum', ['x']);
  const s2 = b.op1('ReduceSum', ['x'], { keepdims: 0 });
  const s3 = b.op1('ReduceSum', ['x', b.int64s('none', [])], { noop_with_empty_axes: 1 });
  const l2 = b.op1('ReduceL2', ['x'], { axes: [0], keepdims: 0 });
  const mx = b.op1('ReduceMax', ['x', b.int64s('ax2', [1])]);
  const am = b.op1('ArgMax', ['x'], { axis: -1, keepdims: 0 });
  const [tv, ti] = b.op('TopK', ['x', b.int64s('k', [3])], { axis: 1 }, { outputs: 2 });
  const t = inferShapes(g);
  assert.deepEqual(shapeOf(t, m1), ['N', 1, 1]);
  assert.deepEqual(shapeOf(t, m2), ['N', 4]);
  assert.deepEqual(shapeOf(t, s1), [1, 1, 1]);
  assert.deepEqual(shapeOf(t, s2), []);
  assert.deepEqual(shapeOf(t, s3), ['N', 4, 6]);
  assert.deepEqual(shapeOf(t, l2), [4, 6]);
  assert.deepEqual(shapeOf(t, mx), ['N', 1, 6]);
  assert.deepEqual(t.get(am), { dtype: 'int64', shape: ['N', 4] });
  assert.deepEqual(t.get(tv), { dtype: 'float32', shape: ['N', 3, 6] });
  assert.deepEqual(t.get(ti), { dtype: 'int64', shape: ['N', 3, 6] });
});

test('Shape, Size, ConstantOfShape, Constant, Range, OneHot, random ops, Resize, Trilu, losses', () => {
  const { g, b } = graphWith({ x: ['float32', ['N', 3, 8, 8]], lab: ['int64', ['N']], seg: ['int64', ['N', 8, 8]] });
  const sh = b.op1('Shape', ['x']);
  const shPart = b.op1('Shape', ['x'], { start: 1, end: -1 });
  const size = b.op1('Size', ['x']);
  const cos = b.op1('ConstantOfShape', [b.int64s('cs', [2, 3])], { value: makeTensor('v', [1], Int32Array.of(7)) });
  const cf = b.op1('Constant', [], { value_floats: floats([1, 2, 3]) });
  const ci = b.op1('Constant', [], { value_int: 4 });
  const range = b.op1('Range', [b.scalar('r0', 1), b.scalar('r1', 10), b.scalar('rd', 2.5)]);
  const oh = b.op1('OneHot', ['lab', b.int64s('depth', [10]), b.initializer('ohv', [2], Float32Array.of(0, 1))], { axis: -1 });
  const rnl = b.op1('RandomNormalLike', ['x']);
  const rn = b.op1('RandomNormal', [], { shape: [2, 5], dtype: onnx.TensorProto.DataType.DOUBLE });
  const rz1 = b.op1('Resize', ['x', '', b.initializer('sc', [4], Float32Array.of(1, 1, 2, 1.5))], { mode: 'nearest' });
  const rz2 = b.op1('Resize', ['x', '', '', b.int64s('sz', [1, 3, 5, 7])]);
  const up = b.op1('Upsample', ['x', b.initializer('us', [4], Float32Array.of(1, 1, 2, 2))]);
  const tri = b.op1('Trilu', ['x']);
  const nll = b.op1('NegativeLogLikelihoodLoss', [b.op1('LogSoftmax', ['x'], { axis: 1 }), 'seg']);
  const nllNone = b.op1('NegativeLogLikelihoodLoss', ['x', 'seg'], { reduction: 'none' });
  const [sce, logp] = b.op('SoftmaxCrossEntropyLoss', ['x', 'seg'], { reduction: 'sum' }, { outputs: 2 });
  const t = inferShapes(g);
  assert.deepEqual(t.get(sh), { dtype: 'int64', shape: [4] });
  assert.deepEqual(shapeOf(t, shPart), [2]);
  assert.deepEqual(t.get(size), { dtype: 'int64', shape: [] });
  assert.deepEqual(t.get(cos), { dtype: 'int32', shape: [2, 3] });
  assert.deepEqual(t.get(cf), { dtype: 'float32', shape: [3] });
  assert.deepEqual(t.get(ci), { dtype: 'int64', shape: [] });
  assert.deepEqual(t.get(range), { dtype: 'float32', shape: [4] }); // 1, 3.5, 6, 8.5
  assert.deepEqual(t.get(oh), { dtype: 'float32', shape: ['N', 10] });
  assert.deepEqual(t.get(rnl), { dtype: 'float32', shape: ['N', 3, 8, 8] });
  assert.deepEqual(t.get(rn), { dtype: 'float64', shape: [2, 5] });
  assert.deepEqual(shapeOf(t, rz1), ['N', 3, 16, 12]);
  assert.deepEqual(shapeOf(t, rz2), [1, 3, 5, 7]);
  assert.deepEqual(shapeOf(t, up), ['N', 3, 16, 16]);
  assert.deepEqual(shapeOf(t, tri), ['N', 3, 8, 8]);
  assert.deepEqual(t.get(nll), { dtype: 'float32', shape: [] });
  assert.deepEqual(shapeOf(t, nllNone), ['N', 8, 8]);
  assert.deepEqual(shapeOf(t, sce), []);
  assert.deepEqual(shapeOf(t, logp), ['N', 3, 8, 8]);
});

/** The chain torch.onnx.export writes for x.view(x.size(0), -1). */
function buildTorchFlatten(g: Graph, b: GraphBuilder, input: string): string {
  const shape = b.op1('Shape', [input]);
  const zero = b.op1('Constant', [], { value: makeTensor('z', [], BigInt64Array.of(0n), 'int64') });
  const batch = b.op1('Gather', [shape, zero], { axis: 0 });
  const unsq = b.op1('Unsqueeze', [batch, b.int64s('ax0', [0])]);
  const minusOne = b.op1('Constant', [], { value: int64Tensor('m1', [-1]) });
  const target = b.op1('Concat', [unsq, minusOne], { axis: 0 });
  return b.op1('Reshape', [input, target]);
}

test('exported shape arithmetic (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) resolves, symbolic or static', () => {
  for (const [shape, expected] of [
    [[2, 16, 4, 4], [2, 256]],
    [['N', 16, 4, 4], ['N', 256]],
  ] as [Dim[], Dim[]][]) {
    const { g, b } = graphWith({ x: ['float32', shape] });
    const y = buildTorchFlatten(g, b, 'x');
    assert.deepEqual(shapeOf(inferShapes(g), y), expected);
  }
  // Size arithmetic on a static shape: view(b, c // 2, -1) with Div/Mul/Cast in between.
  const { g, b } = graphWith({ x: ['float32', [3, 8, 5]] });
  const shape = b.op1('Shape', ['x']);
  const c = b.op1('Gather', [shape, b.initializer('i1', [1], BigInt64Array.of(1n), 'int64')]);
  const half = b.op1('Div', [c, b.int64s('two', [2])]);
  const asFloat = b.op1('Cast', [half], { to: onnx.TensorProto.DataType.FLOAT });
  const back = b.op1('Cast', [b.op1('Mul', [asFloat, b.initializer('one', [1], Float32Array.of(1))])], { to: onnx.TensorProto.DataType.INT64 });
  const n = b.op1('Slice', [shape, b.int64s('s0', [0]), b.int64s('s1', [1])]);
  const eq = b.op1('Equal', [back, b.int64s('neg', [-1])]);
  const safe = b.op1('Where', [eq, b.int64s('fallback', [1]), back]);
  const target = b.op1('Concat', [n, safe, b.int64s('rest', [-1])], { axis: 0 });
  const y = b.op1('Reshape', ['x', target]);
  const t = inferShapes(g);
  assert.deepEqual(shapeOf(t, y), [3, 4, 10]);
  // With the batch symbolic and the sizes given through inputShapes.
  const t2 = inferShapes(g, { inputShapes: { x: [6, 8, 5] } });
  assert.deepEqual(shapeOf(t2, y), [6, 4, 10]);
});

test('unknown ops leave outputs unknown without throwing; declared types are refined, never weakened', () => {
  const { g, b } = graphWith({ x: ['float32', ['N', 4]] });
  const custom = b.op1('MyCustomOp', ['x'], {}, { domain: 'com.example' });
  const after = b.op1('Relu', [custom]);
  const known = b.op1('Sigmoid', ['x']);
  // A value_info written by someone else says more than inference can know about `after`.
  g.valueInfo.set(after, { name: after, type: makeTensorTypeProto({ dtype: 'float32', shape: [null, 7] }) });
  // And a less specific one for `known`: inference refines it.
  g.valueInfo.set(known, { name: known, type: makeTensorTypeProto({ dtype: 'float32', shape: [null, null] }) });
  g.outputs.push({ name: after, type: null });
  const t = inferShapes(g);
  assert.equal(t.has(custom), false);
  assert.deepEqual(shapeOf(t, after), [null, 7]);
  assert.deepEqual(tensorTypeOf(g.valueInfo.get(after)?.type)?.shape, [null, 7]);
  assert.deepEqual(tensorTypeOf(g.valueInfo.get(known)?.type)?.shape, ['N', 4]);
  // A malformed node (Reshape without its shape input) does not throw either.
  const bad = b.op1('Reshape', ['x']);
  assert.doesNotThrow(() => inferShapes(g));
  assert.equal(shapeOf(inferShapes(g), bad), null);
  assert.throws(() => inferShapes(g, { inputShapes: { nope: [1] } }), /not an input/);
});

test('graph inputs and typed outputs keep their declared types', () => {
  const { g, b } = graphWith({ x: ['float32', ['N', 4]] });
  const y = b.op1('Relu', ['x']);
  g.outputs.push({ name: y, type: makeTensorTypeProto({ dtype: 'float32', shape: ['batch', 4] }) });
  const t = inferShapes(g, { inputShapes: { x: [2, 4] } });
  assert.deepEqual(shapeOf(t, y), [2, 4]);
  assert.deepEqual(tensorTypeOf(g.outputs[0]!.type)?.shape, ['batch', 4]);
  assert.deepEqual(tensorTypeOf(g.inputs[0]!.type)?.shape, ['N', 4]);
  assert.ok(opsWithShapeRules().length > 150);
  // record: false leaves the graph untouched.
  const z = b.op1('Sigmoid', [y]);
  assert.deepEqual(shapeOf(inferShapes(g, { record: false }), z), ['N', 4]);
  assert.equal(g.valueInfo.has(z), false);
});

function modelOf(g: Graph, opset: number): Model {
  const shell = onnx.ModelProto.create({ irVersion: 8, producerName: 'rp-onnx-test', opsetImport: [{ domain: '', version: opset }] });
  return new Model(shell, g);
}

test('inferred shapes equal the shapes onnxruntime produces', async () => {
  const rng = new Random(7);
  const { g, b } = graphWith({ x: ['float32', [2, 3, 17, 14]], tok: ['float32', [2, 5, 12]] });
  const w = b.initializer('w', [4, 3, 3, 2], Float32Array.from({ length: 72 }, () => rng.normal()));
  const wt = b.initializer('wt', [3, 2, 3, 3], Float32Array.from({ length: 54 }, () => rng.normal()));
  const outs = [
    b.op1('Conv', ['x', w], { strides: [2, 3], pads: [1, 0, 2, 1], dilations: [2, 1] }),
    b.op1('Conv', ['x', w], { auto_pad: 'SAME_LOWER', strides: [2, 2] }),
    b.op1('ConvTranspose', ['x', wt], { strides: [2, 3], pads: [1, 1, 0, 2], output_padding: [1, 2] }),
    b.op1('ConvTranspose', ['x', wt], { strides: [2, 2], auto_pad: 'SAME_UPPER' }),
    b.op1('MaxPool', ['x'], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }),
    b.op1('MaxPool', ['x'], { kernel_shape: [2, 3], strides: [3, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }),
    b.op1('MaxPool', ['x'], { kernel_shape: [3, 2], dilations: [2, 2], strides: [2, 1] }),
    b.op1('AveragePool', ['x'], { kernel_shape: [4, 4], strides: [3, 3], ceil_mode: 1, pads: [1, 1, 1, 1] }),
    b.op1('AveragePool', ['x'], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' }),
    b.op1('Resize', ['x', '', b.initializer('scales', [4], Float32Array.of(1, 1, 0.7, 1.33))], { mode: 'linear' }),
    b.op1('Slice', ['x', b.int64s('st', [-3, 1]), b.int64s('en', [-100, 100]), b.int64s('ax', [3, 2]), b.int64s('sp', [-2, 4])]),
    b.op1('Einsum', ['tok', 'tok'], { equation: 'bik,bjk->bij' }),
    b.op1('MatMul', ['tok', b.initializer('m', [12, 7], new Float32Array(84))]),
    b.op1('ReduceMean', ['x'], { axes: [1, 3], keepdims: 0 }),
    b.op1('Pad', ['x', b.int64s('pads', [0, 1, 2, 3, 0, 0, 1, 0])]),
    b.op1('DepthToSpace', [b.op1('Tile', ['x', b.int64s('rep', [1, 4, 1, 1])])], { blocksize: 2 }),
    b.op1('Expand', [b.op1('ReduceMax', ['x'], { keepdims: 1 }), b.int64s('ex', [3, 1, 1, 1, 1])]),
    buildTorchFlatten(g, b, 'x'),
    ...b.op('TopK', ['tok', b.int64s('k', [4])], { axis: 1 }, { outputs: 2 }),
  ];
  const types = inferShapes(g);
  g.outputs = outs.map((name) => ({ name, type: makeTensorTypeProto({ dtype: types.get(name)!.dtype, shape: null }) }));
  g.valueInfo.clear(); // let onnxruntime work out every shape itself
  const session = await ort.InferenceSession.create(encodeModel(modelOf(g, 17).toProto()));
  const feeds = {
    x: new ort.Tensor('float32', Float32Array.from({ length: 2 * 3 * 17 * 14 }, () => rng.normal()), [2, 3, 17, 14]),
    tok: new ort.Tensor('float32', Float32Array.from({ length: 2 * 5 * 12 }, () => rng.normal()), [2, 5, 12]),
  };
  const results = await session.run(feeds);
  for (const name of outs) {
    const node = g.producer(name)!;
    assert.deepEqual(types.get(name)?.shape, [...results[name]!.dims], `${node.opType} ${node.name}`);
  }
});

const NODE_TESTS = join(TESTDATA, 'node');


test('every ONNX node test model: inference never throws and fully known output shapes equal the declared ones', (t) => {
  assert.ok(existsSync(NODE_TESTS), `${NODE_TESTS} is missing: apt-get install libonnx-testdata`);
  let models = 0;
  let declaredStatic = 0;
  let inferredStatic = 0;
  const mismatches: string[] = [];
  for (const dir of readdirSync(NODE_TESTS).sort()) {
    const path = join(NODE_TESTS, dir, 'model.onnx');
    if (!existsSync(path)) continue;
    models++;
    const model = Model.fromProto(readModelProto(path));
    const declared = model.graph.outputs.map((o) => {
      try {
        return tensorTypeOf(o.type);
      } catch {
        return null;
      }
    });
    // Forget what the file says about every non-input value, then infer it back.
    for (const o of model.graph.outputs) o.type = null;
    model.graph.valueInfo.clear();
    const types = inferModelShapes(model);
    model.graph.outputs.forEach((o, i) => {
      const d = declared[i];
      if (!d?.shape || !d.shape.every((x) => typeof x === 'number')) return;
      declaredStatic++;
      const got = types.get(o.name);
      if (!got?.shape || !got.shape.every((x) => typeof x === 'number')) return;
      inferredStatic++;
      if (JSON.stringify(got.shape) !== JSON.stringify(d.shape) || got.dtype !== d.dtype) {
        mismatches.push(`${dir}/${o.name}: inferred ${got.dtype}${JSON.stringify(got.shape)}, declared ${d.dtype}${JSON.stringify(d.shape)}`);
      }
    });
  }
  t.diagnostic(`${models} models, ${declaredStatic} outputs with a static declared shape, ${inferredStatic} inferred fully (${((100 * inferredStatic) / declaredStatic).toFixed(1)}%)`);
  assert.deepEqual(mismatches, []);
  assert.ok(models > 900);
  // Most node tests pass shapes/axes as run-time inputs, which no static inference can know.
  assert.ok(inferredStatic / declaredStatic > 0.8, `coverage ${inferredStatic}/${declaredStatic}`);
});

const ORT_DTYPES: Partial<Record<DType, ort.Tensor.Type>> = {
  float32: 'float32', float64: 'float64', int64: 'int64', int32: 'int32', bool: 'bool', uint8: 'uint8',
  int8: 'int8', int16: 'int16', uint16: 'uint16', uint32: 'uint32', uint64: 'uint64',
};

/** The test's recorded inputs as onnxruntime tensors, or null when one is not numeric. */
function recordedInputs(model: Model, dataset: string): Record<string, ort.Tensor> | null {
  const feeds: Record<string, ort.Tensor> = {};
  const inputs = model.graph.realInputs();
  for (let i = 0; i < inputs.length; i++) {
    const file = join(dataset, `input_${i}.pb`);
    if (!existsSync(file)) return null;
    const t = onnx.TensorProto.decode(readFileSync(file));
    const type = ORT_DTYPES[dtypeName(t.dataType)];
    if (!type) return null;
    try {
      feeds[inputs[i]!.name] = new ort.Tensor(type, tensorToArray(t) as Float32Array, tensorDims(t));
    } catch {
      return null; // a recorded tensor this harness cannot decode
    }
  }
  return feeds;
}

test('on every ONNX test model onnxruntime can run, each fully inferred intermediate shape equals the actual one', async (t) => {
  assert.ok(existsSync(TESTDATA), `${TESTDATA} is missing: apt-get install libonnx-testdata`);
  let ran = 0;
  let produced = 0;
  let compared = 0;
  const mismatches: string[] = [];
  for (const path of findModels(TESTDATA)) {
    const model = Model.fromProto(readModelProto(path));
    const feeds = recordedInputs(model, join(dirname(path), 'test_data_set_0'));
    if (!feeds) continue;
    // Infer from the inputs alone, then make every typed value a graph output so the runtime reports it.
    model.graph.valueInfo.clear();
    for (const o of model.graph.outputs) o.type = makeTensorTypeProto({ dtype: tensorTypeOf(o.type)?.dtype ?? 'float32', shape: null });
    const types = inferModelShapes(model);
    const exposed = new Set(model.graph.outputs.map((o) => o.name));
    for (const n of model.graph.nodes) {
      for (const v of n.outputs) {
        const type = types.get(v);
        if (!v || exposed.has(v) || !type || type.dtype === 'undefined') continue;
        model.graph.outputs.push({ name: v, type: makeTensorTypeProto({ dtype: type.dtype, shape: null }) });
        exposed.add(v);
      }
    }
    model.graph.valueInfo.clear();
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      const session = await ort.InferenceSession.create(encodeModel(model.toProto()), { logSeverityLevel: 4 });
      results = await session.run(feeds);
    } catch {
      continue; // ops or attributes this onnxruntime build does not run
    }
    ran++;
    for (const [name, value] of Object.entries(results)) {
      produced++;
      const shape = types.get(name)?.shape;
      if (!shape || !shape.every((d) => typeof d === 'number')) continue;
      compared++;
      const actual = [...(value as ort.Tensor).dims];
      if (JSON.stringify(actual) !== JSON.stringify(shape)) {
        mismatches.push(`${path} ${model.graph.producer(name)?.opType} ${name}: inferred ${JSON.stringify(shape)}, onnxruntime ${JSON.stringify(actual)}`);
      }
    }
  }
  t.diagnostic(`${ran} models run by onnxruntime; ${compared} of ${produced} values inferred fully and compared`);
  assert.deepEqual(mismatches, []);
  assert.ok(ran > 900 && compared > 2000);
});

/** Every dim a well-formed shape can hold: a non-negative integer, a name or null; no holes. */
function assertWellFormed(types: Map<string, TensorType>, g: Graph): void {
  for (const [name, t] of types) {
    if (t.shape === null) continue;
    assert.equal(Object.keys(t.shape).length, t.shape.length, `${name}: no empty slots in [${t.shape.join(', ')}]`);
    for (const d of t.shape) assert.ok(d === null || typeof d === 'string' || (Number.isSafeInteger(d) && d >= 0), `${name}: dim ${d}`);
  }
  // What `inspect` does next: the recorded types must encode.
  encodeModel(new Model(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 18 }] }), g).toProto());
}

test('axes outside the rank, or axes/starts/pads of different lengths, leave the output unknown instead of a shape with empty slots', () => {
  const { g, b } = graphWith({ x: ['float32', [1, 3, 8, 8]] });
  // Found by mutating the CIFAR ResNet fixtures: Slice over axis 5 of a rank-4 tensor set out[5]
  // and left out[4] empty, which protobuf refused as ".onnx.TensorShapeProto.dim: object expected".
  const slice5 = b.op1('Slice', ['x', b.int64s('st', [0]), b.int64s('en', [2]), b.int64s('ax', [5])]);
  const sliceNeg = b.op1('Slice', ['x', b.int64s('st1', [0]), b.int64s('en1', [2]), b.int64s('ax1', [-7])]);
  const sliceShort = b.op1('Slice', ['x', b.int64s('st2', [0]), b.int64s('en2', [2]), b.int64s('ax2', [1, 2])]);
  const sliceAttr = b.op1('Slice', ['x'], { starts: [0, 0], ends: [1, 1], axes: [0, 9] });
  const pad6 = b.op1('Pad', ['x', b.int64s('pads', [1, 1]), '', b.int64s('pax', [6])]);
  const padShort = b.op1('Pad', ['x', b.int64s('pads1', [1, 1, 1])]);
  const crop = b.op1('CenterCropPad', ['x', b.int64s('crop', [4, 4])], { axes: [2, 8] });
  const fine = b.op1('Slice', ['x', b.int64s('st3', [0]), b.int64s('en3', [2]), b.int64s('ax3', [-1])]);
  const t = inferShapes(g);
  assertWellFormed(t, g);
  for (const v of [slice5, sliceNeg, sliceShort, sliceAttr, pad6, padShort, crop]) {
    const s = shapeOf(t, v);
    assert.ok(s === undefined || s === null || s.every((d) => d === null), `${v}: unknown, got ${JSON.stringify(s)}`);
  }
  assert.deepEqual(shapeOf(t, fine), [1, 3, 8, 2]);
});

test('a rule that returns a malformed shape (hole, NaN, negative) is treated as not knowing it', () => {
  registerShapeRule('RpTestMalformedShape', (ctx) => {
    const holey: Dim[] = [1];
    holey[2] = 3;
    const k = ctx.node.getInt('kind', 0);
    return [{ dtype: 'float32', shape: k === 0 ? holey : k === 1 ? [Number.NaN, 2] : [-1, 2] }];
  });
  const { g, b } = graphWith({ x: ['float32', [2]] });
  const outs = [0, 1, 2].map((kind) => b.op1('RpTestMalformedShape', ['x'], { kind }));
  const t = inferShapes(g);
  assertWellFormed(t, g);
  for (const o of outs) assert.deepEqual(shapeOf(t, o), undefined, o);
});
