/**
 * The residual-perturbation experiment's DP-SGD rows at a tiny size (plumbing, not accuracy):
 * they train the experiment's ResNet-8 with the tuned recipe of src/experiments/dp-sgd.ts and
 * report an epsilon at or below the target.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadDataDir } from '../src/data/index.js';
import { runResidualPerturbationExperiment } from '../src/experiments/residual-perturbation.js';
import { ROOT } from './helpers/cli.js';

test('residual-perturbation experiment: the DP-SGD row uses the tuned recipe and stays within epsilon', async () => {
  const dir = join(ROOT, 'data', 'fashion-mnist-small');
  const rows = await runResidualPerturbationExperiment({
    train: loadDataDir(dir, { split: 'train' }), test: loadDataDir(dir, { split: 'test' }),
    members: 120, epochs: 1, gammasI: [], gammasII: [], ensemble: 1, ensembleGamma: { I: 1, II: 0.5 }, epsilons: [3],
    seed: 0, threads: 1, toolVersion: 'test',
  });
  assert.deepEqual(rows.map((r) => r.method), ['baseline ResNet-8 (gamma 0)', 'DP-SGD ResNet-8 (GroupNorm, tuned recipe + EMA), epsilon 3']);
  const dp = rows[1]!;
  assert.ok(dp.epsilon !== null && dp.epsilon <= 3 && dp.epsilon > 2, `epsilon ${dp.epsilon}`);
  assert.ok(dp.testAccuracy >= 0 && dp.testAccuracy <= 1);
});
