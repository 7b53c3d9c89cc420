/**
 * The DP loop's accounting costs about one accountant evaluation per epoch, not one or two per
 * step (a PRV evaluation costs as much as a training step), and stays as strict as before:
 * - the evaluations are counted by a spy on the accountants' own methods (an independent
 *   counter, not the loop's), between the first and the last step of a run; the loop before
 *   this change made one per step (one and a half at epoch ends);
 * - with a given sigma and a budget, the run stops exactly before the first step that would
 *   exceed the target, checked against the RDP closed form of src/privacy/rdp.ts (not the
 *   loop's ledger);
 * - progress epsilon is never below what has been spent (the closed form at the step count),
 *   and the epoch reports are exact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveLinearModel } from './helpers/linear-model.js';
import { loadModel } from '../src/graph/io.js';
import { epsilon as rdpEpsilon } from '../src/privacy/rdp.js';
import { createAccountant } from '../src/privacy/accountants/registry.js';
import { loadDefaultDataset, subset } from '../src/data/index.js';
import { fit } from '../src/train/fit.js';
import { PrivateStep, type DpOptions } from '../src/train/dp/dp-sgd.js';

const dir = mkdtempSync(join(tmpdir(), 'rp-budget-'));
const modelPath = join(dir, 'lin.onnx');
saveLinearModel(modelPath);
const trainSet = subset(loadDefaultDataset('train'), Array.from({ length: 64 }, (_, i) => i));

/** Counts every accountant's epsilon evaluations (prototype spies; epsilonAfter evaluates through epsilon). */
function spyAccountants(): { count: () => number; restore: () => void } {
  let calls = 0;
  const undo: (() => void)[] = [];
  for (const name of ['prv', 'rdp'] as const) {
    const proto = Object.getPrototypeOf(createAccountant(name)) as Record<string, (...a: unknown[]) => unknown>;
    for (const m of ['epsilon']) {
      const orig = proto[m]!;
      proto[m] = function (this: unknown, ...a: unknown[]) {
        calls++;
        return orig.apply(this, a);
      };
      undo.push(() => { proto[m] = orig; });
    }
  }
  return { count: () => calls, restore: () => undo.forEach((u) => u()) };
}

const dpBase: DpOptions = {
  maxGradNorm: 1, delta: 1e-3, noiseSchedule: 'constant', noiseEndRatio: 1, sampling: 'poisson', accountant: 'rdp',
  clip: 'constant', clipQuantile: 0.5, clipLearningRate: 0.2, noise: 'gaussian', secureRng: true,
};

async function run(dp: DpOptions, epochs: number) {
  const spy = spyAccountants();
  const progress: { step: number; epsilon: number; calls: number }[] = [];
  const reports: { steps: number; epsilon: number }[] = [];
  let steps = 0;
  try {
    const r = await fit(loadModel(modelPath), trainSet, undefined, {
      optimizer: 'sgd', batchSize: 8, lr: 0.1, epochs, threads: 1,
      strategy: new PrivateStep({ dp, batchSize: 8, examples: 64 }),
      onProgress: (p) => { steps++; progress.push({ step: steps, epsilon: p.epsilon!, calls: spy.count() }); },
      onEpoch: (e) => reports.push({ steps, epsilon: e.epsilon! }),
    });
    return { r, progress, reports };
  } finally {
    spy.restore();
  }
}

// q = 8/64: the closed form of the Poisson-subsampled Gaussian's RDP after `steps` steps.
const closed = (sigma: number, steps: number) => rdpEpsilon([{ sampleRate: 0.125, noiseMultiplier: sigma, steps }], 1e-3);

test('calibrated run: about one accountant evaluation per epoch, progress epsilon an upper bound, epoch reports exact', { timeout: 120_000 }, async () => {
  const epochs = 5;
  const { r, progress, reports } = await run({ ...dpBase, targetEpsilon: 3 }, epochs);
  assert.equal(r.steps, 40);
  assert.ok(!r.stoppedByBudget);
  // Evaluations while stepping (after the first step's progress, through the last): the old loop made 1-2 per step (39-78 here).
  const during = progress.at(-1)!.calls - progress[0]!.calls;
  assert.ok(during <= epochs + 1, `${during} accountant evaluations over ${r.steps} steps`);
  for (const rep of reports) assert.ok(rep.epsilon <= 3 + 1e-12);
});

test('given sigma and a budget: stops exactly before the first step that would exceed it (RDP closed form), in O(log steps) evaluations', { timeout: 120_000 }, async () => {
  const sigma = 1.5;
  const target = 2;
  const { r, progress, reports } = await run({ ...dpBase, noiseMultiplier: sigma, targetEpsilon: target }, 10);
  assert.ok(r.stoppedByBudget);
  assert.ok(closed(sigma, r.steps) <= target, `epsilon after ${r.steps} steps ${closed(sigma, r.steps)}`);
  assert.ok(closed(sigma, r.steps + 1) > target, 'it stopped only when the next step would exceed the budget');
  assert.ok(progress[0]!.calls <= Math.ceil(Math.log2(80)) + 4, `${progress[0]!.calls} evaluations before the first step`);
  assert.ok(progress.at(-1)!.calls - progress[0]!.calls <= 12, 'about one per epoch while stepping');
  // Progress never under-reports; epoch ends are exact.
  for (const p of progress) assert.ok(p.epsilon >= closed(sigma, p.step) - 1e-9, `step ${p.step}: progress ${p.epsilon} < spent ${closed(sigma, p.step)}`);
  for (const rep of reports) assert.ok(Math.abs(rep.epsilon - closed(sigma, rep.steps)) < 1e-9 * Math.max(1, rep.epsilon), `epoch report ${rep.epsilon} vs ${closed(sigma, rep.steps)}`);
});
