import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx, type ModelProto } from '../src/graph/onnx.js';
import { Model, Node } from '../src/graph/ir.js';
import {
  MAX_IR_VERSION, convertModelFile, decodeModel, encodeModel, loadModel, readModelProto, saveModel, saveModelProto,
} from '../src/graph/io.js';
import { float32Tensor } from '../src/graph/tensor.js';
import { RpOnnxError } from '../src/errors.js';
import { Random } from '../src/random.js';
import { mlpModel, modelJson, syntheticModel } from './fixtures/synthetic-model.js';
import { TESTDATA, findModels } from './helpers/onnx-testdata.js';


function graphOf(p: ModelProto): onnx.GraphProto {
  return p.graph as onnx.GraphProto;
}


function testDataModels(): string[] {
  assert.ok(existsSync(TESTDATA), `${TESTDATA} is missing: apt-get install libonnx-testdata (the ONNX backend test models)`);
  const models = findModels(TESTDATA);
  assert.ok(models.length > 1000, `only ${models.length} models under ${TESTDATA}: apt-get install --reinstall libonnx-testdata`);
  return models;
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'rp-onnx-io-'));
}

test('every libonnx-testdata model survives decode -> encode -> decode, bytes and message', (t) => {
  const models = testDataModels();
  let sameMessage = 0;
  let sameBytes = 0;
  const differ: string[] = [];
  for (const path of models) {
    const bytes = readFileSync(path);
    const proto = decodeModel(bytes, path);
    const again = encodeModel(proto);
    if (Buffer.compare(Buffer.from(again), bytes) === 0) sameBytes++;
    if (modelJson(decodeModel(again, path)) === modelJson(proto)) sameMessage++;
    else differ.push(path);
  }
  t.diagnostic(`${models.length} models: ${sameMessage} equal messages, ${sameBytes} byte-identical re-encodings`);
  assert.deepEqual(differ, []);
});

test('every libonnx-testdata model survives the IR: Model.fromProto(p).toProto() equals p', (t) => {
  const models = testDataModels();
  const differ: string[] = [];
  for (const path of models) {
    const proto = decodeModel(readFileSync(path), path);
    const expected = modelJson(proto);
    const back = Model.fromProto(decodeModel(readFileSync(path), path)).toProto();
    // Both the object itself and what it encodes to.
    if (modelJson(back) !== expected || modelJson(decodeModel(encodeModel(back))) !== expected) differ.push(path);
  }
  t.diagnostic(`${models.length - differ.length}/${models.length} models equal after the IR round trip`);
  assert.deepEqual(differ, []);
});

test('the IR keeps proto2 presence: explicitly empty strings stay, absent ones stay absent', () => {
  const p = onnx.ModelProto.fromObject({
    irVersion: 8, opsetImport: [{ version: 17 }],
    graph: {
      node: [
        { opType: 'Relu', input: ['x'], output: ['y'], name: '', domain: '' },
        { opType: 'Relu', input: ['y'], output: ['z'] },
      ],
      input: [{ name: 'x' }, {}],
      output: [{ name: 'z', docString: '' }],
    },
  }) as ModelProto;
  const decoded = decodeModel(encodeModel(p));
  const back = Model.fromProto(decoded).toProto();
  assert.equal(modelJson(back), modelJson(decoded));
  const g = back.graph!;
  assert.equal(Object.prototype.hasOwnProperty.call(g, 'name'), false);
  assert.equal(Object.prototype.hasOwnProperty.call(g.node![0], 'domain'), true);
  assert.equal(Object.prototype.hasOwnProperty.call(g.node![1], 'domain'), false);
  assert.equal(Object.prototype.hasOwnProperty.call(g.input![1], 'name'), false);
  // A node created by a pass gets no empty name/domain fields.
  const m = Model.fromProto(decoded);
  m.graph.addNode(new Node({ opType: 'Neg', inputs: ['z'], outputs: ['w'] }));
  const added = graphOf(m.toProto()).node[2]!;
  assert.equal(Object.prototype.hasOwnProperty.call(added, 'domain'), false);
  assert.equal(added.name, 'Neg');
});

test('a synthetic model with every data type, sparse tensors, functions, training info and metadata round-trips', () => {
  const proto = syntheticModel();
  const expected = modelJson(proto);
  // Sanity: the fixture really holds what this test claims to cover.
  const dataTypes = new Set(graphOf(proto).initializer.map((t) => t.dataType));
  const all = Object.values(onnx.TensorProto.DataType).filter((v): v is number => typeof v === 'number' && v !== 0);
  assert.deepEqual([...all].filter((d) => !dataTypes.has(d)), []);
  assert.ok(proto.functions.length === 1 && proto.trainingInfo.length === 1 && graphOf(proto).sparseInitializer.length === 1);

  assert.equal(modelJson(decodeModel(encodeModel(proto))), expected, 'wire round trip');
  const ir = Model.fromProto(decodeModel(encodeModel(proto))).toProto();
  assert.equal(modelJson(ir), expected, 'IR round trip');
  assert.equal(modelJson(Model.fromProto(decodeModel(encodeModel(proto))).clone().toProto()), expected, 'Model.clone');

  const dir = tempDir();
  try {
    saveModelProto(proto, join(dir, 'inline.onnx'));
    assert.equal(modelJson(readModelProto(join(dir, 'inline.onnx'))), expected, 'file round trip');
    const r = saveModel(Model.fromProto(proto), join(dir, 'ext.onnx'), { externalData: true, threshold: 1000 });
    // t_big (8192 B), the If branch initializer (1200 B) and the training initializer (1600 B).
    assert.equal(r.externalData?.tensors, 3);
    const onDisk = readModelProto(join(dir, 'ext.onnx'), { loadExternal: false });
    const external = graphOf(onDisk).initializer.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
    assert.deepEqual(external.map((t) => t.name), ['t_big']);
    assert.equal(onDisk.trainingInfo[0]!.initialization!.initializer![0]!.dataLocation, onnx.TensorProto.DataLocation.EXTERNAL);
    assert.equal(modelJson(readModelProto(join(dir, 'ext.onnx'))), expected, 'external data round trip');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A real model whose file is cut in half. */
function sampleModelPath(): string {
  const path = join(TESTDATA, 'pytorch-converted', 'test_ConvTranspose2d', 'model.onnx');
  assert.ok(existsSync(path), `${path} is missing: apt-get install libonnx-testdata`);
  return path;
}

/** Files that are not usable models, each with what its error must say. */
function corruptInputs(dir: string): { file: string; expect: RegExp }[] {
  const good = readFileSync(sampleModelPath());
  writeFileSync(join(dir, 'empty.onnx'), new Uint8Array(0));
  writeFileSync(join(dir, 'truncated.onnx'), good.subarray(0, Math.floor(good.length / 2)));
  const rng = new Random(42);
  writeFileSync(join(dir, 'random.onnx'), Uint8Array.from({ length: 4096 }, () => rng.int(256)));
  writeFileSync(join(dir, 'tensor.onnx'), onnx.TensorProto.encode(float32Tensor('w', [1, 2, 3, 4, 5, 6], [2, 3])).finish());
  const future = decodeModel(good);
  future.irVersion = MAX_IR_VERSION + 1;
  writeFileSync(join(dir, 'future.onnx'), encodeModel(future));
  mkdirSync(join(dir, 'folder.onnx'));
  return [
    { file: join(dir, 'missing.onnx'), expect: /no such file/ },
    { file: join(dir, 'folder.onnx'), expect: /is a directory/ },
    { file: join(dir, 'empty.onnx'), expect: /is empty/ },
    { file: join(dir, 'truncated.onnx'), expect: /not a valid ONNX model \(truncated or corrupt/ },
    { file: join(dir, 'random.onnx'), expect: /is not (a valid |an )ONNX model/ },
    { file: join(dir, 'tensor.onnx'), expect: /is not (a valid |an )ONNX model/ },
    { file: join(dir, 'future.onnx'), expect: new RegExp(`IR version ${MAX_IR_VERSION + 1}; rp-onnx reads up to ${MAX_IR_VERSION}`) },
  ];
}

test('corrupt or missing model files fail with one RpOnnxError line naming the file', () => {
  const dir = tempDir();
  try {
    for (const { file, expect } of corruptInputs(dir)) {
      for (const load of [() => loadModel(file), () => convertModelFile(file, join(dir, 'out.onnx'))]) {
        assert.throws(load, (e: unknown) => {
          assert.ok(e instanceof RpOnnxError, `${file}: ${String(e)}`);
          assert.ok(e.message.includes(file), `message names the file: ${e.message}`);
          assert.match(e.message, expect);
          assert.ok(!e.message.includes('\n'), 'one line');
          return true;
        });
      }
    }
    assert.equal(existsSync(join(dir, 'out.onnx')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface CliResult { code: number | null; stdout: string; stderr: string }

function runCli(args: string[]): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: join(import.meta.dirname, '..') });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

function assertCliError(r: CliResult, expect: RegExp, what: string): void {
  assert.notEqual(r.code, 0, `${what}: exit code`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^error: /, what);
  assert.match(lines[0]!, expect, what);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
}

test('rp-onnx convert: corrupt inputs exit non-zero with one error line and no stack trace', async () => {
  const dir = tempDir();
  try {
    const cases = corruptInputs(dir);
    const results = await Promise.all(cases.map((c) => runCli(['convert', c.file, '-o', join(dir, 'out.onnx')])));
    cases.forEach((c, i) => assertCliError(results[i]!, c.expect, c.file));
    assert.equal(existsSync(join(dir, 'out.onnx')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rp-onnx convert re-saves losslessly, to external data and back inline, and guards its outputs', async () => {
  const dir = tempDir();
  try {
    const src = join(dir, 'model.onnx');
    saveModel(mlpModel(), src);
    const original = modelJson(readModelProto(src));
    const inline = join(dir, 'copy.onnx');
    const ext = join(dir, 'ext.onnx');
    const back = join(dir, 'back.onnx');

    const r1 = await runCli(['convert', src, '-o', inline]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.deepEqual(readFileSync(inline), readFileSync(src)); // an inline model re-saves byte for byte

    const r2 = await runCli(['convert', src, '-o', ext, '--external-data', '--threshold', '1024', '--location', 'weights/ext.bin', '--json']);
    assert.equal(r2.code, 0, r2.stderr);
    const summary = JSON.parse(r2.stdout) as { externalData: { tensors: number; bytes: number; location: string } };
    assert.equal(summary.externalData.tensors, 2); // W (9600 B) and b (1200 B); s stays inline
    assert.equal(summary.externalData.location, 'weights/ext.bin');
    assert.ok(existsSync(join(dir, 'weights', 'ext.bin')));
    assert.ok(statSync(ext).size < 1000);
    assert.equal(modelJson(readModelProto(ext)), original);

    // Converted without --external-data, a model with external data is written inline.
    const r3 = await runCli(['convert', ext, '-o', back]);
    assert.equal(r3.code, 0, r3.stderr);
    const backOnDisk = readModelProto(back, { loadExternal: false });
    assert.ok(graphOf(backOnDisk).initializer.every((t) => t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL && (t.externalData ?? []).length === 0));
    assert.equal(modelJson(backOnDisk), original);
    assert.deepEqual(readFileSync(back), readFileSync(src));

    // Never the input, never an existing output without --force.
    const before = readFileSync(src);
    assertCliError(await runCli(['convert', src, '-o', src, '--force']), /refusing to overwrite the input/, 'output = input');
    assertCliError(await runCli(['convert', src, '-o', inline]), /already exists: pass --force/, 'existing output');
    assertCliError(await runCli(['convert', ext, '-o', join(dir, 'x.onnx'), '--external-data', '--location', 'weights/ext.bin']), /belongs to the input/, 'input data file');
    assertCliError(await runCli(['convert', src, '-o', join(dir, 'y.onnx'), '--external-data', '--location', '../escape.bin']), /leaves the model's folder/, 'escaping location');
    // A link beside the model that names the input's data file is the same file: refused too,
    // as output (with --force) and as the new data file's location.
    symlinkSync(join('weights', 'ext.bin'), join(dir, 'alias.bin'));
    assertCliError(await runCli(['convert', ext, '-o', join(dir, 'alias.bin'), '--force']), /external data file of/, 'output = a link to the input data file');
    assertCliError(await runCli(['convert', ext, '-o', join(dir, 'z.onnx'), '--external-data', '--location', 'alias.bin', '--force']), /belongs to the input/, 'location = a link to the input data file');
    assert.equal(modelJson(readModelProto(ext)), original);
    assert.deepEqual(readFileSync(src), before);
    const r4 = await runCli(['convert', src, '-o', inline, '--force', '--json']);
    assert.equal(r4.code, 0, r4.stderr);
    assert.equal((JSON.parse(r4.stdout) as { externalData: unknown }).externalData, null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The MLP with tensor `name` edited by `edit`, written to `dir/<file>`. */
function mlpWith(dir: string, file: string, name: string, edit: (t: onnx.TensorProto) => void): string {
  const p = mlpModel().toProto();
  const t = graphOf(p).initializer.find((x) => x.name === name) as onnx.TensorProto;
  edit(t);
  const path = join(dir, file);
  writeFileSync(path, encodeModel(p));
  return path;
}

test('initializer data that does not match its dims and type is refused at load, naming the tensor and both sizes', () => {
  const dir = tempDir();
  try {
    const floats = (t: onnx.TensorProto) => Array.from(new Float32Array(t.rawData.slice().buffer));
    const cases: [string, string, (t: onnx.TensorProto) => void, RegExp][] = [
      ['short-raw.onnx', 'W', (t) => { t.rawData = t.rawData.subarray(0, 9596); }, /tensor 'W' of float32 \[8, 300\] needs 9600 bytes of data but has 9596 bytes of raw_data/],
      ['long-raw.onnx', 'b', (t) => { t.rawData = new Uint8Array(1204); }, /tensor 'b' of float32 \[300\] needs 1200 bytes of data but has 1204 bytes/],
      ['float-data.onnx', 'b', (t) => { t.floatData = floats(t).slice(0, 299); t.rawData = new Uint8Array(0); }, /tensor 'b' of float32 \[300\] needs 300 values in float_data but has 299/],
      ['no-data.onnx', 's', (t) => { t.rawData = new Uint8Array(0); }, /tensor 's' of float32 \[1\] has no data \(1 elements expected\)/],
      ['dims.onnx', 'W', (t) => { t.dims = [8, 301]; }, /tensor 'W' of float32 \[8, 301\] needs 9632 bytes/],
      ['negative.onnx', 'b', (t) => { t.dims = [-300]; }, /tensor 'b' has dims \[-300\]; every dim must be a non-negative integer/],
      ['dtype.onnx', 'b', (t) => { t.dataType = 99; }, /tensor 'b' has unknown data type 99/],
      ['int64.onnx', 'b', (t) => { t.dataType = onnx.TensorProto.DataType.INT64; }, /tensor 'b' of int64 \[300\] needs 2400 bytes/],
    ];
    for (const [file, name, edit, expect] of cases) {
      const path = mlpWith(dir, file, name, edit);
      assert.throws(() => loadModel(path), (e: unknown) => {
        assert.ok(e instanceof RpOnnxError, `${file}: ${String(e)}`);
        assert.match(e.message, expect);
        assert.ok(e.message.startsWith(`${path}: `), e.message);
        assert.ok(!e.message.includes('\n'));
        return true;
      });
    }
    // The untouched model and a float_data model of the right length still load.
    assert.equal(loadModel(mlpWith(dir, 'typed.onnx', 'b', (t) => { t.floatData = floats(t); t.rawData = new Uint8Array(0); })).graph.initializers.get('b')!.floatData.length, 300);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('inspect and perturb refuse a model whose weights are truncated, and write nothing', async () => {
  const dir = tempDir();
  try {
    const p = readModelProto('test/fixtures/cifar-resnet8-optA-concat-op13.onnx');
    const conv = graphOf(p).initializer.find((t) => (t.rawData?.length ?? 0) > 1000) as onnx.TensorProto;
    conv.rawData = conv.rawData.subarray(0, conv.rawData.length - 4);
    const path = join(dir, 'short.onnx');
    writeFileSync(path, encodeModel(p));
    const out = join(dir, 'out.onnx');
    const [inspect, perturb] = await Promise.all([runCli(['inspect', path]), runCli(['perturb', path, '--gamma', '0.1', '-o', out])]);
    assertCliError(inspect, new RegExp(`tensor '${conv.name}' of float32 .* but has \\d+ bytes of raw_data`), 'inspect');
    assertCliError(perturb, /bytes of raw_data; the file is truncated or corrupt/, 'perturb');
    assert.equal(existsSync(out), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
