/**
 * Jobs: independent units of work (a shadow model to train, an experiment run) described by a
 * JSON value, run by a `JobRunner`. The in-process pool needs nothing installed; the BullMQ
 * runner puts every job on a Redis-backed queue that `rp-onnx worker` processes on any number of
 * machines. Both return results in the order of the jobs, so the caller cannot tell them apart.
 */
export interface JobProgress {
  done: number;
  total: number;
  /** Jobs that were picked up again after a worker died holding them (queue only). */
  retried: number;
}

/** Turns a job's data into its JSON result. */
export type JobHandler<J = unknown, R = unknown> = (data: J) => Promise<R>;

export interface JobSpec<J> {
  /** Stable id: the same work has the same id (a queue reuses a finished job's result). */
  id: string;
  /** Which handler runs it (the worker looks handlers up by this name). */
  name: string;
  data: J;
}

export interface JobRunner {
  run<J, R>(jobs: readonly JobSpec<J>[], onProgress?: (p: JobProgress) => void): Promise<R[]>;
  close(): Promise<void>;
}
