/** `rp-onnx account`: both accountants side by side, calibration, JSON, bad input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './helpers/cli.js';

const base = ['account', '--sample-rate', '0.04', '--steps', '2250', '--delta', '1e-5'];

test('prints PRV and RDP side by side, naming sampling and adjacency (Opacus published: PRV 6.7774, RDP 7.3291)', () => {
  const r = runCli([...base, '--noise-multiplier', '1.5']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Poisson sampling q 0\.04, add\/remove-one adjacency/);
  const prv = Number(/PRV (\d+\.\d+)/.exec(r.stdout)![1]);
  const rdp = Number(/RDP (\d+\.\d+)/.exec(r.stdout)![1]);
  assert.ok(Math.abs(prv - 6.7774) < 0.01, r.stdout);
  assert.equal(rdp, 7.3291);
  const j = JSON.parse(runCli([...base, '--noise-multiplier', '1.5', '--json', '--accountant', 'rdp']).stdout) as { epsilon: number; accountant: string; adjacency: string; prv: { epsilon: number } };
  assert.equal(j.accountant, 'rdp');
  assert.equal(j.adjacency, 'add-remove');
  assert.ok(Math.abs(j.epsilon - 7.32911117143) < 1e-8);
  assert.ok(j.prv.epsilon < j.epsilon);
});

test('--target-epsilon prints the calibrated sigma, never above the target (Opacus: eps 8, q 0.04, 90 epochs -> RDP sigma 1.416)', () => {
  const r = runCli(['account', '--target-epsilon', '8', '--sample-rate', '0.04', '--epochs', '90', '--delta', '1e-5', '--accountant', 'rdp', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { noiseMultiplier: number; epsilon: number; steps: number };
  assert.equal(j.steps, 2250);
  assert.ok(Math.abs(j.noiseMultiplier - 1.416) < 0.01 && j.epsilon <= 8, r.stdout);
  const p = runCli(['account', '--target-epsilon', '0.1', '--sample-rate', '0.5', '--steps', '10', '--delta', '1e-5']);
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, /noise multiplier \d+\.\d+: the smallest .* PRV epsilon <= 0\.1/);
  assert.ok(Number(/PRV (\d+\.\d+)/.exec(p.stdout)![1]) <= 0.1);
});

test('sigma 0 is epsilon Infinity, said plainly; shuffle names replace-one', () => {
  const r = runCli([...base, '--noise-multiplier', '0']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /epsilon Infinity .*sigma 0 adds no noise, no privacy/);
  assert.doesNotMatch(r.stdout, /NaN/);
  const j = JSON.parse(runCli([...base, '--noise-multiplier', '0', '--json']).stdout) as { epsilon: string };
  assert.equal(j.epsilon, 'Infinity');
  const s = runCli(['account', '--noise-multiplier', '2', '--sample-rate', '0.1', '--epochs', '3', '--delta', '1e-5', '--sampling', 'shuffle']);
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stdout, /after 30 steps \(shuffled batches, 10 steps per epoch, replace-one adjacency\)/);
});

test('bad input is a one-line error with a non-zero exit', () => {
  for (const [args, msg] of [
    [[...base], /exactly one of --noise-multiplier and --target-epsilon/],
    [[...base, '--noise-multiplier', '1', '--accountant', 'moments'], /--accountant must be one of prv, rdp/],
    [[...base, '--noise-multiplier', '1', '--sampling', 'fixed'], /--sampling must be poisson or shuffle/],
    [['account', '--noise-multiplier', '1', '--sample-rate', '2', '--steps', '5', '--delta', '1e-5'], /--sample-rate must be in \(0, 1\]/],
  ] as const) {
    const r = runCli([...args]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, msg);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
