/**
 * Fed-weight convolutions on onnxruntime's NCHWc kernel (src/passes/nchwc-conv.ts): the rewritten
 * graph, run by onnxruntime, against the reference interpreter's float64 convolution of the
 * original graph, for the layouts the pass emits (blocked input and OIHWBiBo filter; NCHW input and
 * OIHWBo filter below one block of input channels), strides, 1x1 kernels, dilations and a bias;
 * what it leaves alone, with the reason; and createSession using it (RP_ONNX_NCHWC=0 turns it off).
 * The block size is the machine's (8 with AVX2, 16 with AVX-512); without NCHWc kernels the
 * onnxruntime checks skip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { Graph, Model, makeTensorTypeProto } from '../src/graph/ir.js';
import { GraphBuilder } from '../src/graph/builder.js';
import { encodeModel } from '../src/graph/io.js';
import { onnx } from '../src/graph/onnx.js';
import { makeTensor } from '../src/graph/tensor.js';
import { evaluate, f64 } from '../src/reference/interpreter.js';
import { nchwcConvolutions, NCHWC_DOMAIN } from '../src/passes/nchwc-conv.js';
import { nchwcBlockSize } from '../src/runtime/nchwc.js';
import { createSession } from '../src/runtime/session.js';
import { Random } from '../src/random.js';

interface ConvCase { c: number; o: number; h: number; k: number; stride?: number; dilation?: number; bias?: boolean; group?: number; weightInitializer?: boolean }

/** A one-Conv model; the weight (and bias) are graph inputs unless weightInitializer. */
function convModel(cc: ConvCase, n: number, w: Float32Array): Model {
  const g = new Graph({ name: 'conv' });
  const group = cc.group ?? 1;
  const wShape = [cc.o, cc.c / group, cc.k, cc.k];
  g.inputs = [{ name: 'x', type: makeTensorTypeProto({ dtype: 'float32', shape: [n, cc.c, cc.h, cc.h] }) }];
  if (cc.weightInitializer) g.addInitializer(makeTensor('w', wShape, w));
  else g.inputs.push({ name: 'w', type: makeTensorTypeProto({ dtype: 'float32', shape: wShape }) });
  if (cc.bias) g.inputs.push({ name: 'b', type: makeTensorTypeProto({ dtype: 'float32', shape: [cc.o] }) });
  const p = Math.floor(((cc.k - 1) * (cc.dilation ?? 1)) / 2);
  const y = new GraphBuilder(g).op1('Conv', ['x', 'w', ...(cc.bias ? ['b'] : [])], {
    pads: [p, p, p, p], strides: [cc.stride ?? 1, cc.stride ?? 1], dilations: [cc.dilation ?? 1, cc.dilation ?? 1], group, kernel_shape: [cc.k, cc.k],
  });
  g.outputs = [{ name: y, type: null }];
  return new Model(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }] }), g);
}

test('the fed-weight NCHWc convolution equals the float64 reference convolution in every layout the pass emits', async (t) => {
  const block = await nchwcBlockSize();
  if (block === null) return t.skip('this onnxruntime build has no NCHWc kernels');
  const cases: ConvCase[] = [
    { c: 1, o: block, h: 28, k: 3 }, // NCHW input, OIHWBo filter (a stem)
    { c: 3, o: 2 * block, h: 17, k: 3, stride: 2, bias: true },
    { c: 4, o: block, h: 10, k: 3 }, // NCHW input below one block (AVX2's 8; AVX-512's 16)
    { c: block, o: block, h: 14, k: 3 }, // blocked input, OIHWBiBo filter
    { c: 2 * block, o: 4 * block, h: 9, k: 3, stride: 2 },
    { c: 4 * block, o: 2 * block, h: 7, k: 1, stride: 2, bias: true }, // 1x1 projection
    { c: 2 * block, o: 2 * block, h: 11, k: 3, dilation: 2 },
  ];
  const rng = new Random(5);
  const n = 3;
  for (const cc of cases) {
    const x = new Float32Array(n * cc.c * cc.h * cc.h); rng.fillNormal(x);
    const w = new Float32Array(cc.o * cc.c * cc.k * cc.k); rng.fillNormal(w);
    const bias = Float32Array.from({ length: cc.o }, () => rng.normal());
    const model = convModel(cc, n, w);
    const r = nchwcConvolutions(model, block);
    assert.equal(r.rewritten, 1, JSON.stringify(r.skipped));
    assert.ok(r.model.graph.nodes.some((nd) => nd.domain === NCHWC_DOMAIN && nd.opType === 'Conv'));
    assert.equal(model.graph.nodes.length, 1, 'the input model is left as it was');
    const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', x, [n, cc.c, cc.h, cc.h]), w: new ort.Tensor('float32', w, [cc.o, cc.c, cc.k, cc.k]) };
    if (cc.bias) feeds.b = new ort.Tensor('float32', bias, [cc.o]);
    const s = await ort.InferenceSession.create(encodeModel(r.model.toProto()), { intraOpNumThreads: 1, logSeverityLevel: 3 });
    const got = (await s.run(feeds))[model.graph.outputs[0]!.name]!;
    await s.release();
    const refFeeds = { x: f64([n, cc.c, cc.h, cc.h], x), w: f64([cc.o, cc.c, cc.k, cc.k], w), ...(cc.bias ? { b: f64([cc.o], bias) } : {}) };
    const want = evaluate(model.graph, refFeeds, { opset: 17 })[model.graph.outputs[0]!.name]!;
    assert.deepEqual(got.dims.map(Number), want.dims, JSON.stringify(cc));
    let err = 0, size = 0;
    const g32 = got.data as Float32Array;
    for (let i = 0; i < want.data.length; i++) { err += (g32[i]! - Number(want.data[i])) ** 2; size += Number(want.data[i]) ** 2; }
    assert.ok(Math.sqrt(err / size) < 1e-6, `${JSON.stringify(cc)}: relative L2 error ${Math.sqrt(err / size)}`);
  }
});

test('convolutions the NCHWc kernel cannot take are left alone, each with its reason', () => {
  const block = 8;
  const w = new Float32Array(16 * 16 * 9);
  const cases: [ConvCase, RegExp][] = [
    [{ c: 16, o: 16, h: 8, k: 3, weightInitializer: true }, /initializer/],
    [{ c: 16, o: 16, h: 8, k: 3, group: 2 }, /grouped/],
    [{ c: 16, o: 12, h: 8, k: 3 }, /12 output channels/],
    [{ c: 12, o: 16, h: 8, k: 3 }, /12 input channels/],
    [{ c: 5, o: 16, h: 8, k: 3 }, /input channel count/],
  ];
  for (const [cc, why] of cases) {
    const r = nchwcConvolutions(convModel(cc, 2, w.subarray(0, cc.o * (cc.c / (cc.group ?? 1)) * 9)), block);
    assert.equal(r.rewritten, 0, JSON.stringify(cc));
    assert.match(r.skipped[0]!.reason, why);
    assert.ok(!r.model.graph.nodes.some((nd) => nd.domain === NCHWC_DOMAIN));
  }
});

test('createSession runs fed-weight convolutions on the NCHWc kernel unless RP_ONNX_NCHWC=0, with the same results', async (t) => {
  const block = await nchwcBlockSize();
  if (block === null) return t.skip('this onnxruntime build has no NCHWc kernels');
  const cc: ConvCase = { c: block, o: 2 * block, h: 12, k: 3 };
  const rng = new Random(9);
  const x = new Float32Array(2 * cc.c * cc.h * cc.h); rng.fillNormal(x);
  const w = new Float32Array(cc.o * cc.c * 9); rng.fillNormal(w);
  const model = convModel(cc, 2, w);
  const feeds = { x: new ort.Tensor('float32', x, [2, cc.c, cc.h, cc.h]), w: new ort.Tensor('float32', w, [cc.o, cc.c, 3, 3]) };
  const run = async (nchwc: boolean) => {
    const s = await createSession(model, { threads: 1, nchwc });
    assert.equal(s.nchwcConvolutions, nchwc ? 1 : 0);
    try {
      return (await s.run(feeds))[model.graph.outputs[0]!.name]!.data as Float32Array;
    } finally {
      await s.release();
    }
  };
  const [on, off] = [await run(true), await run(false)];
  let worst = 0;
  for (let i = 0; i < on.length; i++) worst = Math.max(worst, Math.abs(on[i]! - off[i]!));
  assert.ok(worst < 1e-4, `max |difference| ${worst}`);
  // The environment switch (the option's default).
  const saved = process.env.RP_ONNX_NCHWC;
  process.env.RP_ONNX_NCHWC = '0';
  try {
    const s = await createSession(model, { threads: 1 });
    assert.equal(s.nchwcConvolutions, 0);
    const y = (await s.run(feeds))[model.graph.outputs[0]!.name]!.data as Float32Array;
    await s.release();
    assert.deepEqual(Array.from(y), Array.from(off), 'RP_ONNX_NCHWC=0 gives the generic kernel, bit for bit');
  } finally {
    if (saved === undefined) delete process.env.RP_ONNX_NCHWC;
    else process.env.RP_ONNX_NCHWC = saved;
  }
});
