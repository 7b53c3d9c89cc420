/** The default job runner: a pool of `concurrency` jobs at a time in this process. */
import { RpOnnxError } from '../errors.js';
import type { JobHandler, JobProgress, JobRunner, JobSpec } from './runner.js';

export class InProcessRunner implements JobRunner {
  constructor(private readonly handlers: Readonly<Record<string, JobHandler<never, unknown>>>, private readonly concurrency = 1) {
    if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new RpOnnxError(`concurrency must be a positive integer, got ${concurrency}`);
  }

  async run<J, R>(jobs: readonly JobSpec<J>[], onProgress?: (p: JobProgress) => void): Promise<R[]> {
    const results = new Array<R>(jobs.length);
    let next = 0;
    let done = 0;
    const lane = async () => {
      while (next < jobs.length) {
        const i = next++;
        const job = jobs[i]!;
        const handler = this.handlers[job.name] as JobHandler<J, R> | undefined;
        if (!handler) throw new RpOnnxError(`no handler for jobs named '${job.name}'`);
        results[i] = await handler(job.data);
        onProgress?.({ done: ++done, total: jobs.length, retried: 0 });
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, jobs.length) }, lane));
    return results;
  }

  async close(): Promise<void> {}
}
