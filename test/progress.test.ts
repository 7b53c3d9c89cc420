/**
 * Progress lines and their ETA, on a fake clock: a constant rate gives the closed-form time
 * left, a change of pace is followed within the window, a new phase restarts the estimate; and
 * the demo, run small, reports a rising fraction of its whole run and refuses to overwrite it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProgressLine, formatDuration } from '../cli/progress.js';
import { runDemo, DEMO_FILES } from '../src/experiments/demo.js';
import { auditMembership } from '../src/audit/membership-inference.js';
import { loadDefaultDataset, subset } from '../src/data/index.js';
import { buildResNet } from '../models/resnet.js';

function fake(opts: { tty?: boolean; intervalMs?: number; windowMs?: number } = {}) {
  let t = 1_000_000;
  const out: string[] = [];
  const p = new ProgressLine({ tty: false, ...opts, now: () => t, write: (s) => out.push(s) });
  return { p, out, advance: (ms: number) => { t += ms; } };
}

test('formatDuration', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(42.4), '42s');
  assert.equal(formatDuration(185), '3m 05s');
  assert.equal(formatDuration(3720), '1h 02m');
  assert.equal(formatDuration(-3), '0s');
});

test('ETA: constant rate -> (1 - f) / rate; none before a second of progress, none when done', () => {
  const { p, advance } = fake();
  assert.equal(p.eta(0), null);
  advance(500);
  assert.equal(p.eta(0.005), null, 'watched for less than a second');
  // 1% per second from the start: at 10%, 90 s are left.
  for (let s = 1; s <= 10; s++) {
    advance(s === 1 ? 500 : 1000);
    const eta = p.eta(s / 100);
    assert.ok(eta !== null && Math.abs(eta - (100 - s)) < 1e-9, `at ${s}%: ${eta}`);
  }
  advance(1000);
  assert.equal(p.eta(1), null);
});

test('ETA follows a change of pace within its window, and restarts when the fraction goes back', () => {
  const { p, advance } = fake({ windowMs: 10_000 });
  let f = 0;
  p.eta(f);
  for (let s = 0; s < 30; s++) { advance(1000); f += 0.01; p.eta(f); }
  // Now 0.5% per second for 20 s: the window (10 s) sees only the new pace.
  let eta: number | null = null;
  for (let s = 0; s < 20; s++) { advance(1000); f += 0.005; eta = p.eta(f); }
  assert.ok(Math.abs(f - 0.4) < 1e-9);
  assert.ok(eta !== null && Math.abs(eta - 0.6 / 0.005) < 1e-6, `ETA ${eta} s, expected 120`);
  // A fraction lower than the last (per-epoch progress at the next epoch) starts over.
  advance(1000);
  assert.equal(p.eta(0.01), null);
  advance(2000);
  const next = p.eta(0.03);
  assert.ok(next !== null && Math.abs(next - 0.97 / 0.01) < 1e-6, `new phase: ${next}`);
});

test('update: off a terminal a line every interval with the ETA; on a terminal a bar', () => {
  const { p, out, advance } = fake({ intervalMs: 5000 });
  for (let s = 0; s <= 20; s++) {
    p.update(s / 100, `step ${s}`);
    advance(1000);
  }
  assert.deepEqual(out, ['step 0\n', 'step 5, ETA 1m 35s\n', 'step 10, ETA 1m 30s\n', 'step 15, ETA 1m 25s\n', 'step 20, ETA 1m 20s\n']);
  p.done('finished');
  assert.equal(out.at(-1), 'finished\n');
  const tty = fake({ tty: true });
  tty.p.update(0, 'a');
  tty.advance(2000);
  tty.p.update(0.5, 'b');
  assert.equal(tty.out.at(-1), `\r[${'#'.repeat(12)}${'.'.repeat(12)}] b, ETA 2s\x1b[K`);
  const off = new ProgressLine({ enabled: false, write: () => assert.fail('disabled') });
  off.update(0.5, 'x');
  off.done('y');
});

test('demo (64 examples, 1 epoch): progress rises over the whole run; a second run is refused before any work', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'rp-demo-')), 'out');
  try {
    const seen: number[] = [];
    const r = await runDemo({
      outDir: dir, trainExamples: 64, epochs: 1, gamma: 1, strategy: 'I', seed: 0, threads: 1, toolVersion: 'test',
      onProgress: (f) => seen.push(f),
    });
    assert.ok(seen.length >= 4, `${seen.length} updates`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, `fraction went back: ${seen[i - 1]} -> ${seen[i]}`);
    assert.ok(seen[0]! > 0 && seen.at(-1)! === 3 / 4 && seen.every((f) => f <= 1), `fractions ${seen.join(', ')}`);
    assert.deepEqual(readdirSync(dir).sort(), Object.values(DEMO_FILES).sort());
    assert.equal(r.rows.length, 2);
    const before = statSync(r.files.baseline).mtimeMs;
    const started = Date.now();
    await assert.rejects(runDemo({ outDir: dir, trainExamples: 64, epochs: 1, gamma: 1, strategy: 'I', seed: 0, threads: 1, toolVersion: 'test' }),
      /--out-dir .* already holds resnet8\.onnx, resnet8\.rp\.onnx, audit-perturbed\.html, audit-baseline\.html: pass --force/);
    assert.ok(Date.now() - started < 1000, 'refused at once');
    assert.equal(statSync(r.files.baseline).mtimeMs, before);
  } finally {
    rmSync(join(dir, '..'), { recursive: true, force: true });
  }
});

test('audit: progress over every query, to 1 (the audited model, then each reference model)', async () => {
  const first = (split: 'train' | 'test', n: number) => { const d = loadDefaultDataset(split); return subset(d, Array.from({ length: n }, (_, i) => i)); };
  const members = first('train', 100), nonMembers = first('test', 100);
  const model = (seed: number) => buildResNet('resnet8', { inChannels: 1, classes: 10, imageSize: 28, seed });
  const plain: number[] = [];
  await auditMembership(model(0), { members, nonMembers, delta: 1e-5, threads: 1, batch: 50, onProgress: (f) => plain.push(f) });
  // 200 audited examples in runs of 50.
  assert.deepEqual(plain, [0.25, 0.5, 0.75, 1]);
  const withRefs: number[] = [];
  await auditMembership(model(0), {
    members, nonMembers, delta: 1e-5, threads: 1, batch: 100, attacks: ['loss', 'lira-offline'], reference: { models: [model(1), model(2)] },
    onProgress: (f) => withRefs.push(f),
  });
  assert.deepEqual(withRefs.map((f) => Math.round(f * 6)), [1, 2, 3, 4, 5, 6]);
});
