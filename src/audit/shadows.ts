/**
 * Shadow (reference) models for the LiRA-online and RMIA attacks (Carlini et al. 2022;
 * Zarifzadeh et al. 2024): K models, each trained with the target's recipe from the target's
 * initial weights on a random half of a pool that holds the audited members and non-members,
 * so that every audited example is IN for about K/2 shadows and OUT for the rest.
 *
 * A shadow is a job: a plain JSON value (`ShadowJob`) that names its data by folder, split and
 * indices and its starting model by path and SHA-256, so any process with the package and the
 * data can train it (the in-process pool, or `rp-onnx worker` over a queue). Training is
 * deterministic given the job: the shuffling seed and the noise seed of perturbation nodes come
 * from the job's seed, and the onnxruntime thread count is part of the job (reductions split
 * across a different number of threads round differently).
 *
 * The target model never enters a shadow: shadows start from INIT, see only the pool subset
 * the inclusion matrix gives them, and the audit queries the target separately.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Model } from '../graph/ir.js';
import { decodeModel, encodeModel } from '../graph/io.js';
import { fit } from '../train/fit.js';
import { loadDataDir, subset, type Dataset, type Split } from '../data/index.js';
import { Random } from '../random.js';
import { RpOnnxError } from '../errors.js';
import type { ShadowRecipe } from './training-record.js';

/** One part of the pool: examples `indices` of `split` of the data folder `dir`. */
export interface PoolPart {
  dir: string;
  split: Split;
  indices: number[];
}

/** What every shadow of one audit shares: the starting model and the pool. */
export interface ShadowTask {
  init: { path: string; sha256: string };
  /** The pool is the concatenation of the parts, in order. */
  pool: PoolPart[];
  recipe: ShadowRecipe;
  /** onnxruntime intra-op threads per shadow (part of the result: see the file comment). */
  threads: number;
}

export interface ShadowJob extends ShadowDraw {
  task: ShadowTask;
}

/** The loaded inputs of a task (cached by whoever trains many of its jobs). */
export interface ShadowContext {
  init: Model;
  pool: Dataset;
}

export const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

/**
 * Balanced inclusion: for every pool example an independent random half of the K shadows
 * includes it (K odd: floor or ceil of K/2 by a fair coin), as in Carlini et al.'s code.
 * Returns `include[k][i]` = 1 when shadow k trains on pool example i.
 */
export function inclusionMatrix(shadows: number, poolSize: number, seed: number): Uint8Array[] {
  if (!(Number.isInteger(shadows) && shadows >= 2)) throw new RpOnnxError(`shadows must be an integer >= 2, got ${shadows}`);
  const rng = new Random(seed);
  const m = Array.from({ length: shadows }, () => new Uint8Array(poolSize));
  for (let i = 0; i < poolSize; i++) {
    const order = rng.permutation(shadows);
    const half = shadows % 2 === 0 ? shadows / 2 : (shadows - 1) / 2 + (rng.uniform() < 0.5 ? 1 : 0);
    for (let j = 0; j < half; j++) m[order[j]!]![i] = 1;
  }
  return m;
}

/** What one shadow of K gets: its index, its training seed and the pool positions it trains on. */
export interface ShadowDraw {
  index: number;
  seed: number;
  /** Pool positions this shadow trains on, ascending. */
  include: number[];
}

/** The K shadows' draws over a pool (the inclusion matrix, then a seed per shadow from (seed, index)). */
export function shadowDraws(shadows: number, poolSize: number, seed: number): ShadowDraw[] {
  const m = inclusionMatrix(shadows, poolSize, seed);
  const seeds = new Random((seed ^ 0x5eed) >>> 0);
  return m.map((row, index) => ({ index, seed: seeds.int(2 ** 31), include: [...row.keys()].filter((i) => row[i] === 1) }));
}

/** include[k][i] = 1 when draw k trains on pool position i (the form auditMembership takes). */
export function inclusionRows(draws: readonly ShadowDraw[], poolSize: number): Uint8Array[] {
  return draws.map((d) => {
    const row = new Uint8Array(poolSize);
    for (const i of d.include) row[i] = 1;
    return row;
  });
}

/** A stable key of a job (its JSON with sorted keys, hashed): artifacts and results are keyed by it. */
export function jobKey(job: ShadowJob): string {
  const sorted = (v: unknown): unknown => (Array.isArray(v) ? v.map(sorted) : v && typeof v === 'object'
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])])) : v);
  return sha256(JSON.stringify(sorted(job))).slice(0, 32);
}

function concat(parts: Dataset[]): Dataset {
  if (parts.length === 1) return parts[0]!;
  const count = parts.reduce((s, p) => s + p.count, 0);
  const images = new Float32Array(parts.reduce((s, p) => s + p.images.length, 0));
  const labels = new Int32Array(count);
  let io = 0;
  let lo = 0;
  for (const p of parts) {
    if (p.shape.join() !== parts[0]!.shape.join()) throw new RpOnnxError(`shadow pool parts have shapes [${parts[0]!.shape.join(', ')}] and [${p.shape.join(', ')}]`);
    images.set(p.images, io);
    labels.set(p.labels, lo);
    io += p.images.length;
    lo += p.count;
  }
  return { ...parts[0]!, images, labels, count, classes: Math.max(...parts.map((p) => p.classes)), name: parts.map((p) => p.name).join('+') };
}

/** Builds the pool from in-memory splits (the caller already loaded them). */
export function poolFrom(task: Pick<ShadowTask, 'pool'>, load: (dir: string, split: Split) => Dataset): Dataset {
  return concat(task.pool.map((p) => subset(load(p.dir, p.split), p.indices, `${p.dir}/${p.split}[pool]`)));
}

/** Loads a task's model and pool from disk, checking the model's hash. */
export function loadShadowContext(task: ShadowTask): ShadowContext {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(task.init.path);
  } catch {
    throw new RpOnnxError(`shadow job: cannot read the initial model ${task.init.path} on this machine`);
  }
  if (sha256(bytes) !== task.init.sha256) throw new RpOnnxError(`shadow job: ${task.init.path} differs from the initial model the audit named (SHA-256 mismatch)`);
  const splits = new Map<string, Dataset>();
  const load = (dir: string, split: Split) => {
    const key = `${dir}\0${split}`;
    if (!splits.has(key)) splits.set(key, loadDataDir(dir, { split }));
    return splits.get(key)!;
  };
  return { init: Model.fromProto(decodeModel(bytes, task.init.path)), pool: poolFrom(task, load) };
}

/** Trains one shadow through the library's `fit` with the task's recipe. */
export async function trainShadow(job: ShadowJob, ctx: ShadowContext, signal?: AbortSignal): Promise<Model> {
  const r = job.task.recipe;
  const train = subset(ctx.pool, job.include, `shadow-${job.index}`);
  // A fresh copy of the initial model: fit must not share tensors between concurrent shadows.
  const init = Model.fromProto(decodeModel(encodeModel(ctx.init.toProto()), 'init'));
  const result = await fit(init, train, undefined, {
    ...(r.epochs !== undefined ? { epochs: r.epochs } : { steps: r.steps }),
    batchSize: r.batchSize, lr: r.lr, optimizer: r.optimizer, momentum: r.momentum, weightDecay: r.weightDecay,
    schedule: r.schedule, batchNorm: r.batchNorm, shuffle: r.shuffle, seed: job.seed, noiseSeed: job.seed,
    threads: job.task.threads, signal,
  });
  if (result.interrupted) throw new RpOnnxError(`shadow ${job.index} was interrupted`, { exitCode: 130 });
  return result.model;
}

export const modelBytes = (m: Model): Uint8Array => encodeModel(m.toProto());
export const modelFromBytes = (b: Uint8Array, source = 'shadow model'): Model => Model.fromProto(decodeModel(b, source));
