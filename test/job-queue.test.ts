/**
 * Shadow models as jobs on BullMQ over a real redis-server (Debian package redis-server, started
 * here on a free loopback port; no mock): a worker killed with SIGKILL in the middle of a job has
 * the job retried by another worker, and the audit's result equals the in-process one for the
 * same --seed, because shadow training is deterministic given the job.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { saveModel } from '../src/graph/io.js';
import { parseRedisUrl } from '../src/jobs/redis-url.js';
import { InProcessRunner } from '../src/jobs/in-process.js';
import { Random } from '../src/random.js';
import { runCli } from './helpers/cli.js';
import { cli, exited, startRedis, watch } from './helpers/redis-server.js';
import { gaussianData, logisticModel, writeDataDir } from './helpers/synthetic-mia.js';

test('redis URLs', () => {
  assert.deepEqual(parseRedisUrl('redis://127.0.0.1:6390'), { host: '127.0.0.1', port: 6390 });
  assert.deepEqual(parseRedisUrl('redis://h/2'), { host: 'h', port: 6379, db: 2 });
  assert.throws(() => parseRedisUrl('http://h:1'), /only redis:/);
  assert.throws(() => parseRedisUrl('nonsense'), /not a URL/);
});

test('in-process runner: results in job order, progress counts every job', async () => {
  const seen: number[] = [];
  const r = new InProcessRunner({ sq: async (x: number) => { await new Promise((res) => setTimeout(res, (5 - x) * 3)); return x * x; } }, 3);
  const out = await r.run([1, 2, 3, 4, 5].map((x) => ({ id: String(x), name: 'sq', data: x })), (p) => seen.push(p.done));
  assert.deepEqual(out, [1, 4, 9, 16, 25]);
  assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  await assert.rejects(r.run([{ id: 'a', name: 'nope', data: 1 }]), /no handler/);
});

test('audit --queue: a worker killed with SIGKILL mid-job has its job retried; the result equals the in-process audit', { timeout: 600_000 }, async (t) => {
  const { url, dir, children } = await startRedis(t);

  // The setting: a logistic regression that memorises 24 of 64 training examples.
  const rng = new Random(31);
  const data = join(dir, 'data');
  writeDataDir(data, gaussianData(64, rng, 'train'), gaussianData(48, rng, 'test'));
  const init = join(dir, 'init.onnx');
  saveModel(logisticModel(), init);
  const target = join(dir, 'target.onnx');
  const tr = runCli(['train', init, '--data', data, '--limit', '24', '--epochs', '60', '--batch', '8', '--lr', '0.05', '--weight-decay', '0',
    '--schedule', 'constant', '--threads', '1', '-o', target]);
  assert.equal(tr.status, 0, tr.stderr);
  const common = ['audit', target, '--train-data', data, '--init', init, '--shadows', '4', '--attack', 'all', '--seed', '3', '--threads', '1', '--json'];

  const local = runCli(common, { timeoutMs: 300_000 });
  assert.equal(local.status, 0, local.stderr);
  const expected = JSON.parse(local.stdout) as { members: number; attacks: { attack: string; auc: number }[] };
  assert.equal(expected.members, 24, 'members come from the 24 examples training used');

  const audit = cli([...common, '--queue', url]);
  children.push(audit);
  let stdout = '';
  audit.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  const auditLog = watch(audit);
  const w1 = cli(['worker', '--queue', url, '--lock-duration', '1000']);
  children.push(w1);
  const w1Log = watch(w1);
  // The moment the first worker starts a job, kill it without a chance to clean up.
  const [, killedJob] = await w1Log.waitFor(/active train-shadow (\S+)/);
  w1.kill('SIGKILL');
  await exited(w1);
  assert.ok(!w1Log.text.includes(`completed train-shadow ${killedJob}`), 'the first worker finished its job before it was killed');
  const w2 = cli(['worker', '--queue', url, '--lock-duration', '1000']);
  children.push(w2);
  const w2Log = watch(w2);
  const code = await exited(audit);
  assert.equal(code, 0, auditLog.text);
  await w2Log.waitFor(new RegExp(`completed train-shadow ${killedJob}`));
  assert.match(auditLog.text, /shadow models 4\/4/);
  const got = JSON.parse(stdout) as typeof expected;
  assert.deepEqual(got.attacks, expected.attacks, 'queue and in-process audits agree exactly');
  const online = got.attacks.find((a) => a.attack === 'lira-online')!;
  t.diagnostic(`lira-online AUC ${online.auc}; killed job ${killedJob} retried by the second worker`);
  w2.kill('SIGTERM');
  await exited(w2);
});
