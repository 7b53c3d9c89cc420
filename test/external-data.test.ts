import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx, type ModelProto, type TensorProto } from '../src/graph/onnx.js';
import { Model } from '../src/graph/ir.js';
import {
  PROTOBUF_LIMIT, encodeModel, loadModel, needsExternalData, readModelProto, saveModel, saveModelProto, tensorDataBytes,
} from '../src/graph/io.js';
import { EXTERNAL_ALIGNMENT, externalDataFiles } from '../src/graph/external-data.js';
import { float32Tensor, int64Tensor, tensorToFloat32 } from '../src/graph/tensor.js';
import { RpOnnxError } from '../src/errors.js';
import { mlpModel, modelJson } from './fixtures/synthetic-model.js';
import { runCli } from './helpers/cli.js';

const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'rp-onnx-ext-'));
}

function inDir(fn: (dir: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const dir = tempDir();
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function initializer(p: ModelProto, name: string): TensorProto {
  const t = (p.graph as onnx.GraphProto).initializer.find((x) => x.name === name);
  assert.ok(t, name);
  return t as TensorProto;
}

/** Points tensor `name` of the MLP model at a data file, as another tool would have written it. */
function withExternal(name: string, entries: Record<string, string>): ModelProto {
  const p = mlpModel().toProto();
  const t = initializer(p, name);
  t.externalData = Object.entries(entries).map(([key, value]) => onnx.StringStringEntryProto.create({ key, value }));
  t.dataLocation = EXTERNAL;
  Reflect.deleteProperty(t, 'rawData');
  return p;
}

function expectError(fn: () => unknown, pattern: RegExp, file: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RpOnnxError, String(e));
    assert.match(e.message, pattern);
    assert.ok(e.message.includes(file), `names ${file}: ${e.message}`);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
}

test('reads external data relative to the model folder, at its offset and length', inDir((dir) => {
  const reference = mlpModel().toProto();
  const w = initializer(reference, 'W').rawData;
  const b = initializer(reference, 'b').rawData;
  // Both tensors in one file under a subfolder, W after 100 junk bytes, b right after W.
  mkdirSync(join(dir, 'models', 'data'), { recursive: true });
  writeFileSync(join(dir, 'models', 'data', 'weights.bin'), Buffer.concat([Buffer.alloc(100, 0xee), w, b, Buffer.alloc(7, 0xee)]));
  const p = withExternal('W', { location: 'data/weights.bin', offset: '100', length: String(w.length) });
  const tb = initializer(p, 'b');
  tb.externalData = [
    onnx.StringStringEntryProto.create({ key: 'location', value: './data/weights.bin' }),
    onnx.StringStringEntryProto.create({ key: 'offset', value: String(100 + w.length) }),
    onnx.StringStringEntryProto.create({ key: 'length', value: String(b.length) }),
    onnx.StringStringEntryProto.create({ key: 'checksum', value: 'ignored' }),
  ];
  tb.dataLocation = EXTERNAL;
  Reflect.deleteProperty(tb, 'rawData');
  const path = join(dir, 'models', 'model.onnx');
  writeFileSync(path, encodeModel(p));
  assert.deepEqual(externalDataFiles(readModelProto(path, { loadExternal: false }), path), [join(dir, 'models', 'data', 'weights.bin')]);
  const loaded = loadModel(path);
  assert.deepEqual(tensorToFloat32(loaded.graph.initializers.get('W')!), tensorToFloat32(initializer(reference, 'W')));
  assert.deepEqual(tensorToFloat32(loaded.graph.initializers.get('b')!), tensorToFloat32(initializer(reference, 'b')));
  // Once loaded, the model equals the inline one field for field.
  assert.equal(modelJson(loaded.toProto()), modelJson(reference));
}));

test('without a length, a tensor reads to the end of its file', inDir((dir) => {
  const reference = mlpModel().toProto();
  writeFileSync(join(dir, 'b.bin'), Buffer.concat([Buffer.alloc(8), initializer(reference, 'b').rawData]));
  const p = withExternal('b', { location: 'b.bin', offset: '8' });
  writeFileSync(join(dir, 'm.onnx'), encodeModel(p));
  assert.deepEqual(tensorToFloat32(loadModel(join(dir, 'm.onnx')).graph.initializers.get('b')!), tensorToFloat32(initializer(reference, 'b')));
}));

test('refuses absolute and escaping locations, missing files and extents outside the file', inDir((dir) => {
  // The model sits in dir/m/; a file really exists one level up, where '..' would lead.
  const folder = join(dir, 'm');
  mkdirSync(join(folder, 'sub'), { recursive: true });
  writeFileSync(join(folder, 'small.bin'), Buffer.alloc(64));
  writeFileSync(join(dir, 'outside.bin'), Buffer.alloc(9600));
  const path = join(folder, 'model.onnx');
  const cases: [Record<string, string>, RegExp][] = [
    [{ location: join(folder, 'small.bin') }, /is absolute; only paths inside the model's folder/],
    [{ location: '../outside.bin' }, /leaves the model's folder/],
    [{ location: 'sub/../../outside.bin' }, /leaves the model's folder/],
    [{ location: '' }, /external data with no location/],
    [{ location: 'nope.bin' }, /external data file 'nope.bin' for tensor 'W' not found/],
    [{ location: 'sub' }, /is a directory/],
    [{ location: 'small.bin', offset: '0', length: '9600' }, /\(offset 0, length 9600\) lies outside 'small.bin' \(64 bytes\)/],
    [{ location: 'small.bin', offset: '65' }, /lies outside 'small.bin'/],
    [{ location: 'small.bin', offset: '-4', length: '4' }, /offset '-4', not a non-negative integer/],
    [{ location: 'small.bin', offset: '1e3' }, /offset '1e3', not a non-negative integer/],
  ];
  for (const [entries, pattern] of cases) {
    writeFileSync(path, encodeModel(withExternal('W', entries)));
    expectError(() => loadModel(path), pattern, path);
  }
  // The same checks guard writing.
  const m = mlpModel();
  const out = join(dir, 'o.onnx');
  expectError(() => saveModel(m, out, { externalData: true, location: join(dir, 'abs.bin') }), /is absolute/, out);
  expectError(() => saveModel(m, out, { externalData: true, location: '../o.bin' }), /leaves the model's folder/, out);
  expectError(() => saveModel(m, out, { externalData: true, location: 'o.onnx' }), /is the model file itself/, 'o.onnx');
}));

test('writing: tensors at or above the threshold go to an aligned data file; the model loads back equal', inDir((dir) => {
  const m = mlpModel();
  const path = join(dir, 'model.onnx');
  const r = saveModel(m, path, { externalData: true, threshold: 1200 });
  assert.equal(r.externalData?.dataFile, join(dir, 'model.onnx.data'));
  assert.equal(r.externalData?.tensors, 2); // W: 9600 bytes, b: exactly 1200 bytes
  const onDisk = readModelProto(path, { loadExternal: false });
  const entry = (name: string) => new Map(initializer(onDisk, name).externalData.map((e) => [e.key, e.value]));
  assert.deepEqual(Object.fromEntries(entry('W')), { location: 'model.onnx.data', offset: '0', length: '9600' });
  assert.deepEqual(Object.fromEntries(entry('b')), { location: 'model.onnx.data', offset: String(3 * EXTERNAL_ALIGNMENT), length: '1200' });
  assert.equal(initializer(onDisk, 's').dataLocation, onnx.TensorProto.DataLocation.DEFAULT);
  assert.equal(statSync(join(dir, 'model.onnx.data')).size, 3 * EXTERNAL_ALIGNMENT + 1200);
  assert.equal(modelJson(readModelProto(path)), modelJson(m.toProto()));
  // The caller's model is untouched by the save.
  assert.equal(m.graph.initializers.get('W')!.rawData.length, 9600);
  // Above every tensor's size nothing moves and no data file is written.
  const none = saveModel(m, join(dir, 'inline.onnx'), { externalData: true, threshold: 1e6 });
  assert.equal(none.externalData?.dataFile, null);
}));

test('onnxruntime runs a model saved with external data and gives the inline model\'s outputs exactly', inDir(async (dir) => {
  const m = mlpModel();
  saveModel(m, join(dir, 'inline.onnx'));
  saveModel(m, join(dir, 'external.onnx'), { externalData: true, threshold: 1024, location: 'weights/mlp.bin' });
  assert.ok(statSync(join(dir, 'external.onnx')).size < 1000);
  const x = new ort.Tensor('float32', Float32Array.from({ length: 8 }, (_, i) => (i - 3.5) / 2), [1, 8]);
  const run = async (file: string) => {
    const session = await ort.InferenceSession.create(file);
    const out = (await session.run({ x })).y!;
    return out.data as Float32Array;
  };
  const inline = await run(join(dir, 'inline.onnx'));
  const external = await run(join(dir, 'external.onnx'));
  assert.equal(inline.length, 300);
  assert.ok(inline.some((v) => v > 0));
  assert.deepEqual(external, inline);
}));

test('models over the 2 GiB protobuf limit are written with external data automatically', inDir((dir) => {
  // The decision, at sizes nobody wants to allocate in a test.
  assert.equal(needsExternalData(3 * 2 ** 30), true);
  assert.equal(needsExternalData(PROTOBUF_LIMIT), true);
  assert.equal(needsExternalData(PROTOBUF_LIMIT - 32 * 2 ** 20), true); // the graph needs room too
  assert.equal(needsExternalData(1.5 * 2 ** 30), false);
  assert.equal(needsExternalData(0), false);
  // What the decision is fed: every tensor of the model, raw or typed.
  const m = mlpModel();
  m.graph.addInitializer(int64Tensor('i', [1, 2, 3]));
  const typed = onnx.TensorProto.create({ name: 'f', dims: [4], dataType: onnx.TensorProto.DataType.FLOAT, floatData: [1, 2, 3, 4] });
  m.graph.addInitializer(typed);
  assert.equal(tensorDataBytes(m.toProto()), 9600 + 1200 + 4 + 24 + 16);
  // A tensor that claims 3 GiB (a stub: nothing that large is allocated) tips the decision.
  const big = float32Tensor('W', new Float32Array(4), [4]);
  Object.defineProperty(big.rawData, 'length', { value: 3 * 2 ** 30 });
  const huge = onnx.ModelProto.create({ graph: onnx.GraphProto.create({ initializer: [big] }) });
  assert.equal(needsExternalData(tensorDataBytes(huge)), true);
  // A small model without the option stays inline.
  const r = saveModelProto(mlpModel().toProto(), join(dir, 'small.onnx'));
  assert.equal(r.externalData, null);
  assert.equal(readModelProto(join(dir, 'small.onnx'), { loadExternal: false }).graph!.initializer!.every((t) => t.dataLocation !== EXTERNAL), true);
}));

test('a model whose external data was not loaded cannot be saved elsewhere', inDir((dir) => {
  writeFileSync(join(dir, 'w.bin'), initializer(mlpModel().toProto(), 'W').rawData);
  const path = join(dir, 'model.onnx');
  writeFileSync(path, encodeModel(withExternal('W', { location: 'w.bin' })));
  const unresolved = readModelProto(path, { loadExternal: false });
  mkdirSync(join(dir, 'other'));
  expectError(() => saveModelProto(unresolved, join(dir, 'other', 'copy.onnx')), /still refers to external data that was not loaded/, 'copy.onnx');
  const model = Model.fromProto(readModelProto(path));
  saveModel(model, join(dir, 'other', 'copy.onnx'));
  assert.deepEqual(tensorToFloat32(loadModel(join(dir, 'other', 'copy.onnx')).graph.initializers.get('W')!), tensorToFloat32(initializer(mlpModel().toProto(), 'W')));
  assert.ok(readFileSync(join(dir, 'other', 'copy.onnx')).length > 9600);
}));

test('a symbolic link inside the model folder may not lead out of it (the folder check uses real paths)', inDir((dir) => {
  // What `perturb` once embedded: a link named like a data file, pointing at a file outside.
  const folder = join(dir, 'm');
  mkdirSync(join(folder, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'secret.txt'), Buffer.alloc(9600, 0x41));
  mkdirSync(join(dir, 'elsewhere'));
  writeFileSync(join(dir, 'elsewhere', 'w.bin'), Buffer.alloc(9600));
  symlinkSync(join(dir, 'secret.txt'), join(folder, 'w.bin'));
  symlinkSync('../secret.txt', join(folder, 'relative.bin'));
  symlinkSync(join(dir, 'elsewhere'), join(folder, 'linked-dir'));
  symlinkSync('/etc/passwd', join(folder, 'passwd.bin'));
  const path = join(folder, 'model.onnx');
  for (const location of ['w.bin', 'relative.bin', 'linked-dir/w.bin', 'passwd.bin']) {
    writeFileSync(path, encodeModel(withExternal('W', { location })));
    expectError(() => loadModel(path), /leads outside the model's folder through a symbolic link/, path);
  }
  // A link that stays inside the folder is an ordinary file of the model.
  const reference = mlpModel().toProto();
  writeFileSync(join(folder, 'sub', 'real.bin'), initializer(reference, 'W').rawData);
  symlinkSync(join('sub', 'real.bin'), join(folder, 'alias.bin'));
  writeFileSync(path, encodeModel(withExternal('W', { location: 'alias.bin' })));
  assert.deepEqual(tensorToFloat32(loadModel(path).graph.initializers.get('W')!), tensorToFloat32(initializer(reference, 'W')));
  // A model folder reached through a link is fine: the comparison is between real paths.
  symlinkSync(folder, join(dir, 'via-link'));
  assert.equal(loadModel(join(dir, 'via-link', 'model.onnx')).graph.initializers.get('W')!.rawData.length, 9600);
}));

test('a FIFO as external data location or as the model file fails at once instead of blocking', inDir((dir) => {
  const folder = join(dir, 'm');
  mkdirSync(folder);
  execFileSync('mkfifo', [join(folder, 'w.bin')]);
  execFileSync('mkfifo', [join(folder, 'pipe.onnx')]);
  const path = join(folder, 'model.onnx');
  writeFileSync(path, encodeModel(withExternal('W', { location: 'w.bin' })));
  // In a child process with a timeout: a blocking open would hang this test run otherwise.
  for (const [model, pattern] of [[path, /external data of tensor 'W': 'w.bin' is a FIFO \(named pipe\), not a data file/], [join(folder, 'pipe.onnx'), /pipe.onnx is a FIFO \(named pipe\), not an ONNX model file/]] as const) {
    const started = Date.now();
    const r = runCli(['inspect', model], { timeoutMs: 20_000 });
    assert.ok(Date.now() - started < 20_000, 'inspect returned before the timeout');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  expectError(() => loadModel(path), /is a FIFO/, path);
}));

test('external data of the wrong length for its dims is refused, with or without a length entry', inDir((dir) => {
  const reference = mlpModel().toProto();
  const b = initializer(reference, 'b').rawData;
  writeFileSync(join(dir, 'b.bin'), Buffer.concat([b, Buffer.alloc(4)]));
  const path = join(dir, 'm.onnx');
  const cases: [Record<string, string>, RegExp][] = [
    // No length: reads to the end of the file, 4 bytes more than [300] floats.
    [{ location: 'b.bin' }, /tensor 'b' of float32 \[300\] needs 1200 bytes of data but has 1204 bytes/],
    [{ location: 'b.bin', length: '1196' }, /needs 1200 bytes of data but has 1196 bytes/],
    [{ location: 'b.bin', offset: '8' }, /needs 1200 bytes of data but has 1196 bytes/],
    [{ location: 'b.bin', offset: '8', length: '1200' }, /\(offset 8, length 1200\) lies outside 'b.bin' \(1204 bytes\)/],
    [{ location: 'b.bin', offset: '99999999999999999999', length: '1200' }, /lies outside 'b.bin'/],
  ];
  for (const [entries, pattern] of cases) {
    writeFileSync(path, encodeModel(withExternal('b', entries)));
    expectError(() => loadModel(path), pattern, path);
  }
  writeFileSync(path, encodeModel(withExternal('b', { location: 'b.bin', length: '1200' })));
  assert.deepEqual(tensorToFloat32(loadModel(path).graph.initializers.get('b')!), tensorToFloat32(initializer(reference, 'b')));
}));

test('names and locations from the file with control characters still give one-line errors (found by test/fuzz.test.ts)', inDir((dir) => {
  const path = join(dir, 'm.onnx');
  const p = withExternal('W', { location: 'a\nb.bin' });
  initializer(p, 'W').name = 'W\r\nnext';
  writeFileSync(path, encodeModel(p));
  expectError(() => loadModel(path), /external data file 'a\?b.bin' for tensor 'W\?\?next' not found beside the model \(.*a\?b.bin\)/, path);
  const q = mlpModel().toProto();
  const b = initializer(q, 'b');
  b.name = 'b\u2028';
  b.rawData = b.rawData.subarray(0, 8);
  writeFileSync(path, encodeModel(q));
  expectError(() => loadModel(path), /tensor 'b\?' of float32 \[300\] needs 1200 bytes/, path);
}));
