/**
 * The residual-perturbation experiment's runs as jobs (src/jobs), in the pattern of the audit's
 * shadow jobs (src/audit/shadow-jobs.ts): a job is plain JSON naming its data by folder, the run
 * and the setting; `rp-onnx worker` loads the data once per folder and returns the run's table
 * row. The coordinator gets the rows back in table order.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { loadDataDir, type Dataset } from '../data/index.js';
import { RpOnnxError } from '../errors.js';
import type { JobHandler, JobProgress, JobRunner } from '../jobs/runner.js';
import { runExperimentRun, type ExperimentRow, type ExperimentRun, type RunSetting } from './residual-perturbation.js';

export const EXPERIMENT_RUN_JOB_NAME = 'experiment-run';

export interface ExperimentRunJob {
  experiment: 'residual-perturbation';
  /** The data folder (train and test splits) as every worker sees it. */
  data: string;
  members: number;
  epochs: number;
  seed: number;
  /** onnxruntime threads of the worker's training. */
  threads?: number;
  toolVersion: string;
  run: ExperimentRun;
}

/** A stable id: the same run of the same setting has the same id (a queue reuses a finished job). */
export function experimentJobId(job: ExperimentRunJob): string {
  return `experiment-${createHash('sha256').update(JSON.stringify(job)).digest('hex').slice(0, 32)}`;
}

export interface ExperimentHandlerOptions {
  /** Splits already in memory (in-process use); otherwise loaded from the job's folder. */
  context?: { train: Dataset; test: Dataset };
}

/** The `experiment-run` job handler; it keeps the splits of the last folder it loaded. */
export function experimentRunHandler(o: ExperimentHandlerOptions = {}): JobHandler<ExperimentRunJob, ExperimentRow> {
  let cached: { data: string; train: Dataset; test: Dataset } | undefined;
  return async (job) => {
    if (job.experiment !== 'residual-perturbation') throw new RpOnnxError(`experiment job: unknown experiment '${String(job.experiment)}'`);
    let splits = o.context;
    if (!splits) {
      if (cached?.data !== job.data) {
        try {
          cached = { data: job.data, train: loadDataDir(job.data, { split: 'train' }), test: loadDataDir(job.data, { split: 'test' }) };
        } catch (e) {
          throw new RpOnnxError(`experiment job: cannot load the data folder ${job.data} on this machine (${(e as Error).message})`);
        }
      }
      splits = cached;
    }
    return runExperimentRun(job.run, {
      train: splits.train, test: splits.test, members: job.members, epochs: job.epochs, seed: job.seed, threads: job.threads, toolVersion: job.toolVersion,
    });
  };
}

/** Submits every run as a job and returns the rows in run order. */
export async function runExperimentJobs(runs: readonly ExperimentRun[], setting: Omit<RunSetting, 'train' | 'test'> & { data: string }, runner: JobRunner, onProgress?: (p: JobProgress) => void): Promise<ExperimentRow[]> {
  const jobs = runs.map((run): ExperimentRunJob => ({
    experiment: 'residual-perturbation', data: resolve(setting.data), members: setting.members, epochs: setting.epochs, seed: setting.seed,
    ...(setting.threads !== undefined ? { threads: setting.threads } : {}), toolVersion: setting.toolVersion, run,
  }));
  return runner.run<ExperimentRunJob, ExperimentRow>(jobs.map((data) => ({ id: experimentJobId(data), name: EXPERIMENT_RUN_JOB_NAME, data })), onProgress);
}
