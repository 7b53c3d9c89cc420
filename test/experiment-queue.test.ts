/**
 * `experiment residual-perturbation --queue`: every run of a tiny configuration is a BullMQ job
 * on a real redis-server (started on a free loopback port), executed by an `rp-onnx worker`
 * process; the rows come back in table order, and the deterministic one (the baseline: seeded
 * initialisation and shuffling, no random ops) equals the in-process run exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadDataDir } from '../src/data/index.js';
import { runResidualPerturbationExperiment, runExperimentRun, experimentRuns } from '../src/experiments/residual-perturbation.js';
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
});

test('experiment runs as queue jobs: a worker executes them, rows in order, the baseline equals the in-process run', { timeout: 600_000 }, async (t) => {
  const { url, children } = await startRedis(t, 'rp-exp-queue-');
  const worker = cli(['worker', '--queue', url]);
  children.push(worker);
  const log = watch(worker);
  const train = loadDataDir(DATA, { split: 'train' });
  const test = loadDataDir(DATA, { split: 'test' });
  const config = { train, test, members: 48, epochs: 1, gammasI: [1], gammasII: [], ensemble: 1, ensembleGamma: { I: 1, II: 0.5 }, epsilons: [], seed: 0, threads: 1, toolVersion: 'test' };
  const runner = await QueueRunner.connect(url);
  const progress: number[] = [];
  let rows;
  try {
    rows = await runResidualPerturbationExperiment({ ...config, jobs: { runner, data: DATA }, onProgress: (f) => progress.push(f) });
  } finally {
    await runner.close();
  }
  assert.deepEqual(rows.map((r) => r.method), ['baseline ResNet-8 (gamma 0)', 'ResNet-8, strategy I, gamma 1']);
  assert.equal((log.text.match(/completed experiment-run /g) ?? []).length, 2, log.text);
  assert.equal(progress.at(-1), 1);
  const local = await runExperimentRun({ kind: 'baseline' }, config);
  const { trainSeconds: _a, ...queued } = rows[0]!;
  const { trainSeconds: _b, ...inProcess } = local;
  assert.deepEqual(queued, inProcess, 'the worker\'s baseline row equals the in-process one');
  for (const r of rows) assert.ok(r.testAccuracy >= 0 && r.testAccuracy <= 1 && r.auc >= 0 && r.auc <= 1 && r.epsilon === null);
  worker.kill('SIGTERM');
  await exited(worker);
});

test('experiment --queue with no Redis server there fails at once, in one line', () => {
  const r = runCli(['experiment', 'residual-perturbation', '--data', DATA, '--queue', 'redis://127.0.0.1:1', '--out-dir', join(ROOT, 'rp-experiments', 'queue-test-never-written')], { timeoutMs: 60_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /cannot reach the Redis server at redis:\/\/127\.0\.0\.1:1/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});
