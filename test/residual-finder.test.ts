/**
 * The residual-block finder on models exported by real exporters (test/fixtures, made by
 * scripts/dev/export-fixtures.py, whose expected blocks come from the PyTorch module tree, not
 * from graph heuristics) and on hand-built graphs with the adds that must not be taken for
 * residual connections.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Graph, Node, makeTensorTypeProto, type Dim } from '../src/graph/ir.js';
import { GraphBuilder } from '../src/graph/builder.js';
import { loadModel } from '../src/graph/io.js';
import { dtypeName, float32Tensor, tensorDims, type DType } from '../src/graph/tensor.js';
import { findResidualBlocks, type ResidualBlock } from '../src/graph/residual-finder.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

interface ExpectedBlock { add: string; skip: string; branch: string; skipKind: string; blockInput: string }
interface ExpectedFixture { residualBlocks: number; note: string; blocks: ExpectedBlock[] }
const expected = JSON.parse(readFileSync(`${FIXTURES}expected.json`, 'utf8')) as { fixtures: Record<string, ExpectedFixture> };

const load = (name: string) => loadModel(`${FIXTURES}${name}.onnx`);
const key = (b: ExpectedBlock | ResidualBlock) => `${b.add} | skip ${b.skip} | branch ${b.branch} | ${b.skipKind} | x ${b.blockInput}`;

// ------------------------------------------------------------------ exported models

for (const [name, fx] of Object.entries(expected.fixtures)) {
  test(`${name}: ${fx.residualBlocks} residual blocks, each with the skip/branch the module tree says (${fx.note})`, () => {
    const blocks = findResidualBlocks(load(name).graph);
    assert.equal(blocks.length, fx.residualBlocks);
    assert.deepEqual(blocks.map(key).sort(), fx.blocks.map(key).sort());
    assert.deepEqual(blocks.map((b) => b.index), blocks.map((_, i) => i));
  });
}

test('fixture coverage: every architecture the finder must handle is there with its published block count', () => {
  const counts = Object.fromEntries(Object.entries(expected.fixtures).map(([k, v]) => [k, v.residualBlocks]));
  assert.equal(counts['resnet18-bn-op13'], 8);
  assert.equal(counts['resnet50-bn-op13'], 16);
  assert.equal(counts['mobilenetv2-op13'], 10);
  assert.equal(counts['densenet121-like-op13'], 0);
  assert.equal(counts['squeezenet11-op13'], 0);
  assert.equal(counts['preact-resnet18-op13'], 8);
  assert.equal(counts['cifar-resnet20-optA-pad-op13'], 9);
  for (const t of ['torch-encoder-prenorm-op13', 'torch-encoder-postnorm-op17', 'hand-transformer-prenorm-op13', 'hand-transformer-postnorm-op13']) {
    assert.equal(counts[t], 4, t);
  }
});

test('ResNet-18 (BN folded by the exporter, dynamic batch): branch ops and shapes from the architecture', () => {
  const blocks = findResidualBlocks(load('resnet18-folded-op17').graph);
  // 64x64 input: stride-2 stem and max-pool -> 16x16, then each stage halves; widths 8, 16, 32, 64.
  const shapes = [[8, 16], [8, 16], [16, 8], [16, 8], [32, 4], [32, 4], [64, 2], [64, 2]];
  blocks.forEach((b, i) => {
    assert.deepEqual(b.branchOps, ['Conv', 'Relu', 'Conv']);
    assert.deepEqual(b.shape, ['batch', shapes[i]![0], shapes[i]![1], shapes[i]![1]]);
    assert.equal(b.skipKind, i % 2 === 0 && i > 0 ? 'projection' : 'identity');
  });
  const proj = blocks[2]!;
  assert.equal(proj.skip, '/layer2/layer2.0/downsample/downsample.0/Conv_output_0');
  assert.equal(proj.blockInput, '/layer1/layer1.1/relu_1/Relu_output_0');
  assert.equal(proj.branch, '/layer2/layer2.0/conv2/Conv_output_0');
});

test('ResNet-18 with BatchNormalization kept and ResNet-D: BN on both paths, pooling on the skip', () => {
  const bn = findResidualBlocks(load('resnet18-bn-op13').graph);
  assert.deepEqual(bn[2]!.branchOps, ['Conv', 'BatchNormalization', 'Relu', 'Conv', 'BatchNormalization']);
  assert.equal(bn[2]!.skip, '/layer2/layer2.0/downsample/downsample.1/BatchNormalization_output_0');
  const d = load('resnet18d-op13');
  const blocks = findResidualBlocks(d.graph);
  const proj = blocks.filter((b) => b.skipKind === 'projection');
  assert.equal(proj.length, 3);
  for (const b of proj) {
    // BN <- 1x1 Conv <- AvgPool <- x
    const bnNode = d.graph.producer(b.skip)!;
    const conv = d.graph.producer(bnNode.inputs[0]!)!;
    const pool = d.graph.producer(conv.inputs[0]!)!;
    assert.deepEqual([bnNode.opType, conv.opType, pool.opType], ['BatchNormalization', 'Conv', 'AveragePool']);
    assert.equal(pool.inputs[0], b.blockInput);
  }
});

test('MobileNetV2: inverted residuals are expand 1x1, depthwise 3x3, project 1x1, no activation after the add', () => {
  for (const [name, ops] of [
    ['mobilenetv2-op13', ['Conv', 'Clip', 'Conv', 'Clip', 'Conv']],
    ['mobilenetv2-bn-op17', ['Conv', 'BatchNormalization', 'Clip', 'Conv', 'BatchNormalization', 'Clip', 'Conv', 'BatchNormalization']],
  ] as const) {
    const m = load(name);
    const blocks = findResidualBlocks(m.graph);
    assert.equal(blocks.length, 10);
    for (const b of blocks) {
      assert.deepEqual(b.branchOps, ops);
      assert.equal(b.skipKind, 'identity');
      assert.ok(m.graph.consumers(b.output).every((n) => n.opType !== 'Relu' && n.opType !== 'Clip'), 'linear bottleneck');
    }
  }
  // Walk one folded block back from the branch: 1x1 project <- ReLU6 <- depthwise 3x3 <- ReLU6 <- 1x1 expand <- x.
  const m = load('mobilenetv2-op13');
  for (const b of findResidualBlocks(m.graph)) {
    const project = m.graph.producer(b.branch)!;
    const dw = m.graph.producer(m.graph.producer(project.inputs[0]!)!.inputs[0]!)!;
    const expand = m.graph.producer(m.graph.producer(dw.inputs[0]!)!.inputs[0]!)!;
    assert.deepEqual([project.getInts('kernel_shape'), dw.getInts('kernel_shape'), expand.getInts('kernel_shape')], [[1, 1], [3, 3], [1, 1]]);
    assert.equal(dw.getInt('group'), m.graph.typeOf(dw.inputs[1]!)!.shape![0]);
    assert.equal(expand.inputs[0], b.blockInput);
  }
});

test('pre-activation ResNet: branch starts with BN-ReLU of x; the projection reads relu(bn(x))', () => {
  const m = load('preact-resnet18-bn-op17');
  const blocks = findResidualBlocks(m.graph);
  for (const b of blocks) {
    if (b.skipKind === 'projection') {
      // x is the shared pre-activated tensor, so the branch starts at conv1.
      assert.equal(m.graph.producer(b.blockInput)!.opType, 'Relu');
      assert.equal(m.graph.producer(b.skip)!.opType, 'Conv');
      assert.deepEqual(b.branchOps, ['Conv', 'BatchNormalization', 'Relu', 'Conv']);
    } else {
      assert.equal(b.skip, b.blockInput);
      assert.deepEqual(b.branchOps, ['BatchNormalization', 'Relu', 'Conv', 'BatchNormalization', 'Relu', 'Conv']);
    }
  }
  assert.equal(blocks.filter((b) => b.skipKind === 'projection').length, 3);
});

test('option-A CIFAR shortcuts: strided Slice + Pad, and Slice + Concat with x * 0, are projections of x', () => {
  const pad = load('cifar-resnet20-optA-pad-op13');
  const padBlocks = findResidualBlocks(pad.graph).filter((b) => b.skipKind === 'projection');
  assert.equal(padBlocks.length, 2);
  for (const b of padBlocks) assert.equal(pad.graph.producer(b.skip)!.opType, 'Pad');
  assert.deepEqual(padBlocks.map((b) => b.shape), [[1, 16, 16, 16], [1, 32, 8, 8]]);
  const cat = load('cifar-resnet8-optA-concat-op13');
  const catBlocks = findResidualBlocks(cat.graph).filter((b) => b.skipKind === 'projection');
  assert.equal(catBlocks.length, 2);
  for (const b of catBlocks) assert.equal(cat.graph.producer(b.skip)!.opType, 'Concat');
});

test('transformers: pre-norm branches start with LayerNorm, post-norm adds feed LayerNorm', () => {
  const pre = load('torch-encoder-prenorm-op17');
  const preBlocks = findResidualBlocks(pre.graph);
  for (const b of preBlocks) assert.equal(b.branchOps[0], 'LayerNormalization');
  assert.ok(preBlocks[0]!.branchOps.includes('Softmax'), 'attention branch');
  assert.ok(!preBlocks[1]!.branchOps.includes('Softmax'), 'MLP branch');
  const post = load('torch-encoder-postnorm-op17');
  for (const b of findResidualBlocks(post.graph)) {
    assert.ok(post.graph.consumers(b.output).some((n) => n.opType === 'LayerNormalization'));
    assert.notEqual(b.branchOps[0], 'LayerNormalization');
  }
  // Decomposed LayerNorm (opset 13): the pre-norm branch starts with its ReduceMean.
  for (const b of findResidualBlocks(load('torch-encoder-prenorm-op13').graph)) assert.equal(b.branchOps[0], 'ReduceMean');
  // The hand-written encoder's attention branch holds the mask adds and the softmax.
  const hand = findResidualBlocks(load('hand-transformer-prenorm-op13').graph);
  assert.deepEqual(hand.map((b) => b.shape), Array(4).fill(['batch', 'seq', 32]));
});

test('Keras/tf2onnx-style NHWC graph: Transposes around every conv, adds in NHWC', () => {
  const blocks = findResidualBlocks(load('keras-style-resnet-nhwc-op13').graph);
  assert.deepEqual(blocks.map((b) => b.skipKind), ['identity', 'projection', 'identity']);
  for (const b of blocks) {
    assert.deepEqual(b.branchOps, ['Transpose', 'Conv', 'BatchNormalization', 'Transpose', 'Relu', 'Transpose', 'Conv', 'BatchNormalization', 'Transpose']);
  }
  assert.deepEqual(blocks[1]!.shape, ['unk__1', 16, 16, 16]);
});

test('weights fed as graph inputs (training graphs) give the same blocks', () => {
  for (const name of ['resnet50-bn-op13', 'torch-encoder-postnorm-op13', 'hand-transformer-prenorm-op13']) {
    const m = load(name);
    const g = m.graph;
    for (const [n, t] of [...g.initializers]) {
      if (dtypeName(t.dataType) !== 'float32') continue;
      g.initializers.delete(n);
      g.inputs = g.inputs.filter((i) => i.name !== n);
      g.inputs.push({ name: n, type: makeTensorTypeProto({ dtype: 'float32', shape: tensorDims(t) }) });
    }
    assert.deepEqual(findResidualBlocks(g).map(key).sort(), expected.fixtures[name]!.blocks.map(key).sort(), name);
  }
});

test('a perturbed model (noise added to every block, three ways) has the same blocks and no new ones', () => {
  for (const style of ['additive', 'multiplicative', 'branch-std'] as const) {
    const m = load('resnet18-bn-op13');
    const g = m.graph;
    const before = findResidualBlocks(g);
    const b = new GraphBuilder(g, 'rp/');
    const gamma = b.scalar('gamma', 0.1);
    for (const blk of before) {
      const add = g.nodes.find((n) => (n.name || n.outputs[0]) === blk.add)!;
      const at = g.nodes.indexOf(add);
      const noise = b.op1('RandomNormalLike', [blk.branch], {}, { at });
      let scaled: string;
      if (style === 'additive') scaled = b.op1('Mul', [noise, gamma], {}, { at: at + 1 });
      else if (style === 'multiplicative') scaled = b.op1('Mul', [b.op1('Mul', [blk.skip, gamma], {}, { at: at + 1 }), noise], {}, { at: at + 2 });
      else {
        const std = b.op1('Sqrt', [b.op1('ReduceMean', [b.op1('Mul', [blk.branch, blk.branch], {}, { at: at + 1 })], { keepdims: 1 }, { at: at + 2 })], {}, { at: at + 3 });
        scaled = b.op1('Mul', [b.op1('Mul', [std, gamma], {}, { at: at + 4 }), noise], {}, { at: at + 5 });
      }
      const noisy = b.op1('Add', [blk.branch, scaled], {}, { at: g.nodes.indexOf(add) });
      add.inputs = add.inputs.map((v) => (v === blk.branch ? noisy : v));
    }
    const after = findResidualBlocks(g);
    assert.equal(after.length, before.length, style);
    assert.deepEqual(after.map((x) => [x.add, x.skip, x.blockInput, x.skipKind]), before.map((x) => [x.add, x.skip, x.blockInput, x.skipKind]), style);
    for (const x of after) assert.equal(g.producer(x.branch)!.opType, 'Add');
  }
});

// ------------------------------------------------------------------ hand-built graphs

/** A small graph-building kit: inputs with declared types, non-zero weights, named ops. */
class Kit {
  readonly g = new Graph({ name: 'test' });
  readonly b = new GraphBuilder(this.g);
  private seed = 1;
  input(name: string, shape: Dim[], dtype: DType = 'float32'): string {
    this.g.inputs.push({ name, type: makeTensorTypeProto({ dtype, shape }) });
    return name;
  }
  weight(base: string, dims: number[]): string {
    const n = dims.reduce((a, c) => a * c, 1);
    // Non-zero, deterministic values: a zero constant means something else (zero-fill).
    return this.b.initializer(base, dims, Float32Array.from({ length: n }, () => ((this.seed = (this.seed * 48271) % 2147483647) / 2147483647) - 0.5));
  }
  /** A float scalar as a Constant node (how exporters write literals). */
  constant(value: number): string {
    return this.b.op1('Constant', [], { value: float32Tensor('value', [value], []) });
  }
  op(opType: string, inputs: string[], attrs: Record<string, number | number[]> = {}, name?: string): string {
    return this.b.op1(opType, inputs, attrs, name ? { name } : {});
  }
  linear(x: string, din: number, dout: number): string {
    return this.op('Add', [this.op('MatMul', [x, this.weight('w', [din, dout])]), this.weight('b', [dout])]);
  }
  output(v: string): void {
    this.g.outputs.push({ name: v, type: null });
  }
  blocks(): ResidualBlock[] {
    return findResidualBlocks(this.g);
  }
}

function layerNorm(k: Kit, x: string, d: number): string {
  const mean = k.op('ReduceMean', [x], { axes: [-1], keepdims: 1 });
  const c = k.op('Sub', [x, mean]);
  const v = k.op('ReduceMean', [k.op('Pow', [c, k.constant(2)])], { axes: [-1], keepdims: 1 });
  const n = k.op('Div', [c, k.op('Sqrt', [k.op('Add', [v, k.constant(1e-5)])])]);
  return k.op('Add', [k.op('Mul', [n, k.weight('gamma', [d])]), k.weight('beta', [d])]);
}

test('hand-built: an identity residual MLP is found, with bias adds inside its branch not counted', () => {
  const k = new Kit();
  const x = k.input('x', ['N', 16]);
  const h = k.linear(k.op('Relu', [k.linear(x, 16, 32)]), 32, 16);
  const y = k.op('Add', [x, h], {}, 'residual');
  k.output(y);
  const blocks = k.blocks();
  assert.equal(blocks.length, 1);
  assert.deepEqual(blocks[0], {
    index: 0, add: 'residual', output: y, blockInput: x, branch: h, skip: x, skipKind: 'identity',
    branchOps: ['MatMul', 'Add', 'Relu', 'MatMul', 'Add'], shape: ['N', 16],
  });
});

test('hand-built: Gemm projection skip, two-input Sum, unnamed node, unsorted nodes, weights as inputs', () => {
  const k = new Kit();
  const x = k.input('x', [4, 16]);
  const w1 = k.input('w1', [16, 32]);
  const p = k.op('Gemm', [x, k.weight('wp', [32, 16])], { transB: 1 });
  const h = k.op('MatMul', [k.op('Relu', [k.op('MatMul', [x, w1])]), k.weight('w2', [32, 32])]);
  const sum = new Node({ opType: 'Sum', inputs: [h, p], outputs: ['sum_out'] });
  k.g.nodes.push(sum);
  k.g.nodes.reverse();
  k.output('sum_out');
  const blocks = k.blocks();
  assert.equal(blocks.length, 1);
  const b = blocks[0]!;
  assert.deepEqual([b.add, b.skip, b.branch, b.blockInput, b.skipKind], ['sum_out', p, h, x, 'projection']);
  assert.deepEqual(b.branchOps, ['MatMul', 'Relu', 'MatMul']);
  assert.deepEqual(b.shape, [4, 32]);
});

test('hand-built: nested residuals are two blocks, inner first; the graph is left untouched', () => {
  const k = new Kit();
  const x = k.input('x', [1, 8, 8, 8]);
  const conv = (v: string, kk: number) => k.op('Conv', [v, k.weight('w', [8, 8, kk, kk])], { pads: kk === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0] });
  const h = conv(x, 3);
  const inner = k.op('Add', [h, conv(k.op('Relu', [conv(h, 3)]), 3)], {}, 'inner');
  const outer = k.op('Add', [x, conv(inner, 3)], {}, 'outer');
  k.output(outer);
  const nodes = [...k.g.nodes];
  const infos = k.g.valueInfo.size;
  const blocks = k.blocks();
  assert.deepEqual(blocks.map((b) => [b.add, b.blockInput]), [['inner', h], ['outer', x]]);
  assert.deepEqual(blocks[1]!.branchOps, ['Conv', 'Conv', 'Relu', 'Conv', 'Add', 'Conv']);
  assert.deepEqual(k.g.nodes, nodes);
  assert.equal(k.g.valueInfo.size, infos);
});

test('hand-built: bias adds (initializer and Constant) are not residual', () => {
  const k = new Kit();
  const x = k.input('x', [1, 3, 8, 8]);
  const c = k.op('Add', [k.op('Conv', [x, k.weight('w', [4, 3, 3, 3])]), k.weight('bias', [4, 1, 1])]);
  const m = k.op('Add', [k.op('MatMul', [k.op('Flatten', [c]), k.weight('fc', [144, 10])]), k.constant(0.5)]);
  k.output(m);
  assert.equal(k.blocks().length, 0);
});

test('hand-built: decomposed LayerNorm arithmetic is not residual', () => {
  const k = new Kit();
  const x = k.input('x', ['N', 'T', 16]);
  k.output(layerNorm(k, k.linear(x, 16, 16), 16));
  assert.equal(k.blocks().length, 0);
});

test('hand-built: positional embeddings (Range(Shape) positions, position_ids input, ViT table, learned offset) are not residual', () => {
  const k = new Kit();
  const ids = k.input('ids', ['N', 'T'], 'int64');
  const positionIds = k.input('position_ids', ['N', 'T'], 'int64');
  const tok = k.op('Gather', [k.weight('tok', [50, 16]), ids]);
  const t = k.op('Gather', [k.op('Shape', [ids]), k.b.int64s('one', [1])]);
  const positions = k.op('Range', [k.b.int64s('zero', [0]), t, k.b.int64s('step', [1])]);
  const pos = k.op('Unsqueeze', [k.op('Gather', [k.weight('pos', [16, 16]), positions]), k.b.int64s('ax', [0])]);
  const e1 = k.op('Add', [tok, pos]);
  const e2 = k.op('Add', [e1, k.op('Gather', [k.weight('pos2', [16, 16]), positionIds])]);
  const e3 = k.op('Add', [e2, k.weight('offset', [1, 1, 16])]);
  // ViT: patch embedding (a Conv, so parametric) plus a position table initializer.
  const img = k.input('img', [1, 3, 16, 16]);
  const patches = k.op('Transpose', [k.op('Reshape', [k.op('Conv', [img, k.weight('pe', [16, 3, 4, 4])], { strides: [4, 4] }), k.b.int64s('shape', [1, 16, 16])])], { perm: [0, 2, 1] });
  const vit = k.op('Add', [patches, k.weight('vitpos', [1, 16, 16])]);
  k.output(k.linear(e3, 16, 2));
  k.output(vit);
  assert.equal(k.blocks().length, 0);
});

function attention(k: Kit, x: string, mask: string, d: number): string {
  const q = k.op('MatMul', [x, k.weight('wq', [d, d])]);
  const kk = k.op('MatMul', [x, k.weight('wk', [d, d])]);
  const v = k.op('MatMul', [x, k.weight('wv', [d, d])]);
  const scores = k.op('Div', [k.op('MatMul', [q, k.op('Transpose', [kk], { perm: [0, 2, 1] })]), k.constant(4)]);
  const masked = k.op('Add', [scores, mask], {}, 'mask_add');
  return k.op('MatMul', [k.op('MatMul', [k.op('Softmax', [masked], { axis: -1 }), v]), k.weight('wo', [d, d])]);
}
function maskTerm(k: Kit, padMask: string): string {
  // (1 - mask[:, None, :]) * -1e4, as BERT-style exports write it.
  return k.op('Mul', [k.op('Sub', [k.constant(1), k.op('Unsqueeze', [padMask, k.b.int64s('ax', [1])])]), k.constant(-1e4)]);
}

test('hand-built: attention mask adds onto QK^T scores (input-derived, static causal) are not residual', () => {
  const k = new Kit();
  const x = k.input('x', ['N', 'T', 16]);
  const pad = k.input('pad_mask', ['N', 'T']);
  k.output(attention(k, x, maskTerm(k, pad), 16));
  const k2 = new Kit();
  const x2 = k2.input('x', ['N', 8, 16]);
  k2.output(attention(k2, x2, k2.weight('causal', [8, 8]), 16));
  assert.equal(k.blocks().length, 0);
  assert.equal(k2.blocks().length, 0);
});

test('hand-built: a mask term shared by two layers is not taken as the trunk of the second layer', () => {
  const k = new Kit();
  let x = k.input('x', ['N', 'T', 16]);
  const mask = maskTerm(k, k.input('pad_mask', ['N', 'T']));
  const residuals: string[] = [];
  for (let l = 0; l < 2; l++) {
    const y = k.op('Add', [x, attention(k, layerNorm(k, x, 16), mask, 16)], {}, `layer${l}`);
    residuals.push(x);
    x = y;
  }
  k.output(x);
  // No value types at all: only structure decides.
  const blocks = findResidualBlocks(k.g, { types: new Map() });
  assert.deepEqual(blocks.map((b) => [b.add, b.skip]), [['layer0', residuals[0]], ['layer1', residuals[1]]]);
});

test('hand-built: a DETR-style positional code added to the queries of every layer is not residual', () => {
  const k = new Kit();
  let x = k.input('src', ['T', 16]);
  const pos = k.input('pos', ['T', 16]);
  const mask = k.weight('nomask', [1]);
  for (let l = 0; l < 3; l++) {
    const q = k.op('Add', [x, pos], {}, `with_pos${l}`);
    x = k.op('Add', [x, attention(k, q, mask, 16)], {}, `layer${l}`);
  }
  k.output(x);
  assert.deepEqual(findResidualBlocks(k.g, { types: new Map() }).map((b) => b.add), ['layer0', 'layer1', 'layer2']);
});

test('hand-built: erf and tanh GELU arithmetic (h + 0.044715 h^3, 1 + erf) is not residual', () => {
  const k = new Kit();
  const x = k.input('x', ['N', 16]);
  const h = k.linear(x, 16, 32);
  const erf = k.op('Mul', [k.op('Mul', [h, k.constant(0.5)]), k.op('Add', [k.op('Erf', [k.op('Div', [h, k.constant(1.4142)])]), k.constant(1)])]);
  const inner = k.op('Add', [erf, k.op('Mul', [k.constant(0.044715), k.op('Pow', [erf, k.constant(3)])])]);
  const tanh = k.op('Mul', [k.op('Mul', [erf, k.constant(0.5)]), k.op('Add', [k.constant(1), k.op('Tanh', [k.op('Mul', [inner, k.constant(0.79788)])])])]);
  k.output(k.linear(tanh, 32, 2));
  assert.equal(k.blocks().length, 0);
});

test('hand-built: adds in shape computations and on int64 data are not residual', () => {
  const k = new Kit();
  const x = k.input('x', ['N', 'T', 16]);
  const s = k.op('Shape', [x]);
  const n = k.op('Gather', [s, k.b.int64s('i0', [0])]);
  const t = k.op('Gather', [s, k.b.int64s('i1', [1])]);
  const nt = k.op('Add', [n, t]);
  const shape = k.op('Concat', [k.op('Add', [nt, k.b.int64s('one', [1])]), k.b.int64s('d', [16])], { axis: 0 });
  k.output(k.op('Reshape', [k.linear(x, 16, 16), shape]));
  assert.equal(k.blocks().length, 0);
  // int64 data: ids + Cast(round(MatMul(Cast(ids)))) has the residual structure but is not float.
  const k2 = new Kit();
  const ids = k2.input('ids', ['N', 4], 'int64');
  const f = k2.op('MatMul', [k2.op('Cast', [ids], { to: 1 }), k2.weight('w', [4, 4])]);
  k2.output(k2.op('Add', [ids, k2.op('Cast', [k2.op('Round', [f]), ], { to: 7 })]));
  assert.equal(k2.blocks().length, 0);
});

test('hand-built: an add broadcasting a [N,C,1,1] tensor is rejected by the shape check', () => {
  const build = () => {
    const k = new Kit();
    const x = k.input('x', [1, 8, 16, 16]);
    const y = k.op('Conv', [x, k.weight('w', [8, 8, 3, 3])], { pads: [1, 1, 1, 1] });
    const s = k.op('Conv', [k.op('GlobalAveragePool', [y]), k.weight('se', [8, 8, 1, 1])]);
    k.output(k.op('Add', [y, s]));
    return k;
  };
  assert.equal(build().blocks().length, 0);
  // The same graph read without any value types has the residual structure: the shapes decide.
  assert.equal(findResidualBlocks(build().g, { types: new Map() }).length, 1);
});

test('hand-built: LayerNorm centring written as y + Neg(mean(y)) on y = Linear(h) is not a projection residual of h', () => {
  const k = new Kit();
  const h = k.input('h', ['N', 16]);
  const y = k.linear(h, 16, 16);
  const centred = k.op('Add', [y, k.op('Neg', [k.op('ReduceMean', [y], { axes: [-1], keepdims: 1 })])]);
  k.output(k.op('Div', [centred, k.op('Sqrt', [k.op('Add', [k.op('ReduceMean', [k.op('Mul', [centred, centred])], { axes: [-1], keepdims: 1 }), k.constant(1e-5)])])]));
  assert.equal(findResidualBlocks(k.g, { types: new Map() }).length, 0);
  assert.equal(k.blocks().length, 0);
});

test('hand-built: a QDQ-quantized residual block (Quantize/DequantizeLinear around every tensor) is found', () => {
  const k = new Kit();
  const x = k.input('x', [1, 8, 8, 8]);
  const scale = k.b.scalar('s', 0.05);
  const zp = k.b.initializer('zp', [], Uint8Array.of(128));
  const qdq = (v: string) => k.op('DequantizeLinear', [k.op('QuantizeLinear', [v, scale, zp]), scale, zp]);
  const wq = (dims: number[]) => k.op('DequantizeLinear', [k.b.initializer('wq', dims, new Int8Array(dims.reduce((a, b) => a * b, 1)).fill(3)), scale]);
  const conv = (v: string) => qdq(k.op('Conv', [qdq(v), wq([8, 8, 3, 3])], { pads: [1, 1, 1, 1] }));
  const branch = conv(k.op('Relu', [conv(x)]));
  const skip = qdq(x);
  const y = k.op('Add', [skip, branch], {}, 'add');
  k.output(y);
  const blocks = k.blocks();
  assert.equal(blocks.length, 1);
  assert.deepEqual([blocks[0]!.skip, blocks[0]!.blockInput, blocks[0]!.skipKind], [skip, x, 'identity']);
  assert.deepEqual(blocks[0]!.shape, [1, 8, 8, 8]);
});

test('built-in ResNets: every block found with batch, group (decomposed GroupNorm shortcut) and no norm', async () => {
  const { buildResNet } = await import('../models/index.js');
  for (const norm of ['batch', 'group', 'none'] as const) {
    const blocks = findResidualBlocks(buildResNet('resnet20', { norm }).graph);
    assert.equal(blocks.length, 9, `resnet20 norm ${norm}`);
    assert.deepEqual(blocks.filter((b) => b.skipKind === 'projection').map((b) => b.index), [3, 6], `norm ${norm}`);
    assert.ok(blocks.every((b) => b.add.endsWith('.add')));
  }
});
