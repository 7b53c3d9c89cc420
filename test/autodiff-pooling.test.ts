/**
 * Gradient rules of MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool against central
 * finite differences (float64, reference interpreter).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../src/random.js';
import { buildModel, gradcheck, randn, type Feed } from './helpers/gradcheck.js';

const rng = new Random(11);
const feed = (dims: number[]): Feed => ({ dims, data: randn(rng, dims) });

interface PoolCase {
  name: string;
  op: string;
  x: number[];
  attrs: Record<string, number | number[] | string>;
  opset?: number;
}

const cases: PoolCase[] = [
  { name: '2x2/2', op: 'MaxPool', x: [2, 3, 6, 6], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
  { name: 'overlapping 3x3/2 pads 1', op: 'MaxPool', x: [2, 2, 7, 7], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } },
  { name: 'overlapping 3x3/1', op: 'MaxPool', x: [1, 2, 5, 6], attrs: { kernel_shape: [3, 3] } },
  { name: 'ceil_mode 3x3/2', op: 'MaxPool', x: [2, 2, 6, 6], attrs: { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 } },
  { name: 'dilation 2', op: 'MaxPool', x: [1, 2, 7, 7], attrs: { kernel_shape: [2, 2], dilations: [2, 2] } },
  { name: 'non-overlapping at opset 13', op: 'MaxPool', x: [2, 2, 4, 6], attrs: { kernel_shape: [2, 3], strides: [2, 3] }, opset: 13 },
  { name: '1-D', op: 'MaxPool', x: [2, 3, 9], attrs: { kernel_shape: [3], strides: [2] } },
  { name: '2x2/2', op: 'AveragePool', x: [2, 3, 6, 6], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
  { name: '3x3/2 pads, exclude pad', op: 'AveragePool', x: [2, 2, 7, 7], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } },
  { name: '3x3/2 pads, include pad', op: 'AveragePool', x: [2, 2, 7, 7], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 } },
  { name: 'ceil_mode, include pad', op: 'AveragePool', x: [1, 2, 6, 6], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 0, 0], ceil_mode: 1, count_include_pad: 1 } },
  { name: 'ceil_mode, exclude pad', op: 'AveragePool', x: [1, 2, 6, 7], attrs: { kernel_shape: [3, 2], strides: [2, 2], ceil_mode: 1 } },
  { name: 'SAME_UPPER', op: 'AveragePool', x: [1, 2, 5, 5], attrs: { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' } },
  { name: '', op: 'GlobalAveragePool', x: [2, 3, 4, 5], attrs: {} },
  { name: '', op: 'GlobalMaxPool', x: [2, 3, 4, 5], attrs: {} },
];

for (const c of cases) {
  test(`${c.op} ${c.name}`.trim(), async () => {
    const model = buildModel({
      opset: c.opset,
      inputs: [{ name: 'X', dims: c.x }],
      outputs: ['Y'],
      build: (b) => {
        b.op(c.op, ['X'], c.attrs, { outputs: ['Y'] });
      },
    });
    const r = await gradcheck({ model, wrt: ['X'], inputs: { X: feed(c.x) }, probes: 30 });
    assert.equal(r.mode, 'float64');
    assert.ok(r.ok, r.report);
  });
}

for (const [opset, attrs, dims] of [
  [11, { kernel_shape: [3, 3], strides: [1, 1] }, [1, 2, 5, 5]],
  [13, { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, [2, 2, 7, 7]],
  [13, { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }, [1, 1, 8, 8]],
  [15, { kernel_shape: [2, 3], strides: [1, 2], pads: [0, 1, 1, 1] }, [1, 2, 6, 7]],
] as const) {
  test(`MaxPool with overlapping windows before opset 16 (one-hot offsets + ConvTranspose), opset ${opset} ${JSON.stringify(attrs)}`, async () => {
    const model = buildModel({
      opset,
      inputs: [{ name: 'X', dims: [...dims] }],
      outputs: ['Y'],
      build: (b) => {
        b.op('MaxPool', ['X'], JSON.parse(JSON.stringify(attrs)) as Record<string, number[] | number>, { outputs: ['Y'] });
      },
    });
    const r = await gradcheck({ model, wrt: ['X'], inputs: { X: feed([...dims]) } });
    assert.ok(r.ok, r.report);
  });
}
