/** `rp-onnx worker --queue URL`: trains the shadow models an audit, and the target and shadow models an experiment, put on a BullMQ queue. */
import type { Command } from 'commander';
import { spawn, type ChildProcess } from 'node:child_process';
import { action, parseIntOption } from './common.js';
import { Flags } from './flags.js';
import { startQueueWorker, DEFAULT_QUEUE_NAME } from '../src/jobs/bullmq.js';
import { shadowJobHandler, SHADOW_JOB_NAME } from '../src/audit/shadow-jobs.js';
import { experimentModelHandler, EXPERIMENT_MODEL_JOB_NAME } from '../src/experiments/residual-perturbation-jobs.js';

export function register(program: Command): void {
  program
    .command('worker')
    .description('process jobs from a queue (shadow models of `audit --queue`, target and shadow models of `experiment residual-perturbation --queue`); run as many as you like, on any machine with the package and the data')
    .requiredOption('--queue <url>', 'the Redis server of the queue: redis://HOST:PORT')
    .option('--concurrency <n>', 'jobs at once: N worker processes (onnxruntime runs on a process\'s main thread, so one process trains one model at a time)', parseIntOption('--concurrency'), 1)
    .option('--artifacts <dir>', 'write models here and send their names (a folder the audit reads too) instead of sending the bytes through Redis')
    .option('--lock-duration <ms>', 'a job held by a worker that stopped responding this long is retried elsewhere', parseIntOption('--lock-duration'), 30_000)
    .option('--queue-name <name>', 'queue name', DEFAULT_QUEUE_NAME)
    .action(action(async (_o: unknown, command: Command) => {
      const f = new Flags(command);
      const o = {
        queue: f.string('queue', { required: true }), concurrency: f.int('concurrency', { min: 1, required: true }), artifacts: f.path('artifacts'),
        lockDuration: f.int('lockDuration', { min: 500, says: 'at least 500 ms', required: true }), queueName: f.string('queueName', { required: true }),
      };
      const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
      if (o.concurrency > 1) {
        superviseWorkers(o.concurrency, log);
        return;
      }
      const handlers = { [SHADOW_JOB_NAME]: shadowJobHandler({ artifacts: o.artifacts }), [EXPERIMENT_MODEL_JOB_NAME]: experimentModelHandler() };
      const worker = await startQueueWorker(o.queue, handlers, {
        queueName: o.queueName, concurrency: o.concurrency, lockDurationMs: o.lockDuration,
        onEvent: (e) => log(`${e.kind} ${e.name} ${e.id}${e.error ? `: ${e.error}` : ''}`),
      });
      log(`worker ${process.pid} on ${o.queue} (queue ${o.queueName}), concurrency ${o.concurrency}`);
      const stop = (signal: string) => {
        log(`${signal}: finishing the current job(s)`);
        worker.close().then(() => process.exit(0), () => process.exit(1));
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    }));
}

/** --concurrency N > 1: N copies of this command with --concurrency 1, stopped together. */
function superviseWorkers(n: number, log: (line: string) => void): void {
  const args = process.argv.slice(1);
  const i = args.indexOf('--concurrency');
  const eq = args.findIndex((a) => a.startsWith('--concurrency='));
  if (i >= 0) args.splice(i, 2, '--concurrency', '1');
  else if (eq >= 0) args.splice(eq, 1, '--concurrency=1');
  const children: ChildProcess[] = [];
  let alive = n;
  for (let k = 0; k < n; k++) {
    const c = spawn(process.execPath, [...process.execArgv, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
    c.once('exit', (code, signal) => {
      log(`worker process ${c.pid} exited (${signal ?? code})`);
      if (--alive === 0) process.exit(0);
    });
    children.push(c);
  }
  log(`supervising ${n} worker processes: ${children.map((c) => c.pid).join(', ')}`);
  const stop = (signal: NodeJS.Signals) => { for (const c of children) c.kill(signal); };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
