/**
 * `rp-onnx inspect` and summarizeModel, checked against what the onnx Python package reported
 * for the same files when scripts/dev/export-fixtures.py wrote them (test/fixtures/expected.json).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadModel, saveModel } from '../src/graph/io.js';
import { perturbModel } from '../src/passes/perturb.js';
import { summarizeModel, type ModelSummary } from '../src/graph/model-summary.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

type Reference = Omit<ModelSummary, 'residualBlocks' | 'recorded' | 'perturbationConstants'>;
interface ExpectedFixture { residualBlocks: number; summary: Reference; blocks: { add: string; skip: string; branch: string; skipKind: string }[] }
const expected = JSON.parse(readFileSync(`${FIXTURES}expected.json`, 'utf8')) as { fixtures: Record<string, ExpectedFixture> };

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertMatchesReference(got: ModelSummary, ref: ExpectedFixture, name: string): void {
  assert.equal(got.irVersion, ref.summary.irVersion, name);
  assert.deepEqual(got.opsets, ref.summary.opsets, name);
  assert.equal(got.producer, ref.summary.producer, name);
  assert.deepEqual(got.inputs, ref.summary.inputs, name);
  assert.deepEqual(got.outputs, ref.summary.outputs, name);
  assert.equal(got.parameters, ref.summary.parameters, name);
  assert.deepEqual(got.ops, ref.summary.ops, name);
  assert.equal(got.residualBlocks.length, ref.residualBlocks, name);
}

test('summarizeModel agrees with the onnx package on every fixture (versions, I/O, parameters, op histogram)', () => {
  for (const [name, ref] of Object.entries(expected.fixtures)) {
    assertMatchesReference(summarizeModel(loadModel(`${FIXTURES}${name}.onnx`)), ref, name);
  }
});

test('inspect --json prints exactly one object with the documented keys', () => {
  const name = 'resnet18-bn-op13';
  const r = cli('inspect', `test/fixtures/${name}.onnx`, '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as ModelSummary;
  assert.deepEqual(Object.keys(out), ['irVersion', 'opsets', 'producer', 'inputs', 'outputs', 'parameters', 'perturbationConstants', 'ops', 'residualBlocks', 'recorded']);
  assert.equal(out.perturbationConstants, 0);
  assert.deepEqual(out.recorded, { version: null, perturbation: null, privacy: null, training: null, unreadable: [] });
  const ref = expected.fixtures[name]!;
  assertMatchesReference(out, ref, name);
  assert.deepEqual(out.opsets, { 'ai.onnx': 13 });
  assert.equal(out.producer, 'pytorch 1.13.0');
  for (const b of out.residualBlocks) {
    for (const k of ['add', 'branch', 'skip', 'skipKind', 'branchOps', 'shape']) assert.ok(k in b, k);
  }
  const pick = (b: { add: string; skip: string; branch: string; skipKind: string }) => [b.add, b.skip, b.branch, b.skipKind].join(' ');
  assert.deepEqual(out.residualBlocks.map(pick).sort(), ref.blocks.map(pick).sort());
  assert.deepEqual(out.residualBlocks[2]!.shape, [1, 16, 8, 8]);
});

test('inspect --json on a transformer: int64 and float inputs with symbolic dims, 4 residual blocks', () => {
  const name = 'hand-transformer-postnorm-op13';
  const r = cli('inspect', `test/fixtures/${name}.onnx`, '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as ModelSummary;
  assertMatchesReference(out, expected.fixtures[name]!, name);
  assert.deepEqual(out.inputs, [
    { name: 'ids', dtype: 'int64', shape: ['batch', 'seq'] },
    { name: 'pad_mask', dtype: 'float32', shape: ['batch', 'seq'] },
  ]);
  assert.ok(out.residualBlocks.every((b) => b.skipKind === 'identity' && b.branchOps.includes('MatMul')));
});

test('inspect prints a readable summary with the residual-block table', () => {
  const r = cli('inspect', 'test/fixtures/mobilenetv2-op13.onnx');
  assert.equal(r.code, 0, r.stderr);
  const ref = expected.fixtures['mobilenetv2-op13']!.summary;
  assert.match(r.stdout, /^IR version {2}7$/m);
  assert.match(r.stdout, /^opsets {6}ai\.onnx 13$/m);
  assert.match(r.stdout, /^producer {4}pytorch 1\.13\.0$/m);
  assert.match(r.stdout, /^ {2}input {2}float32 {3}\[batch, 3, 64, 64\]$/m);
  assert.ok(r.stdout.includes(`parameters  ${ref.parameters.toLocaleString('en-US')} (`));
  assert.match(r.stdout, /^residual blocks {2}10$/m);
  assert.equal(r.stdout.match(/branch .*: Conv Clip Conv Clip Conv$/gm)?.length, 10);
});

test('inspect errors are one line naming the file', () => {
  const missing = cli('inspect', 'test/fixtures/no-such-model.onnx');
  assert.equal(missing.code, 2);
  assert.equal(missing.stdout, '');
  assert.equal(missing.stderr, 'error: test/fixtures/no-such-model.onnx: no such file\n');
  const notOnnx = cli('inspect', 'test/fixtures/expected.json', '--json');
  assert.equal(notOnnx.code, 2);
  assert.match(notOnnx.stderr, /^error: test\/fixtures\/expected\.json is not (a valid |an )ONNX model.*\n$/);
  assert.equal(notOnnx.stderr.split('\n').length, 2);
});

test('inspect shows what rp-onnx recorded: perturbation with gamma per block, privacy statement, training record', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-onnx-inspect-'));
  try {
    const name = 'cifar-resnet8-optA-concat-op13';
    const { model: perturbed } = perturbModel(loadModel(`${FIXTURES}${name}.onnx`), { gamma: [0.1, 0.25, 0.5], strategy: 'II', scale: 'std', toolVersion: '9.9.9' });
    const statement = 'DP-SGD (add-remove adjacency, Poisson sampling q = 0.032): (2.5, 1e-05)-DP by the PRV accountant';
    perturbed.setMetadata('rp-onnx.privacy', JSON.stringify({ mechanism: 'dp-sgd', epsilon: 2.5, delta: 1e-5, accountant: 'prv', statement }));
    perturbed.setMetadata('rp-onnx.training', JSON.stringify({ data: 'data/cifar', examples: 4000, steps: 125, epochs: 4, recipe: { batchSize: 128 }, finalTestAccuracy: 0.8125 }));
    const path = join(dir, 'p.onnx');
    saveModel(perturbed, path);

    const json = cli('inspect', path, '--json');
    assert.equal(json.code, 0, json.stderr);
    const out = JSON.parse(json.stdout) as ModelSummary;
    // The gamma constants are not parameters: the count is what Python's onnx reported for the original.
    assert.equal(out.parameters, expected.fixtures[name]!.summary.parameters);
    assert.ok(out.perturbationConstants >= 3, String(out.perturbationConstants));
    assert.equal(out.recorded.version, '9.9.9');
    assert.equal(out.recorded.perturbation?.strategy, 'II');
    assert.equal(out.recorded.perturbation?.scale, 'std');
    assert.deepEqual(out.recorded.perturbation?.blocks.map((b) => b.gamma), [0.1, 0.25, 0.5]);
    assert.equal(out.recorded.privacy?.statement, statement);
    assert.equal(out.recorded.training?.examples, 4000);

    const text = cli('inspect', path);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^rp-onnx {5}version 9\.9\.9$/m);
    assert.match(text.stdout, /^perturbation {2}strategy II, scale std, no seed \(fresh noise\), 3 blocks$/m);
    assert.match(text.stdout, /^ {2}1 {2}\/layer2\/layer2\.0\/Add {2}0\.25$/m);
    assert.ok(text.stdout.includes(`privacy     ${statement}\n`));
    assert.match(text.stdout, /^training {4}data data\/cifar, 4000 examples, 125 steps, 4 epochs, final test accuracy 81\.25%$/m);
    assert.match(text.stdout, /left out: \d+ elements of the perturbation's gamma constants/);

    // Hand-edited metadata does not break inspect: it is reported as unreadable.
    const edited = loadModel(path);
    edited.setMetadata('rp-onnx.training', '{not json');
    edited.setMetadata('rp-onnx.perturbation', '{"blocks": 3}');
    saveModel(edited, join(dir, 'e.onnx'));
    const e = cli('inspect', join(dir, 'e.onnx'));
    assert.equal(e.code, 0, e.stderr);
    assert.match(e.stdout, /^unreadable {2}rp-onnx\.perturbation, rp-onnx\.training \(not the JSON rp-onnx writes/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
