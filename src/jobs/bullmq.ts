/**
 * Jobs on BullMQ over Redis. The coordinator (`QueueRunner`) adds one job per unit of work, with
 * the work's stable id as the job id, and waits for the results; `startQueueWorker` processes
 * them in any process that can reach the Redis server (`rp-onnx worker`).
 *
 * A worker that dies holding a job (SIGKILL, a lost machine) stops renewing the job's lock; after
 * `lockDurationMs` another worker's stalled-job check moves the job back to the wait list and it
 * runs again from the start (jobs are deterministic, so the result is the one the dead worker
 * would have returned). A job that fails with an error is not retried: the error is the answer.
 */
import { Queue, QueueEvents, Worker, Job } from 'bullmq';
import { Redis } from 'ioredis';
import { RpOnnxError } from '../errors.js';
import { parseRedisUrl, type RedisConnection } from './redis-url.js';
import type { JobHandler, JobProgress, JobRunner, JobSpec } from './runner.js';

export const DEFAULT_QUEUE_NAME = 'rp-onnx';
/** How often the coordinator looks at its pending jobs. */
const POLL_MS = 250;

async function ready(what: Promise<unknown>, url: string, timeoutMs = 5000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([what, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('timeout')), timeoutMs); })]);
  } catch (e) {
    throw new RpOnnxError(`cannot reach the Redis server at ${url} (${(e as Error).message}); start redis-server or fix --queue`, { exitCode: 1 });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A client of its own for every BullMQ object (BullMQ in an ES module takes clients, not options).
 * Blocking commands need maxRetriesPerRequest null; reconnects give up after ~30 s.
 */
function connect(conn: RedisConnection): Redis {
  const client = new Redis({ ...conn, maxRetriesPerRequest: null, lazyConnect: false, retryStrategy: (times: number) => (times > 20 ? null : Math.min(times * 200, 2000)) });
  client.on('error', () => {});
  return client;
}

export class QueueRunner implements JobRunner {
  private constructor(private readonly queue: Queue, private readonly events: QueueEvents, private readonly clients: Redis[], private readonly url: string) {}

  static async connect(url: string, queueName = DEFAULT_QUEUE_NAME): Promise<QueueRunner> {
    const conn = parseRedisUrl(url);
    const clients = [connect(conn), connect(conn)];
    const queue = new Queue(queueName, { connection: clients[0]! });
    const events = new QueueEvents(queueName, { connection: clients[1]! });
    queue.on('error', () => {});
    events.on('error', () => {});
    try {
      await ready(Promise.all([queue.waitUntilReady(), events.waitUntilReady()]), url);
    } catch (e) {
      await Promise.allSettled([queue.close(), events.close()]);
      for (const c of clients) c.disconnect();
      throw e;
    }
    return new QueueRunner(queue, events, clients, url);
  }

  async run<J, R>(jobs: readonly JobSpec<J>[], onProgress?: (p: JobProgress) => void): Promise<R[]> {
    const ids = new Set(jobs.map((j) => j.id));
    let retried = 0;
    const onStalled = ({ jobId }: { jobId: string }) => { if (ids.has(jobId)) retried++; };
    this.events.on('stalled', onStalled);
    try {
      for (const j of jobs) {
        const existing = await Job.fromId(this.queue, j.id);
        // A job of an earlier, interrupted audit: reuse it unless it failed (then run it again).
        if (existing && (await existing.getState()) === 'failed') await existing.retry('failed');
        if (!existing) {
          await this.queue.add(j.name, j.data, { jobId: j.id, attempts: 1, removeOnComplete: false, removeOnFail: false });
        }
      }
      const results = new Array<R>(jobs.length);
      const pending = new Set(jobs.map((_, i) => i));
      let reported = -1;
      while (pending.size > 0) {
        for (const i of [...pending]) {
          // The state first, then the job: a job read before it completed holds no return value yet.
          const state = await this.queue.getJobState(jobs[i]!.id);
          if (state !== 'completed' && state !== 'failed' && state !== 'unknown') continue;
          const job = await Job.fromId(this.queue, jobs[i]!.id);
          if (!job || state === 'unknown') throw new RpOnnxError(`job ${jobs[i]!.id} disappeared from the queue at ${this.url} (was the queue emptied?)`, { exitCode: 1 });
          if (state === 'completed') {
            results[i] = job.returnvalue as R;
            pending.delete(i);
          } else {
            throw new RpOnnxError(`job ${jobs[i]!.name} ${jobs[i]!.id} failed on a worker: ${job.failedReason}`, { exitCode: 1 });
          }
        }
        const done = jobs.length - pending.size;
        if (done !== reported) {
          reported = done;
          onProgress?.({ done, total: jobs.length, retried });
        }
        if (pending.size > 0) await new Promise((r) => setTimeout(r, POLL_MS));
      }
      // The results are ours now: free the server's memory (a model can be megabytes).
      for (const j of jobs) await (await Job.fromId(this.queue, j.id))?.remove().catch(() => {});
      return results;
    } finally {
      this.events.off('stalled', onStalled);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.queue.close(), this.events.close()]);
    for (const c of this.clients) c.disconnect();
  }
}

export interface QueueWorkerOptions {
  queueName?: string;
  concurrency?: number;
  /** A job whose worker stopped renewing its lock this long ago is given to another worker. */
  lockDurationMs?: number;
  /** How often this worker looks for such stalled jobs (default: lockDurationMs). */
  stalledIntervalMs?: number;
  onEvent?: (e: { kind: 'active' | 'completed' | 'failed'; id: string; name: string; error?: string }) => void;
}

export interface QueueWorker {
  close(): Promise<void>;
}

export async function startQueueWorker(url: string, handlers: Readonly<Record<string, JobHandler<never, unknown>>>, o: QueueWorkerOptions = {}): Promise<QueueWorker> {
  const client = connect(parseRedisUrl(url));
  const lockDuration = o.lockDurationMs ?? 30_000;
  const worker = new Worker(o.queueName ?? DEFAULT_QUEUE_NAME, async (job: Job) => {
    const handler = handlers[job.name] as JobHandler<unknown, unknown> | undefined;
    if (!handler) throw new Error(`this worker has no handler for jobs named '${job.name}'`);
    o.onEvent?.({ kind: 'active', id: job.id ?? '', name: job.name });
    return handler(job.data);
  }, {
    connection: client, concurrency: o.concurrency ?? 1, lockDuration, stalledInterval: o.stalledIntervalMs ?? lockDuration,
    // A job whose worker died is retried; one that keeps killing workers gives up eventually.
    maxStalledCount: 3, autorun: false,
  });
  worker.on('error', () => {});
  worker.on('completed', (job) => o.onEvent?.({ kind: 'completed', id: job.id ?? '', name: job.name }));
  worker.on('failed', (job, err) => o.onEvent?.({ kind: 'failed', id: job?.id ?? '', name: job?.name ?? '', error: err.message }));
  try {
    await ready(worker.waitUntilReady(), url);
  } catch (e) {
    client.disconnect();
    throw e;
  }
  void worker.run();
  return { close: async () => { await worker.close(); client.disconnect(); } };
}
