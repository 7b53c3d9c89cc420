/**
 * Second-order gradients: the autodiff pass applied to its own output. Each case builds the
 * training gradient of a small network (softmax cross-entropy, our rules), then gradchecks that
 * gradient graph itself: the analytic side is the autodiff of the gradient graph (the
 * Hessian-vector product d/dz sum_i <dL/dtheta_i, R_i>), the numeric side float64 central finite
 * differences of the gradient graph through the reference interpreter. Also first-order checks
 * of the rules that exist for closure (ConvTranspose, ScatterElements, ScatterND, GatherND,
 * CastLike).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Node, type Model } from '../src/graph/ir.js';
import { GraphBuilder } from '../src/graph/builder.js';
import { makeTensor } from '../src/graph/tensor.js';
import { inferShapes } from '../src/graph/shape-inference.js';
import { differentiate } from '../src/passes/autodiff/engine.js';
import { crossEntropyLoss } from '../src/passes/autodiff/loss.js';
import { Random } from '../src/random.js';
import { buildModel, gradcheck, randn, type Feed } from './helpers/gradcheck.js';

const rng = new Random(7);
const feed = (dims: number[], std = 1): Feed => ({ dims, data: randn(rng, dims, std) });

/**
 * The model's training gradient as a model: outputs d(mean cross-entropy)/d(param) for every
 * listed initializer (labels fixed, baked in), input X.
 */
function gradientModel(forward: Model, params: string[], labels: number[]): Model {
  const m = forward.clone();
  const g = m.graph;
  const opset = m.opset('');
  const b = new GraphBuilder(g, 'ce/');
  const logits = g.outputs[0]!.name;
  const y = b.initializer('labels', [labels.length], BigInt64Array.from(labels.map(BigInt)), 'int64');
  const { dLogits } = crossEntropyLoss(b, logits, y, opset);
  const types = inferShapes(g, { opset });
  const grads = differentiate(g, { wrt: params, seeds: new Map([[logits, dLogits]]), opset, shapeOf: (v) => types.get(v)?.shape ?? null });
  g.outputs = params.map((p) => {
    const name = `d_${p}`;
    g.addNode(new Node({ opType: 'Identity', inputs: [grads.get(p)!], outputs: [name] }));
    return { name, type: null };
  });
  g.valueInfo.clear();
  g.removeDeadCode();
  return m;
}

interface Net {
  name: string;
  opset?: number;
  x: number[];
  params: Record<string, number[]>;
  build: (b: GraphBuilder) => void;
  /** Ops the gradient graph must contain (so the case exercises their second-order rules). */
  emits: string[];
}

const init = (b: GraphBuilder, name: string, dims: number[], std = 0.5) => b.graph.addInitializer(makeTensor(name, dims, randn(rng, dims, std)));

const nets: Net[] = [
  {
    // DLG's LeNet in miniature: 5x5 stride-2 convs with sigmoids, then a linear head.
    name: 'sigmoid LeNet (strided convs: ConvTranspose input gradients, strided-slice weight gradients)',
    x: [1, 1, 8, 8],
    params: { W1: [3, 1, 5, 5], B1: [3], W2: [4, 3, 3, 3], B2: [4], W3: [5, 16], B3: [5] },
    build: (b) => {
      const h1 = b.op1('Sigmoid', [b.op1('Conv', ['X', 'W1', 'B1'], { pads: [2, 2, 2, 2], strides: [2, 2] })]);
      const h2 = b.op1('Sigmoid', [b.op1('Conv', [h1, 'W2', 'B2'], { pads: [1, 1, 1, 1], strides: [2, 2] })]);
      b.op('Gemm', [b.op1('Flatten', [h2], { axis: 1 }), 'W3', 'B3'], { transB: 1 }, { outputs: ['logits'] });
    },
    emits: ['ConvTranspose', 'Slice', 'MatMul', 'Concat', 'Sub'],
  },
  {
    name: 'tanh conv, stride 1, pads 1 (flipped-kernel Conv input gradient, padded weight gradient)',
    x: [2, 2, 6, 6],
    params: { W1: [3, 2, 3, 3], W2: [108, 4] },
    build: (b) => {
      const h = b.op1('Tanh', [b.op1('Conv', ['X', 'W1'], { pads: [1, 1, 1, 1] })]);
      b.op('MatMul', [b.op1('Reshape', [h, b.int64s('shape', [2, -1])]), 'W2'], {}, { outputs: ['logits'] });
    },
    emits: ['Conv', 'Transpose', 'Pad'],
  },
  {
    name: 'relu + overlapping MaxPool (ScatterElements add) + AveragePool + residual Add + GlobalAveragePool',
    x: [2, 2, 7, 7],
    params: { W1: [3, 2, 3, 3], B1: [3], W2: [3, 3, 3, 3], W3: [4, 3], B3: [4] },
    build: (b) => {
      const c1 = b.op1('Relu', [b.op1('Conv', ['X', 'W1', 'B1'], { pads: [1, 1, 1, 1] })]);
      const p = b.op1('MaxPool', [c1], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
      const r = b.op1('Relu', [b.op1('Add', [p, b.op1('Conv', [p, 'W2'], { pads: [1, 1, 1, 1] })])]);
      const a = b.op1('AveragePool', [r], { kernel_shape: [2, 2], strides: [1, 1] });
      const gap = b.op1('Flatten', [b.op1('GlobalAveragePool', [a])], { axis: 1 });
      b.op('Gemm', [gap, 'W3', 'B3'], { transB: 1 }, { outputs: ['logits'] });
    },
    emits: ['Where', 'ScatterElements', 'ConvTranspose', 'Expand'],
  },
  {
    name: 'MaxPool overlapping at opset 13 (offset masks + one-hot ConvTranspose)',
    opset: 13,
    x: [1, 2, 6, 6],
    params: { W1: [2, 2, 3, 3], W3: [3, 8] },
    build: (b) => {
      const c1 = b.op1('Sigmoid', [b.op1('Conv', ['X', 'W1'], { pads: [1, 1, 1, 1] })]);
      const p = b.op1('MaxPool', [c1], { kernel_shape: [3, 3], strides: [2, 2] });
      b.op('Gemm', [b.op1('Flatten', [p], { axis: 1 }), 'W3'], { transB: 1 }, { outputs: ['logits'] });
    },
    emits: ['Equal', 'ConvTranspose', 'Mod'],
  },
];

for (const net of nets) {
  test(`second order: ${net.name}`, async () => {
    const model = buildModel({
      opset: net.opset, inputs: [{ name: 'X', dims: net.x }], outputs: ['logits'],
      build: (b) => {
        for (const [name, dims] of Object.entries(net.params)) init(b, name, dims);
        net.build(b);
      },
    });
    const n = net.x[0]!;
    const gm = gradientModel(model, Object.keys(net.params), Array.from({ length: n }, (_, i) => i % 3));
    const ops = new Set(gm.graph.nodes.map((x) => x.opType));
    for (const op of net.emits) assert.ok(ops.has(op), `the gradient graph has no ${op} (ops: ${[...ops].join(', ')})`);
    // d/dX of the gradient (the attack's direction) and d/dW1 of it (a Hessian block).
    const r = await gradcheck({ model: gm, wrt: ['X', 'W1'], inputs: { X: feed(net.x) }, probes: 12 });
    assert.equal(r.mode, 'float64');
    assert.ok(r.ok, r.report);
  });
}

test('second order: third derivative through the LeNet (autodiff applied twice to its own output)', async () => {
  const net = nets[0]!;
  const model = buildModel({
    inputs: [{ name: 'X', dims: net.x }], outputs: ['logits'],
    build: (b) => {
      for (const [name, dims] of Object.entries(net.params)) init(b, name, dims);
      net.build(b);
    },
  });
  // Gradient model, then its own gradient w.r.t. W1 seeded by fixed R: a Hessian-vector product as a model.
  const gm = gradientModel(model, Object.keys(net.params), [2]);
  const g = gm.graph;
  const seeds = new Map<string, string>();
  for (const o of g.outputs) {
    const t = g.initializers.get(o.name.slice(2))!;
    const dims = t.dims.map(Number);
    const name = `R_${o.name}`;
    g.addInitializer(makeTensor(name, dims, randn(rng, dims)));
    seeds.set(o.name, name);
  }
  const types = inferShapes(g, { opset: 17 });
  const hvp = differentiate(g, { wrt: ['W1'], seeds, opset: 17, shapeOf: (v) => types.get(v)?.shape ?? null, prefix: 'hvp/' });
  g.addNode(new Node({ opType: 'Identity', inputs: [hvp.get('W1')!], outputs: ['hvp_W1'] }));
  g.outputs = [{ name: 'hvp_W1', type: null }];
  g.valueInfo.clear();
  g.removeDeadCode();
  const r = await gradcheck({ model: gm, wrt: ['X'], inputs: { X: feed(net.x) }, probes: 10 });
  assert.equal(r.mode, 'float64');
  assert.ok(r.ok, r.report);
});

interface OpCase {
  name: string;
  opset?: number;
  inputs: Record<string, Feed>;
  consts?: Record<string, { dims: number[]; data: BigInt64Array }>;
  wrt: string[];
  build: (b: GraphBuilder) => void;
}

const ct = (attrs: Record<string, number | number[]>, x: number[], w: number[], bias?: number): OpCase => ({
  name: `ConvTranspose ${JSON.stringify(attrs)}`,
  inputs: { X: feed(x), W: feed(w), ...(bias ? { B: feed([bias]) } : {}) },
  wrt: ['X', 'W', ...(bias ? ['B'] : [])],
  build: (b) => { b.op('ConvTranspose', ['X', 'W', ...(bias ? ['B'] : [])], attrs, { outputs: ['Y'] }); },
});

const opCases: OpCase[] = [
  ct({ strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }, [2, 3, 4, 4], [3, 2, 3, 3], 2),
  ct({ strides: [1, 1] }, [1, 2, 5, 5], [2, 3, 3, 3], 3),
  ct({ strides: [2, 3], pads: [0, 1, 1, 0], dilations: [2, 1] }, [1, 2, 3, 4], [2, 2, 2, 3]),
  ct({ strides: [2, 2], group: 2 }, [2, 4, 3, 3], [4, 3, 2, 2], 6),
  ct({ strides: [3] }, [2, 2, 5], [2, 1, 4]),
  {
    name: 'ScatterElements (none) on axis 1',
    inputs: { D: feed([3, 5]), U: feed([3, 2]) },
    consts: { I: { dims: [3, 2], data: BigInt64Array.from([0n, 4n, 1n, 2n, 3n, 0n]) } },
    wrt: ['D', 'U'],
    build: (b) => { b.op('ScatterElements', ['D', 'I', 'U'], { axis: 1 }, { outputs: ['Y'] }); },
  },
  {
    name: 'ScatterElements (add) with repeated indices',
    inputs: { D: feed([6]), U: feed([4]) },
    consts: { I: { dims: [4], data: BigInt64Array.from([1n, 1n, 5n, 0n]) } },
    wrt: ['D', 'U'],
    build: (b) => { b.op('ScatterElements', ['D', 'I', 'U'], { axis: 0, reduction: 'add' }, { outputs: ['Y'] }); },
  },
  {
    name: 'ScatterND (none) and GatherND',
    inputs: { D: feed([4, 3]), U: feed([2, 3]) },
    consts: { I: { dims: [2, 1], data: BigInt64Array.from([3n, 1n]) }, J: { dims: [3, 2], data: BigInt64Array.from([0n, 0n, 3n, 2n, 1n, 1n]) } },
    wrt: ['D', 'U'],
    build: (b) => {
      const s = b.op1('ScatterND', ['D', 'I', 'U']);
      b.op('GatherND', [b.op1('Mul', [s, s]), 'J'], {}, { outputs: ['Y'] });
    },
  },
  {
    name: 'CastLike',
    inputs: { X: feed([2, 3]), L: feed([1]) },
    wrt: ['X'],
    build: (b) => { b.op('CastLike', [b.op1('Mul', ['X', 'X']), 'L'], {}, { outputs: ['Y'] }); },
  },
];

for (const c of opCases) {
  test(`closure rule: ${c.name}`, async () => {
    const model = buildModel({
      opset: c.opset,
      inputs: Object.entries(c.inputs).map(([name, f]) => ({ name, dims: f.dims })),
      outputs: ['Y'],
      build: (b) => {
        for (const [name, t] of Object.entries(c.consts ?? {})) b.graph.addInitializer(makeTensor(name, t.dims, t.data, 'int64'));
        c.build(b);
      },
    });
    const r = await gradcheck({ model, wrt: c.wrt, inputs: c.inputs, probes: 30 });
    assert.equal(r.mode, 'float64');
    assert.ok(r.ok, r.report);
  });
}
