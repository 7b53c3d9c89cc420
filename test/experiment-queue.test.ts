/**
 * `experiment residual-perturbation --queue`: every model of a tiny configuration (targets, then
 * shadows) is a BullMQ job on a real redis-server (started on a free loopback port), trained by
 * an `rp-onnx worker` process; the rows come back in table order, and the deterministic one (the
 * baseline: seeded initialisation and shuffling, no random ops, in the target and its shadows)
 * equals the in-process run exactly, attacks included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadDataDir } from '../src/data/index.js';
import { runResidualPerturbationExperiment, experimentRuns } from '../src/experiments/residual-perturbation.js';
import { QueueRunner } from '../src/jobs/bullmq.js';
import { ROOT, runCli } from './helpers/cli.js';
import { cli, exited, startRedis, watch } from './helpers/redis-server.js';

const DATA = join(ROOT, 'data', 'fashion-mnist-small');

test('the runs of a configuration, in table order', () => {
  assert.deepEqual(experimentRuns({ gammasI: [0.5, 1], gammasII: [0.25], ensemble: 3, ensembleGamma: { I: 1, II: 0.5 }, epsilons: [3, 8] }), [
    { kind: 'baseline' },
    { kind: 'perturbed', strategy: 'I', gamma: 0.5 }, { kind: 'perturbed', strategy: 'I', gamma: 1 }, { kind: 'ensemble', strategy: 'I', gamma: 1, size: 3 },
    { kind: 'perturbed', strategy: 'II', gamma: 0.25 }, { kind: 'ensemble', strategy: 'II', gamma: 0.5, size: 3 },
    { kind: 'dp-sgd', epsilon: 3 }, { kind: 'dp-sgd', epsilon: 8 },
  ]);
  // A strategy without an ensemble gamma gets no ensemble row.
  assert.deepEqual(experimentRuns({ gammasI: [1], gammasII: [0.5], ensemble: 3, ensembleGamma: { I: 1 }, epsilons: [] }).map((r) => r.kind), ['baseline', 'perturbed', 'ensemble', 'perturbed']);
});

test('experiment models as queue jobs: a worker trains them, rows in order, the baseline row equals the in-process run', { timeout: 600_000 }, async (t) => {
  const { url, children } = await startRedis(t, 'rp-exp-queue-');
  const worker = cli(['worker', '--queue', url]);
  children.push(worker);
  const log = watch(worker);
  const train = loadDataDir(DATA, { split: 'train' });
  const test = loadDataDir(DATA, { split: 'test' });
  const config = {
    train, test, settings: [{ name: 'overfit' as const, members: 48, epochs: 1 }], shadows: 4,
    gammasI: [1], gammasII: [], ensemble: 1, ensembleGamma: {}, epsilons: [], seed: 0, threads: 1, toolVersion: 'test',
  };
  const runner = await QueueRunner.connect(url);
  const progress: number[] = [];
  let rows;
  try {
    rows = await runResidualPerturbationExperiment({ ...config, jobs: { runner, data: DATA }, onProgress: (f) => progress.push(f) });
  } finally {
    await runner.close();
  }
  assert.deepEqual(rows.map((r) => r.method), ['baseline ResNet-8 (gamma 0)', 'ResNet-8, strategy I, gamma 1']);
  // 2 targets + 2 x 4 shadows, each one job.
  assert.equal((log.text.match(/completed experiment-model /g) ?? []).length, 10, log.text);
  assert.equal(progress.at(-1), 1);
  const [local] = await runResidualPerturbationExperiment({ ...config, gammasI: [] });
  const strip = ({ trainSeconds: _a, targetSeconds: _b, ...r }: NonNullable<typeof local>) => r;
  assert.deepEqual(strip(rows[0]!), strip(local!), 'the worker\'s baseline row equals the in-process one');
  for (const r of rows) assert.ok(r.testAccuracy >= 0 && r.testAccuracy <= 1 && r.attacks['lira-online'].auc >= 0 && r.attacks['lira-online'].auc <= 1 && r.epsilon === null);
  worker.kill('SIGTERM');
  await exited(worker);
});

test('experiment --queue with no Redis server there fails at once, in one line', () => {
  const r = runCli(['experiment', 'residual-perturbation', '--data', DATA, '--settings', 'overfit', '--queue', 'redis://127.0.0.1:1', '--out-dir', join(ROOT, 'rp-experiments', 'queue-test-never-written')], { timeoutMs: 60_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /cannot reach the Redis server at redis:\/\/127\.0\.0\.1:1/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});
