/**
 * The plan of a shadow-model audit: which examples are audited, what the shadows train on and
 * with which recipe, and the population RMIA compares against. Pure bookkeeping over loaded
 * splits; the CLI (cli/audit.ts) loads them, runs the jobs and calls auditMembership.
 *
 * - Members: `count` examples drawn (seeded) from those the target's training actually used (the
 *   record's bitmap; without one, every example of its training set, i.e. the first `examples`
 *   of the train split, as the old --limit took them).
 * - Non-members: from the test split (drawn, seeded), or with `nonMembersFrom: 'train'` the first
 *   `count` train-split examples training did not use, in file order (the setting of the
 *   literature's audits: members 0..N-1, non-members N..2N-1 of one split).
 * - Pool: members then non-members; each shadow trains on a random half (shadows.ts).
 * - Population (RMIA): test-split examples that are in neither side.
 */
import { resolve } from 'node:path';
import { subset, type Dataset, type Split } from '../data/index.js';
import { Random } from '../random.js';
import { RpOnnxError } from '../errors.js';
import { inclusionRows, shadowDraws, type PoolPart, type ShadowDraw, type ShadowJob, type ShadowTask } from './shadows.js';
import type { ShadowRecipe } from './training-record.js';

/** Which examples an audit with shadows uses (everything but the shadows' recipe and model). */
export interface AuditPoolInput {
  train: Dataset;
  trainDir: string;
  test: Dataset;
  testDir: string;
  /** Indices of the train split that training used. */
  used: readonly number[];
  /** Examples per side. */
  count?: number;
  nonMembersFrom?: Split;
  /** RMIA population size (default: the number of audited examples per side, as many as exist). */
  population?: number;
  shadows: number;
  seed: number;
}

export interface ShadowAuditPlanInput extends AuditPoolInput {
  recipe: ShadowRecipe;
  init: { path: string; sha256: string };
  threads: number;
}

/** The audited examples, the population and the shadows' draws over the pool (members then non-members). */
export interface AuditPool {
  members: Dataset;
  nonMembers: Dataset;
  population: Dataset;
  /** The pool as the shadow jobs name it: parts of data folders. */
  pool: PoolPart[];
  draws: ShadowDraw[];
  /** include[k][i] over the audited examples (members then non-members). */
  include: Uint8Array[];
  memberIndices: number[];
  nonMemberIndices: number[];
}

export interface ShadowAuditPlan extends Omit<AuditPool, 'pool' | 'draws'> {
  task: ShadowTask;
  jobs: ShadowJob[];
}

const sample = (from: readonly number[], n: number, rng: Random) => [...rng.permutation(from.length).subarray(0, n)].map((i) => from[i]!).sort((a, b) => a - b);

export function planAuditPool(p: AuditPoolInput): AuditPool {
  const rng = new Random(p.seed);
  const usedSet = new Set(p.used);
  const fromTrain = (p.nonMembersFrom ?? 'test') === 'train';
  const unused = fromTrain ? Array.from({ length: p.train.count }, (_, i) => i).filter((i) => !usedSet.has(i)) : [];
  const n = Math.min(p.count ?? Infinity, p.used.length, fromTrain ? unused.length : p.test.count);
  if (!(n >= 1)) {
    throw new RpOnnxError(fromTrain ? `no training example was left unused to serve as a non-member (${p.train.count} examples, ${p.used.length} used): use test-split non-members` : 'the audit needs at least one member and one non-member');
  }
  const memberIndices = sample(p.used, n, rng);
  const testAll = Array.from({ length: p.test.count }, (_, i) => i);
  const nonMemberIndices = fromTrain ? unused.slice(0, n) : sample(testAll, n, rng);
  const taken = new Set(fromTrain ? [] : nonMemberIndices);
  const free = testAll.filter((i) => !taken.has(i));
  const populationIndices = sample(free, Math.min(p.population ?? n, free.length), rng);
  const draws = shadowDraws(p.shadows, 2 * n, p.seed);
  return {
    members: subset(p.train, memberIndices, `${p.train.name}[members]`),
    nonMembers: subset(fromTrain ? p.train : p.test, nonMemberIndices, `${fromTrain ? p.train.name : p.test.name}[non-members]`),
    population: subset(p.test, populationIndices, `${p.test.name}[population]`),
    pool: [
      { dir: resolve(p.trainDir), split: 'train', indices: memberIndices },
      { dir: resolve(fromTrain ? p.trainDir : p.testDir), split: fromTrain ? 'train' : 'test', indices: nonMemberIndices },
    ],
    draws, include: inclusionRows(draws, 2 * n), memberIndices, nonMemberIndices,
  };
}

export function planShadowAudit(p: ShadowAuditPlanInput): ShadowAuditPlan {
  const { pool, draws, ...rest } = planAuditPool(p);
  const task: ShadowTask = { init: p.init, pool, recipe: p.recipe, threads: p.threads };
  return { ...rest, task, jobs: draws.map((d) => ({ task, ...d })) };
}
