/** `rp-onnx worker --queue URL`: trains the shadow models an audit put on a BullMQ queue. */
import type { Command } from 'commander';
import { action, parseIntOption } from './common.js';
import { RpOnnxError } from '../src/errors.js';
import { startQueueWorker, DEFAULT_QUEUE_NAME } from '../src/jobs/bullmq.js';
import { shadowJobHandler, SHADOW_JOB_NAME } from '../src/privacy/shadow-jobs.js';

export function register(program: Command): void {
  program
    .command('worker')
    .description('process jobs from a queue (shadow models of `audit --queue`); run as many as you like, on any machine with the package and the data')
    .requiredOption('--queue <url>', 'the Redis server of the queue: redis://HOST:PORT')
    .option('--concurrency <n>', 'jobs at once in this process (one core each: onnxruntime runs on the main thread)', parseIntOption('--concurrency'), 1)
    .option('--artifacts <dir>', 'write models here and send their names (a folder the audit reads too) instead of sending the bytes through Redis')
    .option('--lock-duration <ms>', 'a job held by a worker that stopped responding this long is retried elsewhere', parseIntOption('--lock-duration'), 30_000)
    .option('--queue-name <name>', 'queue name', DEFAULT_QUEUE_NAME)
    .action(action(async (o: { queue: string; concurrency: number; artifacts?: string; lockDuration: number; queueName: string }) => {
      if (!(o.concurrency >= 1)) throw new RpOnnxError(`--concurrency must be a positive integer, got ${o.concurrency}`);
      if (!(o.lockDuration >= 500)) throw new RpOnnxError(`--lock-duration must be at least 500 ms, got ${o.lockDuration}`);
      const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
      const worker = await startQueueWorker(o.queue, { [SHADOW_JOB_NAME]: shadowJobHandler({ artifacts: o.artifacts }) }, {
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
