/**
 * Shadow models as jobs (src/jobs): the handler a worker runs for a `train-shadow` job, and the
 * coordinator side that submits a task's jobs to a runner and turns the results into models.
 *
 * With an artifacts folder, every shadow is a file named by its job key; a shadow whose file
 * exists is loaded instead of trained again (an interrupted audit resumes, and a second attack
 * on the same setting costs nothing), and workers that share the folder return the file's name
 * instead of the model's bytes through Redis.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Model } from '../graph/ir.js';
import { writeFileAtomic } from '../fs-atomic.js';
import { RpOnnxError } from '../errors.js';
import type { JobHandler, JobProgress, JobRunner } from '../jobs/runner.js';
import { jobKey, loadShadowContext, modelBytes, modelFromBytes, sha256, trainShadow, type ShadowContext, type ShadowJob, type ShadowTask } from './shadows.js';

export const SHADOW_JOB_NAME = 'train-shadow';

/** A trained shadow, as a job result: base64 ONNX bytes, or a file in the artifacts folder. */
export type ShadowResult = { model: string } | { artifact: string };

export const artifactName = (job: ShadowJob) => `shadow-${job.index}-${jobKey(job)}.onnx`;

export interface ShadowHandlerOptions {
  /** Write models here and return their names (a folder every process can read). */
  artifacts?: string;
  /** Inputs already in memory (library use); otherwise loaded from the task's paths. */
  context?: ShadowContext;
}

/** The `train-shadow` job handler; it loads each task's inputs once. */
export function shadowJobHandler(o: ShadowHandlerOptions = {}): JobHandler<ShadowJob, ShadowResult> {
  const contexts = new Map<string, ShadowContext>();
  return async (job) => {
    const taskKey = sha256(JSON.stringify(job.task));
    let ctx = o.context ?? contexts.get(taskKey);
    if (!ctx) {
      ctx = loadShadowContext(job.task);
      contexts.clear();
      contexts.set(taskKey, ctx);
    }
    const model = await trainShadow(job, ctx);
    const bytes = modelBytes(model);
    if (o.artifacts) {
      mkdirSync(o.artifacts, { recursive: true });
      writeFileAtomic(join(o.artifacts, artifactName(job)), bytes);
      return { artifact: artifactName(job) };
    }
    return { model: Buffer.from(bytes).toString('base64') };
  };
}

export interface TrainShadowsOptions {
  runner: JobRunner;
  artifacts?: string;
  onProgress?: (p: JobProgress) => void;
}

/** Trains (or loads from artifacts) every job's shadow; models in job order. */
export async function trainShadowModels(jobs: readonly ShadowJob[], o: TrainShadowsOptions): Promise<Model[]> {
  const models = new Array<Model | undefined>(jobs.length);
  const todo: number[] = [];
  jobs.forEach((job, i) => {
    const file = o.artifacts ? join(o.artifacts, artifactName(job)) : undefined;
    if (file && existsSync(file)) models[i] = modelFromBytes(readFileSync(file), file);
    else todo.push(i);
  });
  const cached = jobs.length - todo.length;
  o.onProgress?.({ done: cached, total: jobs.length, retried: 0 });
  const results = await o.runner.run<ShadowJob, ShadowResult>(
    todo.map((i) => ({ id: `shadow-${jobs[i]!.index}-${jobKey(jobs[i]!)}`, name: SHADOW_JOB_NAME, data: jobs[i]! })),
    (p) => o.onProgress?.({ ...p, done: p.done + cached, total: jobs.length }),
  );
  results.forEach((r, k) => {
    const i = todo[k]!;
    if ('artifact' in r) {
      if (!o.artifacts) throw new RpOnnxError('a worker wrote its model to its --artifacts folder but this audit has none: give the audit the same --artifacts', { exitCode: 1 });
      const file = join(o.artifacts, r.artifact);
      models[i] = modelFromBytes(readFileSync(file), file);
    } else {
      const bytes = Buffer.from(r.model, 'base64');
      models[i] = modelFromBytes(bytes);
      if (o.artifacts) {
        mkdirSync(o.artifacts, { recursive: true });
        writeFileAtomic(join(o.artifacts, artifactName(jobs[i]!)), bytes);
      }
    }
  });
  return models as Model[];
}
