/**
 * The Graph IR keeps its producer/consumer index and its name table up to date by itself: after
 * every kind of edit (the graph's mutators and direct edits of nodes and the node list), the
 * answers equal those of an index built from scratch here, from the node list alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, Node, implicitInputs } from '../src/graph/ir.js';
import { onnx } from '../src/graph/onnx.js';
import { float32Tensor } from '../src/graph/tensor.js';

/** Producer and consumers of every value, recomputed from the node list (the reference). */
function scratchIndex(g: Graph): { producer: Map<string, Node>; consumers: Map<string, Node[]> } {
  const producer = new Map<string, Node>();
  const consumers = new Map<string, Node[]>();
  for (const n of [...g.nodes]) {
    for (const o of n.outputs) if (o !== '') producer.set(o, n);
    const read: string[] = [];
    for (const v of [...n.inputs, ...implicitInputs(n)]) if (v !== '' && !read.includes(v)) read.push(v);
    for (const v of read) consumers.set(v, [...(consumers.get(v) ?? []), n]);
  }
  return { producer, consumers };
}

/** Every name a node, value, input, output, initializer or value_info uses. */
function namesInUse(g: Graph): Set<string> {
  const s = new Set<string>();
  for (const n of g.nodes) {
    s.add(n.name);
    for (const v of [...n.inputs, ...n.outputs]) s.add(v);
  }
  for (const v of [...g.inputs, ...g.outputs]) s.add(v.name);
  for (const k of [...g.initializers.keys(), ...g.valueInfo.keys()]) s.add(k);
  return s;
}

/** Asks the graph about every value (so its tables exist before the next edit) and compares. */
function assertIndexed(g: Graph, step: string): void {
  const ref = scratchIndex(g);
  const values = new Set<string>([...ref.producer.keys(), ...ref.consumers.keys(), 'never-used']);
  for (const v of values) {
    assert.equal(g.producer(v), ref.producer.get(v), `${step}: producer of '${v}'`);
    assert.deepEqual(g.consumers(v).map((n) => n.name), (ref.consumers.get(v) ?? []).map((n) => n.name), `${step}: consumers of '${v}'`);
    assert.ok(g.consumers(v).every((n, i) => n === ref.consumers.get(v)?.[i]), `${step}: consumer nodes of '${v}'`);
  }
  const before = namesInUse(g);
  for (const base of ['x', 'a', 'b', 'c', 'h', 'y', 'Relu', 'w', 'z', 'in2']) {
    const fresh = g.uniqueName(base);
    assert.ok(!before.has(fresh), `${step}: uniqueName('${base}') gave '${fresh}', which is in use`);
  }
}

/** x -> Relu -> a -> Neg -> b -> Add(b, w) -> y, with an initializer w. */
function chain(): { g: Graph; relu: Node; neg: Node; add: Node } {
  const relu = new Node({ opType: 'Relu', name: 'relu', inputs: ['x'], outputs: ['a'] });
  const neg = new Node({ opType: 'Neg', name: 'neg', inputs: ['a'], outputs: ['b'] });
  const add = new Node({ opType: 'Add', name: 'add', inputs: ['b', 'w'], outputs: ['y'] });
  const g = new Graph({
    name: 'chain',
    nodes: [relu, neg, add],
    inputs: [{ name: 'x', type: null }],
    outputs: [{ name: 'y', type: null }],
    initializers: new Map([['w', float32Tensor('w', [1], [1])]]),
  });
  return { g, relu, neg, add };
}

test('the index follows every mutator of the graph', () => {
  const { g, relu, neg, add } = chain();
  assertIndexed(g, 'fresh');

  g.addNode(new Node({ opType: 'Sigmoid', name: 'sig', inputs: ['a'], outputs: ['c'] }));
  assertIndexed(g, 'addNode (append)');
  g.addNode(new Node({ opType: 'Abs', inputs: ['x'], outputs: ['h'] }), 1);
  assertIndexed(g, 'addNode (insert)');
  assert.ok(g.nodes[1]!.name !== '', 'addNode names an unnamed node');

  g.replaceAllUses('a', 'h');
  assertIndexed(g, 'replaceAllUses');
  assert.deepEqual(g.consumers('a'), []);
  g.replaceAllUses('h', 'a', g.nodes.find((n) => n.opType === 'Sigmoid'));
  assertIndexed(g, 'replaceAllUses with an exception');

  g.addInitializer(float32Tensor('z', [2], [1]));
  assertIndexed(g, 'addInitializer');

  g.removeNode(neg);
  assertIndexed(g, 'removeNode');
  assert.equal(g.producer('b'), undefined);

  g.addNode(neg, 0);
  assertIndexed(g, 'addNode of a node reading a later output');
  g.toposort();
  assertIndexed(g, 'toposort');
  assert.ok(g.nodes.indexOf(neg) > g.nodes.indexOf(relu), 'toposort put Neg after its producer');

  g.removeDeadCode();
  assertIndexed(g, 'removeDeadCode');
  assert.ok(!g.nodes.some((n) => n.opType === 'Sigmoid'), 'the dead Sigmoid is gone');
  assert.ok(g.nodes.includes(add));
});

test('the index follows direct edits of nodes and of the node list', () => {
  const { g, relu, neg, add } = chain();
  assertIndexed(g, 'fresh');

  neg.inputs[0] = 'x';
  assertIndexed(g, 'inputs[i] = v');
  neg.inputs = ['a'];
  assertIndexed(g, 'inputs = [...]');
  add.inputs.push('a');
  assertIndexed(g, 'inputs.push');
  add.inputs.length = 2;
  assertIndexed(g, 'inputs.length = n');
  add.inputs.splice(1, 1, 'x');
  assertIndexed(g, 'inputs.splice');

  relu.outputs[1] = 'mask';
  assertIndexed(g, 'outputs[i] = v (a new optional output)');
  assert.equal(g.producer('mask'), relu);
  relu.outputs = ['a'];
  assertIndexed(g, 'outputs = [...]');
  neg.outputs.push('b2');
  assertIndexed(g, 'outputs.push');

  neg.name = 'y_1';
  assertIndexed(g, 'name = v');

  g.nodes.push(new Node({ opType: 'Exp', name: 'exp', inputs: ['b'], outputs: ['e'] }));
  assertIndexed(g, 'nodes.push');
  g.nodes.splice(0, 1);
  assertIndexed(g, 'nodes.splice');
  g.nodes.reverse();
  assertIndexed(g, 'nodes.reverse');
  g.nodes[0] = relu;
  assertIndexed(g, 'nodes[i] = node');
  g.nodes = g.nodes.filter((n) => n !== relu);
  assertIndexed(g, 'nodes = [...]');
  const pushed = g.nodes;
  pushed.push(relu);
  assertIndexed(g, 'push through a kept reference to nodes');
});

test('subgraph captures are consumers, and replacing the body attribute updates them', () => {
  const { g } = chain();
  const body = (captured: string) => onnx.GraphProto.create({
    name: 'body', output: [onnx.ValueInfoProto.create({ name: 'out' })],
    node: [onnx.NodeProto.create({ opType: 'Identity', input: [captured], output: ['out'] })],
  });
  const branch = new Node({ opType: 'If', name: 'if', inputs: ['cond'], outputs: ['r'] });
  branch.setAttr('then_branch', body('a'));
  branch.setAttr('else_branch', body('a'));
  g.addNode(branch);
  assertIndexed(g, 'If capturing a');
  assert.ok(g.consumers('a').includes(branch));
  branch.setAttr('then_branch', body('b'));
  branch.setAttr('else_branch', body('b'));
  assertIndexed(g, 'setAttr with a new body');
  assert.ok(!g.consumers('a').includes(branch) && g.consumers('b').includes(branch));
  branch.removeAttr('then_branch');
  branch.removeAttr('else_branch');
  assertIndexed(g, 'removeAttr');
  branch.attributes = [];
  assertIndexed(g, 'attributes = []');
});

test('a node shared by two graphs keeps both indexes up to date', () => {
  const { g, neg } = chain();
  const other = new Graph({ name: 'other', nodes: [neg] });
  assertIndexed(g, 'first graph');
  assertIndexed(other, 'second graph');
  neg.inputs[0] = 'x';
  assertIndexed(g, 'first graph after the edit');
  assertIndexed(other, 'second graph after the edit');
});

test('uniqueName avoids values added behind its back (inputs, outputs, initializers, value_info)', () => {
  const { g } = chain();
  assertIndexed(g, 'fresh');
  g.inputs.push({ name: 'in2', type: null });
  g.outputs.push({ name: 'out2', type: null });
  g.initializers.set('w2', float32Tensor('w2', [3], [1]));
  g.valueInfo.set('vi', { name: 'vi', type: null });
  for (const v of ['in2', 'out2', 'w2', 'vi']) assert.notEqual(g.uniqueName(v), v);
  assertIndexed(g, 'after direct edits of the graph I/O');
  const a = g.uniqueName('fresh');
  assert.notEqual(g.uniqueName('fresh'), a, 'a name handed out is not handed out again');
});
