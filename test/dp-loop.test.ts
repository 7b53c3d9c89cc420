/**
 * DP-SGD as a step of the one training loop (src/train/fit.ts), end to end through the CLI on a
 * small softmax-regression model: resume replays an uninterrupted run (same epsilon and steps;
 * bit-identical weights when seeded), Poisson sampling divides by the expected batch size and
 * survives empty batches, a target epsilon is never exceeded, DP flags without --dp are refused,
 * seeded noise is never called private, and the metadata holds enough to recompute epsilon.
 * References: the RDP accountant's closed segments (src/privacy/rdp.ts epsilon, not the loop's
 * ledger), per-example gradients of the ordinary training graph, and hand-written values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { saveLinearModel } from './helpers/linear-model.js';
import { loadModel } from '../src/graph/io.js';
import { tensorToFloat32 } from '../src/graph/tensor.js';
import { epsilon } from '../src/privacy/rdp.js';
import { createAccountant } from '../src/privacy/accountants/registry.js';
import { Trainer } from '../src/train/trainer.js';
import { loadDefaultDataset, subset } from '../src/data/index.js';
import { fit } from '../src/train/fit.js';
import { PrivateStep } from '../src/train/dp/dp-sgd.js';
import { defaultDelta } from '../src/train/dp/defaults.js';

const dir = mkdtempSync(join(tmpdir(), 'rp-dploop-'));
const model = join(dir, 'lin.onnx');
saveLinearModel(model);
const base = ['--limit', '64', '--threads', '1', '--json', '--schedule', 'constant'];
const train = (args: string[]) => runCli(['train', model, ...base, ...args]);

interface Summary {
  steps: number;
  emptySteps: number;
  examplesUsed: number;
  privacy: { epsilon: number | null; statement: string; private: boolean; accountant: string; delta: number };
}
const summary = (r: { stdout: string }) => JSON.parse(r.stdout) as Summary;
const meta = (path: string, key: string) => JSON.parse(loadModel(path).getMetadata(key)!) as Record<string, any>;

function weights(path: string): Float32Array[] {
  const m = loadModel(path);
  return ['fc.w', 'fc.b'].map((k) => tensorToFloat32(m.graph.initializers.get(k)!));
}

test('default delta: the largest power of ten <= 0.1/N (hand values)', () => {
  assert.equal(defaultDelta(64), 1e-3);
  assert.equal(defaultDelta(60000), 1e-6);
  assert.equal(defaultDelta(100000), 1e-6);
  assert.equal(defaultDelta(1000), 1e-4);
  assert.equal(defaultDelta(999), 1e-4);
  assert.equal(defaultDelta(1001), 1e-5);
  assert.equal(defaultDelta(10), 1e-2);
});

test('DP: 2 epochs + --resume to 4 spend the same epsilon and steps as one 4-epoch run; seeded runs replay bit for bit', { timeout: 300_000 }, () => {
  const dp = ['--dp', '--noise-multiplier', '1.1', '--batch', '16', '--accountant', 'rdp'];
  const ck = join(dir, 'ck');
  const a = train([...dp, '--epochs', '2', '--checkpoint-dir', ck, '-o', join(dir, 'a2.onnx')]);
  assert.equal(a.status, 0, a.stderr);
  const b = train([...dp, '--epochs', '4', '--checkpoint-dir', ck, '--resume', '-o', join(dir, 'a4.onnx')]);
  assert.equal(b.status, 0, b.stderr);
  const c = train([...dp, '--epochs', '4', '-o', join(dir, 'c4.onnx')]);
  assert.equal(c.status, 0, c.stderr);
  // Poisson: q = 16/64, an epoch is 1/q = 4 steps.
  assert.equal(summary(a).steps, 8);
  assert.equal(summary(b).steps, 16);
  assert.equal(summary(c).steps, 16);
  const ref = epsilon([{ sampleRate: 0.25, noiseMultiplier: 1.1, steps: 16 }], 1e-3);
  assert.ok(Math.abs(summary(b).privacy.epsilon! - ref) < 1e-9, `resumed ${summary(b).privacy.epsilon} vs ${ref}`);
  assert.equal(summary(b).privacy.epsilon, summary(c).privacy.epsilon);
  // Resuming under other accounting settings (another batch size, so another q) is refused.
  const other = train(['--dp', '--noise-multiplier', '1.1', '--batch', '8', '--epochs', '4', '--checkpoint-dir', ck, '--resume', '-o', join(dir, 'never.onnx')]);
  assert.notEqual(other.status, 0);
  assert.match(other.stderr, /^error: checkpoint: the run was accounted with sampleRate 0\.25, this one has 0\.125/);
  assert.ok(summary(a).privacy.epsilon! < ref);
  // The statement names the accountant, sampling, adjacency and the default delta (0.1/N -> 1e-3).
  assert.match(summary(b).privacy.statement, /\(\d+\.\d+, 0\.001\)-DP/);
  assert.match(summary(b).privacy.statement, /RDP of the subsampled Gaussian/);
  assert.match(summary(b).privacy.statement, /Poisson sampling/);
  assert.match(summary(b).privacy.statement, /adding or removing one training example/);

  // Seeded noise and sampling: the resumed run is the uninterrupted one, bit for bit.
  const seeded = ['--dp', '--noise-multiplier', '1.1', '--batch', '16', '--no-secure-rng', '--dp-seed', '9'];
  const ck2 = join(dir, 'ck2');
  assert.equal(train([...seeded, '--epochs', '2', '--checkpoint-dir', ck2, '-o', join(dir, 's2.onnx')]).status, 0);
  const sr = train([...seeded, '--epochs', '4', '--checkpoint-dir', ck2, '--resume', '-o', join(dir, 's4.onnx')]);
  assert.equal(sr.status, 0, sr.stderr);
  assert.equal(train([...seeded, '--epochs', '4', '-o', join(dir, 'u4.onnx')]).status, 0);
  const [w1, w2] = [weights(join(dir, 's4.onnx')), weights(join(dir, 'u4.onnx'))];
  assert.deepEqual(w1, w2);
  assert.notDeepEqual(w1, weights(model));
});

test('seeded noise is NOT private: statement and metadata say so, epsilon null', () => {
  const out = join(dir, 'seeded.onnx');
  const r = train(['--dp', '--noise-multiplier', '1', '--batch', '16', '--steps', '2', '--no-secure-rng', '--dp-seed', '3', '-o', out]);
  assert.equal(r.status, 0, r.stderr);
  const s = summary(r);
  assert.equal(s.privacy.epsilon, null);
  assert.equal(s.privacy.private, false);
  assert.match(s.privacy.statement, /^NOT private/);
  assert.doesNotMatch(s.privacy.statement, /-DP/);
  const m = meta(out, 'rp-onnx.privacy');
  assert.equal(m.epsilon, null);
  assert.equal(m.private, false);
  assert.equal(m.noise.source, 'seeded');
});

test('any DP flag without --dp is refused; --seed under --dp is refused (one line)', () => {
  for (const extra of [['--target-epsilon', '3'], ['--noise-multiplier', '1'], ['--norm-fix', 'freeze'], ['--no-secure-rng'], ['--accountant', 'rdp'], ['--delta', '1e-5'], ['--sampling', 'poisson'], ['--max-grad-norm', '1']]) {
    const r = train(['--steps', '1', ...extra, '-o', join(dir, 'never.onnx')]);
    assert.notEqual(r.status, 0, extra.join(' '));
    assert.match(r.stderr.trim(), new RegExp(`^error: ${extra[0]} is a DP-SGD option: add --dp`));
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
  const s = train(['--dp', '--noise-multiplier', '1', '--seed', '3', '--steps', '1', '-o', join(dir, 'never.onnx')]);
  assert.notEqual(s.status, 0);
  assert.match(s.stderr, /^error: --seed with --dp/);
  const acc = train(['--dp', '--noise-multiplier', '1', '--accountant', 'moments', '--steps', '1', '-o', join(dir, 'never.onnx')]);
  assert.notEqual(acc.status, 0);
  assert.ok(!readdirSync(dir).includes('never.onnx'));
});

test('a target epsilon is never exceeded: with a given sigma, and with a linear schedule under shuffle sampling', { timeout: 300_000 }, () => {
  // Given sigma 1.5 and a budget (about 7 steps at q 1/4): training stops before the step that would exceed it.
  const r = train(['--dp', '--noise-multiplier', '1.5', '--target-epsilon', '2', '--batch', '16', '--epochs', '10', '--accountant', 'rdp', '-o', join(dir, 'b.onnx')]);
  assert.equal(r.status, 0, r.stderr);
  const s = summary(r);
  const at = (steps: number) => epsilon([{ sampleRate: 0.25, noiseMultiplier: 1.5, steps }], 1e-3);
  assert.ok(s.steps < 40 && s.steps > 0);
  assert.ok(s.privacy.epsilon! <= 2 && at(s.steps) <= 2, `epsilon ${s.privacy.epsilon}`);
  assert.ok(at(s.steps + 1) > 2, 'it stopped only when the next step would exceed the budget');
  // The case: N = 1000, B = 100, linear schedule, target 3 (planning used to overshoot).
  for (const steps of ['25', '35']) {
    const l = runCli(['train', model, '--threads', '1', '--json', '--limit', '1000', '--batch', '100', '--dp', '--sampling', 'shuffle', '--noise-schedule', 'linear',
      '--target-epsilon', '3', '--steps', steps, '--schedule', 'constant', '-o', join(dir, `l${steps}.onnx`)]);
    assert.equal(l.status, 0, l.stderr);
    const eps = summary(l).privacy.epsilon!;
    assert.ok(eps <= 3, `steps ${steps}: epsilon ${eps} exceeds the target 3`);
  }
});

test('Poisson sampling end to end: the sum is divided by the expected batch size, empty batches still step', { timeout: 300_000 }, async () => {
  const C = 0.5;
  const out = join(dir, 'p1.onnx');
  const r = train(['--dp', '--noise-multiplier', '0', '--max-grad-norm', String(C), '--batch', '8', '--steps', '1', '--lr', '1', '--momentum', '0',
    '--weight-decay', '0', '--no-secure-rng', '--dp-seed', '5', '-o', out]);
  assert.equal(r.status, 0, r.stderr);
  // Which examples the step used, from the training record's bitmap.
  const rec = meta(out, 'rp-onnx.training');
  const bits = Buffer.from(rec.examplesUsedBitmap as string, 'base64');
  const members = Array.from({ length: 64 }, (_, i) => i).filter((i) => (bits[i >> 3]! >> (i & 7)) & 1);
  assert.equal(rec.examplesUsed, members.length);
  assert.notEqual(members.length, 8, 'the drawn batch must differ from the expected size for the divisor to be tested');
  // Reference: each member's own gradient from the ordinary training graph, clipped, summed, / (qN = 8).
  const ds = loadDefaultDataset('train');
  const t = await Trainer.create(loadModel(model), { optimizer: 'sgd', threads: 1 });
  const expected = [new Float64Array(7840), new Float64Array(10)];
  for (const i of members) {
    const o = await t.forwardBackward(ds.images.slice(i * 784, (i + 1) * 784), ds.labels.slice(i, i + 1), 1);
    const g = t.training.params.map((p) => o[p.gradient]!.data as Float32Array);
    const norm = Math.sqrt(g.reduce((s, v) => s + v.reduce((a, x) => a + x * x, 0), 0));
    const f = Math.min(1, C / (norm + 1e-6));
    const order = t.training.params.map((p) => p.name);
    g.forEach((v, k) => { const e = expected[order[k] === 'fc.w' ? 0 : 1]!; v.forEach((x, j) => { e[j]! += (f * x) / 8; }); });
  }
  await t.release();
  const [w0, w1] = [weights(model), weights(out)];
  for (let k = 0; k < 2; k++) {
    const e = expected[k]!;
    const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    for (let j = 0; j < e.length; j++) assert.ok(Math.abs(w0[k]![j]! - w1[k]![j]! - e[j]!) <= 1e-4 * scale + 1e-7, `param ${k}[${j}]`);
  }

  // q = 1/64: about a third of the steps draw an empty batch; they still count and release noise.
  const e = train(['--dp', '--noise-multiplier', '1', '--batch', '1', '--steps', '12', '--no-secure-rng', '--dp-seed', '2', '-o', join(dir, 'empty.onnx')]);
  assert.equal(e.status, 0, e.stderr);
  assert.ok(summary(e).emptySteps > 0, 'some batches were empty');
  assert.equal(summary(e).steps, 12);
  assert.ok(summary(e).examplesUsed <= 12 - summary(e).emptySteps + 3);
  const pm = meta(join(dir, 'empty.onnx'), 'rp-onnx.privacy');
  assert.equal(pm.steps, 12);
});

test('metadata: rp-onnx.privacy recomputes epsilon; rp-onnx.training records the recipe and the examples used, no private training loss', () => {
  const out = join(dir, 'm.onnx');
  const r = train(['--dp', '--noise-multiplier', '1.3', '--batch', '8', '--steps', '5', '-o', out]);
  assert.equal(r.status, 0, r.stderr);
  const p = meta(out, 'rp-onnx.privacy');
  for (const k of ['accountant', 'epsilon', 'delta', 'sampleRate', 'steps', 'sampling', 'adjacency', 'clipping', 'noise']) assert.ok(k in p, k);
  assert.equal(p.adjacency, 'add-remove');
  assert.equal(p.accountant, 'prv');
  // Recompute from the record alone: every step's sigma at rate q, composed by the named
  // accountant (whose own correctness test/prv.test.ts checks against published values).
  const steps = (p.noise.steps as ({ sigma: number; steps: number } | 'end')[]).filter((x) => x !== 'end') as { sigma: number; steps: number }[];
  const acc = createAccountant(p.accountant as string);
  for (const x of steps) acc.step({ sampleRate: p.sampleRate as number, noiseMultiplier: x.sigma }, x.steps);
  assert.ok(Math.abs(acc.epsilon(p.delta as number) - (p.epsilon as number)) < 1e-9);
  // PRV's upper bound stays below RDP's on the same record.
  assert.ok((p.epsilon as number) <= epsilon(steps.map((x) => ({ sampleRate: p.sampleRate as number, noiseMultiplier: x.sigma, steps: x.steps })), p.delta as number));
  assert.equal(p.sampleRate, 8 / 64);
  const t = meta(out, 'rp-onnx.training');
  assert.equal(t.steps, 5);
  assert.equal(t.recipe.steps, 5);
  assert.equal(t.recipe.batchSize, 8);
  assert.ok(t.examplesUsed <= 64 && t.examplesUsed > 0);
  assert.ok(!JSON.stringify(t).includes('trainLoss') && !JSON.stringify(p).includes('trainLoss'));
  // Plain: --steps 2 --batch 8 on 64 examples used 16 of them.
  const plain = join(dir, 'plain.onnx');
  assert.equal(train(['--steps', '2', '--batch', '8', '-o', plain]).status, 0);
  const pt = meta(plain, 'rp-onnx.training');
  assert.equal(pt.examplesUsed, 16);
  assert.equal(pt.examples, 64);
  const bits = Buffer.from(pt.examplesUsedBitmap as string, 'base64');
  assert.equal([...bits].reduce((s, b) => s + b.toString(2).split('1').length - 1, 0), 16);
  assert.equal(pt.recipe.limit, 64);
});

test('checkpoints: a file as --checkpoint-dir, a corrupt checkpoint, --resume with none, a used folder without --force: one-line errors', () => {
  const file = join(dir, 'afile');
  writeFileSync(file, 'x');
  const oneLine = (r: { status: number; stderr: string }, re: RegExp) => {
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, re);
  };
  for (const dp of [[], ['--dp', '--noise-multiplier', '1']]) {
    oneLine(train([...dp, '--steps', '1', '--batch', '16', '--checkpoint-dir', file, '-o', join(dir, 'n.onnx')]), /is a file/);
    const empty = join(dir, `empty${dp.length}`);
    mkdirSync(empty);
    oneLine(train([...dp, '--steps', '1', '--batch', '16', '--checkpoint-dir', empty, '--resume', '-o', join(dir, 'n.onnx')]), /holds no checkpoint/);
    const used = join(dir, `used${dp.length}`);
    assert.equal(train([...dp, '--epochs', '1', '--batch', '32', '--checkpoint-dir', used, '-o', join(dir, `u${dp.length}.onnx`)]).status, 0);
    oneLine(train([...dp, '--epochs', '1', '--batch', '32', '--checkpoint-dir', used, '-o', join(dir, 'n.onnx')]), /already holds checkpoints/);
    assert.equal(train([...dp, '--epochs', '1', '--batch', '32', '--checkpoint-dir', used, '--force', '-o', join(dir, `u${dp.length}.onnx`)]).status, 0);
    writeFileSync(join(used, 'epoch-1.json'), '{"epoch": 1, "step":');
    oneLine(train([...dp, '--epochs', '2', '--batch', '32', '--checkpoint-dir', used, '--resume', '-o', join(dir, 'n.onnx')]), /checkpoint .*epoch-1\.json is corrupt/);
  }
  assert.ok(!readdirSync(dir).includes('n.onnx'));
});

test('under DP the one loop evaluates every N steps and stops on a non-finite loss (library)', { timeout: 120_000 }, async () => {
  const all = loadDefaultDataset('train');
  const trainSet = subset(all, Array.from({ length: 64 }, (_, i) => i));
  const testSet = subset(loadDefaultDataset('test'), Array.from({ length: 50 }, (_, i) => i));
  const dp = {
    maxGradNorm: 1, delta: 1e-3, noiseMultiplier: 0, noiseSchedule: 'constant' as const, noiseEndRatio: 0.5, sampling: 'poisson' as const,
    clip: 'constant' as const, clipQuantile: 0.5, clipLearningRate: 0.2, noise: 'gaussian' as const, secureRng: false, seed: 4,
  };
  const evals: number[] = [];
  const r = await fit(loadModel(model), trainSet, testSet, {
    optimizer: 'sgd', batchSize: 16, lr: 0.1, steps: 6, evalEvery: 2, threads: 1,
    strategy: new PrivateStep({ dp, batchSize: 16, examples: 64 }),
    onProgress: (p) => { if (p.evaluation) evals.push(p.step); },
  });
  assert.equal(r.steps, 6);
  assert.deepEqual(evals, [2, 4, 2]);
  await assert.rejects(fit(loadModel(model), trainSet, undefined, {
    optimizer: 'sgd', batchSize: 16, lr: 1e38, momentum: 0, steps: 8, threads: 1,
    strategy: new PrivateStep({ dp, batchSize: 16, examples: 64 }),
  }), /training diverged at step \d+/);
});
