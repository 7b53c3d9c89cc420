/**
 * The residual-perturbation experiment at a tiny size (plumbing, not accuracy): every row gets
 * LiRA-online, RMIA and the loss attack from shadows trained with its own recipe; the DP-SGD row
 * trains the experiment's ResNet-8 with the tuned recipe of src/experiments/dp-sgd.ts, reports an
 * epsilon at or below the target and a one-run lower bound that does not exceed it; shadows are
 * planned from the pool alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadDataDir } from '../src/data/index.js';
import { planRows, runResidualPerturbationExperiment, settingPool, type ExperimentOptions, type SettingName } from '../src/experiments/residual-perturbation.js';
import { markdownTables } from '../src/experiments/residual-perturbation-report.js';
import { ROOT } from './helpers/cli.js';

const dir = join(ROOT, 'data', 'fashion-mnist-small');
const train = loadDataDir(dir, { split: 'train' });
const testSplit = loadDataDir(dir, { split: 'test' });
const settings = [{ name: 'overfit' as const, members: 60, epochs: 1 }];
const config: ExperimentOptions = {
  train, test: testSplit, settings, shadows: 4, gammasI: [1], gammasII: [], ensemble: 2, ensembleGamma: { I: 1 }, epsilons: [3], canaries: 10,
  seed: 0, threads: 1, toolVersion: 'test',
};

test('shadow plans come from the pool alone: halves of members + non-members, the row\'s recipe, no model and no target output', () => {
  const pool = settingPool(settings[0]!, config);
  const rows = planRows(config, new Map<SettingName, typeof pool>([['overfit', pool]]));
  assert.deepEqual(rows.map((r) => r.run.kind), ['baseline', 'perturbed', 'ensemble', 'dp-sgd']);
  // Members: train 0..59; non-members: train 60..119 (the setting, scaled down).
  assert.deepEqual(Array.from(pool.members.labels), Array.from(train.labels.subarray(0, 60)));
  assert.deepEqual(Array.from(pool.nonMembers.labels), Array.from(train.labels.subarray(60, 120)));
  for (const r of rows) {
    assert.equal(r.shadows.length, 4);
    const size = r.run.kind === 'ensemble' ? 2 : 1;
    const inCount = new Array<number>(120).fill(0);
    for (const members of r.shadows) {
      assert.equal(members.length, size);
      for (const s of members) {
        // A shadow spec names its examples, recipe and seeds: nothing else (no model, no target output).
        assert.deepEqual(Object.keys(s).sort(), ['include', 'recipe', 'seed', 'setting', 'threads', 'toolVersion', ...(r.run.kind === 'dp-sgd' ? ['canaries'] : [])].sort());
        assert.deepEqual(s.recipe, r.target[0]!.recipe);
        assert.ok(s.include!.every((i) => i >= 0 && i < 120));
      }
      for (const i of members[0]!.include!) inCount[i]!++;
      // Every member of an ensemble shadow trains on the same half.
      for (const s of members) assert.deepEqual(s.include, members[0]!.include);
    }
    // Even K: every audited example is IN for exactly K/2 shadows.
    assert.ok(inCount.every((c) => c === 2), `IN counts ${inCount.join(',')}`);
  }
  // The single perturbed model and the ensemble's first member are the same training (done once).
  assert.deepEqual(rows[1]!.target[0], rows[2]!.target[0]);
  assert.deepEqual(rows[1]!.shadows.map((m) => m[0]), rows[2]!.shadows.map((m) => m[0]));
});

test('residual-perturbation experiment: LiRA-online, RMIA and loss per row; the DP-SGD row stays within epsilon and its one-run bound below it', { timeout: 300_000 }, async () => {
  const stages: string[] = [];
  const progress: number[] = [];
  const rows = await runResidualPerturbationExperiment({ ...config, onStage: (s) => stages.push(s), onProgress: (f) => progress.push(f) });
  assert.deepEqual(rows.map((r) => r.method), [
    'baseline ResNet-8 (gamma 0)', 'ResNet-8, strategy I, gamma 1', 'En2ResNet8, strategy I, gamma 1', 'DP-SGD ResNet-8 (GroupNorm, tuned recipe + EMA), epsilon 3',
  ]);
  // Targets: baseline, I gamma 1 (= the ensemble's first member), the ensemble's second, DP: 4; shadows 4 x 4.
  assert.ok(stages.includes('training the targets: 4 models'), stages.join('\n'));
  assert.ok(stages.includes('training the shadows: 16 models (4 per row)'), stages.join('\n'));
  assert.equal(progress.at(-1), 1);
  for (const r of rows) {
    assert.equal(r.setting, 'overfit');
    assert.equal(r.shadows, 4);
    for (const a of ['lira-online', 'rmia', 'loss'] as const) {
      assert.ok(r.attacks[a].auc >= 0 && r.attacks[a].auc <= 1, `${r.method} ${a}`);
      assert.equal(r.attacks[a].members, 60);
      assert.equal(r.attacks[a].nonMembers, 60);
      // 60 non-members: TPR at 1% FPR cannot be measured.
      assert.equal(r.attacks[a].tprAtFpr1, null);
    }
    assert.equal(r.liraRoc.at(-1)!.tpr, 1);
    assert.ok(r.trainSeconds > r.targetSeconds && r.targetSeconds > 0);
    assert.ok(r.testAccuracy >= 0 && r.testAccuracy <= 1 && r.trainAccuracy >= 0 && r.trainAccuracy <= 1);
  }
  for (const r of rows.slice(0, 3)) assert.ok(r.epsilon === null && r.oneRun === null && r.sigma === null);
  const dp = rows[3]!;
  assert.ok(dp.epsilon !== null && dp.epsilon <= 3 && dp.epsilon > 2, `epsilon ${dp.epsilon}`);
  assert.ok(dp.sigma! > 0 && dp.delta === 1e-5);
  assert.equal(dp.oneRun!.canaries, 10);
  assert.ok(dp.oneRun!.epsilonLowerBound <= dp.epsilon, `one-run bound ${dp.oneRun!.epsilonLowerBound} above the accountant's ${dp.epsilon}`);
  const md = markdownTables(rows, settings);
  assert.match(md, /### overfit: members = train images 0-59, non-members = train images 60-119, 1 epoch/);
  assert.equal((md.match(/\| n\/a \| n\/a \|/g) ?? []).length, 4, md);
});
