/**
 * Gradient rules of Gemm, MatMul and Conv against central finite differences, and Conv's
 * per-example weight gradients against a direct loop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeTensor } from '../src/graph/tensor.js';
import { Random } from '../src/random.js';
import { buildModel, gradcheck, randn, runOrt, type Feed } from './helpers/gradcheck.js';
import { GraphBuilder, float } from '../src/graph/builder.js';
import { Node } from '../src/graph/ir.js';
import { inferShapes } from '../src/graph/shape-inference.js';
import type { GradContext } from '../src/passes/autodiff/rule.js';
import { convGeometry, convWeightGrad, foldsBatch } from '../src/passes/autodiff/rules/conv.js';

const rng = new Random(7);
const feed = (dims: number[]): Feed => ({ dims, data: randn(rng, dims) });

test('Gemm: every transA/transB combination, alpha, beta, broadcast C', async () => {
  for (const [tA, tB] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) {
    const aDims = tA ? [4, 3] : [3, 4];
    const bDims = tB ? [5, 4] : [4, 5];
    const model = buildModel({
      inputs: [{ name: 'A', dims: aDims }],
      outputs: ['Y'],
      build: (b) => {
        b.graph.addInitializer(makeTensor('B', bDims, randn(rng, bDims)));
        b.graph.addInitializer(makeTensor('C', [5], randn(rng, [5])));
        b.op('Gemm', ['A', 'B', 'C'], { transA: tA, transB: tB, alpha: float(0.7), beta: float(1.3) }, { outputs: ['Y'] });
      },
    });
    const r = await gradcheck({ model, wrt: ['A', 'B', 'C'], inputs: { A: feed(aDims) } });
    assert.ok(r.ok, `transA=${tA} transB=${tB}: ${r.report}`);
  }
});

test('MatMul: 2-D, batched with broadcasting, and 1-D operands', async () => {
  const cases: [number[], number[]][] = [
    [[3, 4], [4, 5]],
    [[2, 3, 4], [4, 5]],
    [[2, 1, 3, 4], [3, 4, 2]],
    [[4], [2, 4, 3]],
    [[2, 3, 4], [4]],
    [[4], [4]],
  ];
  for (const [aDims, bDims] of cases) {
    const model = buildModel({
      inputs: [{ name: 'A', dims: aDims }],
      outputs: ['Y'],
      build: (b) => {
        b.graph.addInitializer(makeTensor('B', bDims, randn(rng, bDims)));
        b.op('MatMul', ['A', 'B'], {}, { outputs: ['Y'] });
      },
    });
    const r = await gradcheck({ model, wrt: ['A', 'B'], inputs: { A: feed(aDims) } });
    assert.ok(r.ok, `[${aDims}] x [${bDims}]: ${r.report}`);
    assert.equal(r.mode, "float64");
  }
});

interface ConvCase {
  name: string;
  x: number[];
  w: number[];
  attrs: Record<string, number | number[] | string>;
}

/** Y = Conv(X, W[, Bias]) with random W (and Bias) initializers. */
function convModel(c: ConvCase, bias: boolean) {
  return buildModel({
    inputs: [{ name: 'X', dims: c.x }],
    outputs: ['Y'],
    build: (b) => {
      b.graph.addInitializer(makeTensor('W', c.w, randn(rng, c.w)));
      if (bias) b.graph.addInitializer(makeTensor('Bias', [c.w[0]!], randn(rng, [c.w[0]!])));
      b.op('Conv', ['X', 'W', ...(bias ? ['Bias'] : [])], c.attrs, { outputs: ['Y'] });
    },
  });
}

test('Conv: pads, stride 2, dilation, groups, depthwise, auto_pad, 1-D', async () => {
  const cases: ConvCase[] = [
    { name: '3x3 pad 1', x: [2, 3, 6, 6], w: [4, 3, 3, 3], attrs: { pads: [1, 1, 1, 1] } },
    { name: 'stride 2 pads', x: [2, 3, 7, 6], w: [4, 3, 3, 3], attrs: { strides: [2, 2], pads: [1, 0, 1, 1] } },
    { name: 'dilation 2', x: [1, 2, 7, 7], w: [3, 2, 3, 3], attrs: { dilations: [2, 2], pads: [2, 1, 2, 1] } },
    { name: 'group 2 stride 2', x: [2, 4, 6, 6], w: [6, 2, 3, 3], attrs: { group: 2, strides: [2, 2], pads: [1, 1, 1, 1] } },
    { name: 'depthwise', x: [2, 3, 5, 5], w: [3, 1, 3, 3], attrs: { group: 3, pads: [1, 1, 1, 1] } },
    { name: 'depthwise stride 2', x: [2, 3, 6, 6], w: [3, 1, 3, 3], attrs: { group: 3, strides: [2, 2], pads: [1, 1, 1, 1] } },
    { name: 'SAME_UPPER stride 2', x: [1, 2, 6, 5], w: [2, 2, 3, 2], attrs: { auto_pad: 'SAME_UPPER', strides: [2, 2] } },
    { name: '1x1 stride 2', x: [2, 3, 5, 5], w: [4, 3, 1, 1], attrs: { strides: [2, 2] } },
    { name: 'big pad (ConvTranspose path)', x: [1, 2, 4, 4], w: [2, 2, 2, 2], attrs: { pads: [2, 2, 2, 2] } },
    { name: '1-D stride 2', x: [2, 2, 9], w: [3, 2, 3], attrs: { strides: [2], pads: [1, 1] } },
    { name: '16 input channels (one MatMul per offset)', x: [2, 16, 5, 5], w: [3, 16, 3, 3], attrs: { strides: [2, 2], pads: [1, 1, 1, 1] } },
  ];
  for (const c of cases) {
    const model = convModel(c, true);
    const r = await gradcheck({ model, wrt: ['X', 'W', 'Bias'], inputs: { X: feed(c.x) }, probes: 8 });
    assert.ok(r.ok, `${c.name}: ${r.report}`);
    assert.equal(r.mode, "float64");
  }
});

test('Conv weight gradient with the batch folded into its contraction (many channels, few positions) against finite differences', async () => {
  const cases: ConvCase[] = [
    { name: '128 -> 128 3x3 pad 1 at 3x3', x: [2, 128, 3, 3], w: [128, 128, 3, 3], attrs: { pads: [1, 1, 1, 1] } },
    { name: 'stride 2, uneven pads', x: [2, 128, 5, 6], w: [160, 128, 3, 3], attrs: { strides: [2, 2], pads: [1, 0, 1, 1] } },
    { name: 'dilation 2', x: [2, 128, 5, 5], w: [128, 128, 3, 3], attrs: { dilations: [2, 2], pads: [2, 2, 2, 2] } },
    { name: '1-D', x: [3, 128, 4], w: [144, 128, 3], attrs: { pads: [1, 1] } },
    { name: '1x1 (no window to slice)', x: [2, 256, 2, 2], w: [256, 256, 1, 1], attrs: {} },
  ];
  for (const c of cases) {
    const model = convModel(c, false);
    // The case must take the folded path.
    const types = inferShapes(model.graph, { opset: 17 });
    const ctx = { b: new GraphBuilder(model.graph), node: model.graph.nodes[0]!, gradOutputs: ['dY'], needsGrad: [false, true], perExample: [false, false], shapeOf: (v: string) => types.get(v)?.shape ?? null, opset: 17 } as GradContext;
    assert.ok(foldsBatch(convGeometry(ctx)), `${c.name}: not folded`);
    const r = await gradcheck({ model, wrt: ['X', 'W'], inputs: { X: feed(c.x) }, probes: 8 });
    assert.ok(r.ok, `${c.name}: ${r.report}`);
    assert.equal(r.mode, 'float64');
  }
});

test('Conv per-example weight gradients (for DP-SGD) match a direct loop', async () => {
  for (const c of [
    { x: [3, 4, 6, 5], w: [6, 2, 3, 3], attrs: { group: 2, strides: [2, 1], pads: [1, 0, 1, 1] } },
    { x: [2, 3, 5, 5], w: [3, 1, 3, 3], attrs: { group: 3, pads: [1, 1, 1, 1], dilations: [2, 1] } },
    { x: [2, 3, 5, 5], w: [4, 3, 2, 2], attrs: { strides: [2, 2] } },
    { x: [2, 32, 4, 4], w: [4, 16, 3, 3], attrs: { group: 2, pads: [1, 1, 1, 1] } },
  ]) {
    const [N, C, H, W] = c.x as [number, number, number, number];
    const [O, Cg, KH, KW] = c.w as [number, number, number, number];
    const group = (c.attrs as { group?: number }).group ?? 1;
    const [sh, sw] = (c.attrs as { strides?: number[] }).strides ?? [1, 1];
    const [dh, dw] = (c.attrs as { dilations?: number[] }).dilations ?? [1, 1];
    const [pt, pl] = (c.attrs as { pads?: number[] }).pads ?? [0, 0, 0, 0];
    const pads = (c.attrs as { pads?: number[] }).pads ?? [0, 0, 0, 0];
    const Ho = Math.floor((H + pads[0]! + pads[2]! - (KH - 1) * dh - 1) / sh) + 1;
    const Wo = Math.floor((W + pads[1]! + pads[3]! - (KW - 1) * dw - 1) / sw) + 1;
    const x = randn(rng, c.x);
    const dy = randn(rng, [N, O, Ho, Wo]);
    const model = buildModel({
      inputs: [{ name: 'X', dims: c.x }, { name: 'dY', dims: [N, O, Ho, Wo] }],
      outputs: ['G'],
      build: (b) => {
        b.graph.addInitializer(makeTensor('W', c.w, randn(rng, c.w)));
        b.op('Conv', ['X', 'W'], c.attrs, { outputs: ['Y'] });
      },
    });
    const g = model.graph;
    const types = inferShapes(g, { opset: 17 });
    const node = g.nodes[0]!;
    const ctx: GradContext = { b: new GraphBuilder(g), node, gradOutputs: ['dY'], needsGrad: [false, true], perExample: [false, false], shapeOf: (v) => types.get(v)?.shape ?? null, opset: 17 };
    const out = convWeightGrad(ctx, 'X', 'dY', convGeometry(ctx), true);
    g.addNode(new Node({ opType: 'Identity', inputs: [out], outputs: ['G'] }));
    const r = await runOrt(model, { X: { dims: c.x, data: x }, dY: { dims: [N, O, Ho, Wo], data: dy } });
    const got = r.G!.data as Float32Array;
    assert.deepEqual([...r.G!.dims], [N, O, Cg, KH, KW]);
    const og = O / group;
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let ci = 0; ci < Cg; ci++) for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) {
      const ch = Math.floor(o / og) * Cg + ci;
      let s = 0;
      for (let p = 0; p < Ho; p++) for (let q = 0; q < Wo; q++) {
        const h = p * sh - pt + i * dh;
        const w = q * sw - pl + j * dw;
        if (h < 0 || h >= H || w < 0 || w >= W) continue;
        s += dy[((n * O + o) * Ho + p) * Wo + q]! * x[((n * C + ch) * H + h) * W + w]!;
      }
      const v = got[((((n * O + o) * Cg + ci) * KH + i) * KW) + j]!;
      assert.ok(Math.abs(v - s) < 1e-4 * (1 + Math.abs(s)), `n${n} o${o} c${ci} k${i},${j}: ${v} vs ${s}`);
    }
  }
});
