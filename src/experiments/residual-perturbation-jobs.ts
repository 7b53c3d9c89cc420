/**
 * The residual-perturbation experiment's models as jobs (src/jobs), in the pattern of the audit's
 * shadow jobs (src/audit/shadow-jobs.ts): a job is plain JSON naming its data by folder and the
 * model to train (setting, recipe, seed, and for a shadow the pool positions it trains on);
 * `rp-onnx worker` loads the data once per folder and returns the model's bytes and its training
 * record. Equal jobs (the same id) are submitted once. The coordinator gets the results back in
 * job order; a job carries no model and no output of any other model.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { loadDataDir, type Dataset } from '../data/index.js';
import { RpOnnxError } from '../errors.js';
import { InProcessRunner } from '../jobs/in-process.js';
import type { JobHandler, JobProgress, JobRunner } from '../jobs/runner.js';
import { modelBytes, modelFromBytes } from '../audit/shadows.js';
import { IN_PROCESS_DATA, trainExperimentModel, type ModelSpec, type TrainedModel } from './residual-perturbation.js';

export const EXPERIMENT_MODEL_JOB_NAME = 'experiment-model';

export interface ExperimentModelJob extends ModelSpec {
  experiment: 'residual-perturbation';
  /** The data folder (train and test splits) as every worker sees it. */
  data: string;
}

/** A trained model as a job result: base64 ONNX bytes, seconds, and the DP record. */
export interface ExperimentModelResult {
  model: string;
  seconds: number;
  dp?: TrainedModel['dp'];
}

/** A stable id: the same model of the same setting has the same id (trained once; a queue reuses a finished job). */
export function experimentJobId(job: ExperimentModelJob): string {
  return `experiment-${createHash('sha256').update(JSON.stringify(job)).digest('hex').slice(0, 32)}`;
}

export interface ExperimentHandlerOptions {
  /** Splits already in memory (in-process use); otherwise loaded from the job's folder. */
  context?: { train: Dataset; test: Dataset };
}

/** The `experiment-model` job handler; it keeps the train split of the last folder it loaded. */
export function experimentModelHandler(o: ExperimentHandlerOptions = {}): JobHandler<ExperimentModelJob, ExperimentModelResult> {
  let cached: { data: string; train: Dataset } | undefined;
  return async (job) => {
    if (job.experiment !== 'residual-perturbation') throw new RpOnnxError(`experiment job: unknown experiment '${String(job.experiment)}'`);
    let train = o.context?.train;
    if (!train) {
      if (cached?.data !== job.data) {
        try {
          cached = { data: job.data, train: loadDataDir(job.data, { split: 'train' }) };
        } catch (e) {
          throw new RpOnnxError(`experiment job: cannot load the data folder ${job.data} on this machine (${(e as Error).message})`);
        }
      }
      train = cached.train;
    }
    const { experiment: _e, data: _d, ...spec } = job;
    const r = await trainExperimentModel(spec, train);
    return { model: Buffer.from(modelBytes(r.model)).toString('base64'), seconds: r.seconds, ...(r.dp ? { dp: r.dp } : {}) };
  };
}

/** The default runner: the in-process pool over splits already loaded. */
export function inProcessExperimentRunner(context: { train: Dataset; test: Dataset }): JobRunner {
  return new InProcessRunner({ [EXPERIMENT_MODEL_JOB_NAME]: experimentModelHandler({ context }) }, 1);
}

/** Trains every spec as a job (equal specs once) and returns the models in spec order. */
export async function trainModels(specs: readonly ModelSpec[], runner: JobRunner, data: string, onProgress?: (p: JobProgress) => void): Promise<TrainedModel[]> {
  const jobs = specs.map((s): ExperimentModelJob => ({ experiment: 'residual-perturbation', data: data === IN_PROCESS_DATA ? data : resolve(data), ...s }));
  const ids = jobs.map(experimentJobId);
  const unique = [...new Map(ids.map((id, i) => [id, i] as const)).entries()];
  const results = await runner.run<ExperimentModelJob, ExperimentModelResult>(unique.map(([id, i]) => ({ id, name: EXPERIMENT_MODEL_JOB_NAME, data: jobs[i]! })), onProgress);
  const byId = new Map<string, TrainedModel>(unique.map(([id], k) => {
    const r = results[k]!;
    return [id, { model: modelFromBytes(Buffer.from(r.model, 'base64'), `experiment model ${id}`), seconds: r.seconds, ...(r.dp ? { dp: r.dp } : {}) }];
  }));
  return ids.map((id) => byId.get(id)!);
}
