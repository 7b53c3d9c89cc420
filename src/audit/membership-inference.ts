/**
 * Membership-inference audit. The model is queried as deployed: for a perturbed model every
 * query is a fresh noisy pass (the runtime seeds its random ops per session), and with
 * `samples` > 1 the logits of that many passes are averaged, as `rp-onnx predict --samples` does.
 * Members (examples the model was trained on) and non-members (held out) are balanced: the same
 * number from each, drawn with a seeded generator.
 *
 * Threshold attacks score each example from the model's output alone (higher = member):
 * - loss (Yeom et al. 2018): -cross-entropy;
 * - confidence (Yeom et al.): softmax probability of the true class;
 * - max-confidence: the largest softmax probability (needs no label);
 * - entropy: -entropy of the softmax (needs no label);
 * - modified-entropy (Song & Mittal 2021): -[-(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i)].
 * The offline reference-model attack (LiRA-offline, Carlini et al. 2022) compares each example's
 * logit-scaled confidence phi = log(p_y / (1 - p_y)) under the target with its distribution under
 * reference models trained without it (OUT models): a Gaussian N(mu, sigma^2) is fitted to the
 * reference values and the score is the one-sided likelihood ratio's monotone form
 * (phi - mu) / sigma (Lambda = Phi((phi - mu) / sigma)). With fewer than 16 reference models the
 * variance is pooled over examples (the paper's fixed-variance variant).
 * With shadow models (src/audit/shadows.ts: each trained on a random half of a pool made of the
 * audited members and non-members) come the strong attacks: lira-online (IN and OUT Gaussians
 * per example, src/audit/attacks/lira.ts), rmia (src/audit/attacks/rmia.ts, against a
 * population of examples no model trained on), and lira-offline from the OUT shadows when no
 * separate reference models are given. The target's outputs never enter the shadow statistics:
 * the shadows are queried on their own and the target only supplies the value being tested.
 * Each attack's metrics come from src/audit/attack-metrics.ts.
 */
import type { Model } from '../graph/ir.js';
import { predict } from '../runtime/predict.js';
import type { NoiseSeed } from '../runtime/noise-seeding.js';
import type { ExecutionProvider } from '../runtime/session.js';
import { attackMetrics, rocCurve, type AttackMetrics, type RocPoint } from './attack-metrics.js';
import { subset, type Dataset } from '../data/index.js';
import { Random } from '../random.js';
import { RpOnnxError } from '../errors.js';
import { liraOfflineShadowScores, liraOnlineScores, type VarianceMode } from './attacks/lira.js';
import { rmiaScores } from './attacks/rmia.js';
import { queryViews, type Augmentation } from './attacks/augment.js';

/** What the audit computes per example from the (averaged) logits. */
export interface ExampleStats {
  loss: number;
  correct: boolean;
  trueProb: number;
  maxProb: number;
  entropy: number;
  modifiedEntropy: number;
  /** log(p_y / (1 - p_y)), computed from logits without cancellation. */
  phi: number;
}

export interface ThresholdAttack {
  description: string;
  score: (e: ExampleStats) => number;
}

/** The threshold attacks, by name (the registry the CLI's --attacks reads). */
export const THRESHOLD_ATTACKS = {
  loss: { description: 'low cross-entropy loss means member (Yeom et al. 2018)', score: (e) => -e.loss },
  confidence: { description: 'high true-class probability means member (Yeom et al. 2018)', score: (e) => e.trueProb },
  'max-confidence': { description: 'high top softmax probability means member (no label needed)', score: (e) => e.maxProb },
  entropy: { description: 'low prediction entropy means member (no label needed)', score: (e) => -e.entropy },
  'modified-entropy': { description: 'low modified entropy means member (Song & Mittal 2021)', score: (e) => -e.modifiedEntropy },
} as const satisfies Record<string, ThresholdAttack>;

export type ThresholdAttackName = keyof typeof THRESHOLD_ATTACKS;
export type ShadowAttackName = 'lira-online' | 'rmia';
export type AttackName = ThresholdAttackName | 'lira-offline' | ShadowAttackName;
export const THRESHOLD_ATTACK_NAMES = Object.keys(THRESHOLD_ATTACKS) as ThresholdAttackName[];
/** Attacks that need shadow models trained on halves of the audited pool. */
export const SHADOW_ATTACK_NAMES: readonly ShadowAttackName[] = ['lira-online', 'rmia'];
export const ATTACKS: readonly AttackName[] = [...THRESHOLD_ATTACK_NAMES, 'lira-offline', ...SHADOW_ATTACK_NAMES];

/**
 * Shadow models for lira-online, rmia (and lira-offline without separate reference models).
 * `include[k][i]` = 1 when shadow k trained on audited example i, where the audited examples
 * are the members followed by the non-members, exactly as given (no further sampling).
 */
export interface ShadowModels {
  models: readonly Model[];
  include: readonly ArrayLike<number>[];
  /** LiRA's variance fit (default 'auto': global below 64 shadows). */
  variance?: VarianceMode;
}

/** Reference (OUT) models for the LiRA-offline attack: given, or trained through a callback. */
export interface ReferenceOptions {
  /** Models trained on data disjoint from every audited example. */
  models?: readonly Model[];
  /** Trains one reference model on `ds` (called `count` times, each on a fresh draw from `pool`). */
  train?: (ds: Dataset, index: number) => Promise<Model>;
  /** How many to train (default 4). */
  count?: number;
  /** Data disjoint from members and non-members to draw reference training sets from. */
  pool?: Dataset;
  /** Examples per reference training set (default: half the pool). */
  size?: number;
}

export interface AuditOptions {
  /** Examples the model was trained on. */
  members: Dataset;
  /** Held-out examples from the same distribution. */
  nonMembers: Dataset;
  /** Examples per side (default: the smaller of the two sets). */
  count?: number;
  /** Stochastic passes whose logits are averaged per query (default 1). */
  samples?: number;
  /** Default: every threshold attack, plus lira-offline when `reference` is given. */
  attacks?: readonly AttackName[];
  /** delta of the empirical epsilon lower bound. */
  delta: number;
  /** Seed for choosing the audited examples (default 0). */
  seed?: number;
  /** Seeds of the model's noise (default 'secure', as deployed). */
  noiseSeed?: NoiseSeed;
  threads?: number;
  executionProvider?: ExecutionProvider;
  /** Examples per onnxruntime run (default 256). */
  batch?: number;
  reference?: ReferenceOptions;
  /** Fraction of the audit's queries done (the audited model's, then each reference model's). */
  onProgress?: (fraction: number) => void;
  shadows?: ShadowModels;
  /** RMIA's population: examples neither the target nor any shadow trained on. */
  population?: Dataset;
  /** RMIA's gamma (default 1). */
  rmiaGamma?: number;
  /** Extra queries per example for the shadow attacks (default 'none'). */
  augment?: Augmentation;
}

export interface AttackResult extends AttackMetrics {
  attack: AttackName;
  roc: RocPoint[];
}

export interface AuditReport {
  members: number;
  nonMembers: number;
  samples: number;
  /** Accuracy on the audited members and non-members. */
  trainAccuracy: number;
  testAccuracy: number;
  generalizationGap: number;
  attacks: AttackResult[];
  /** Per-example cross-entropy, for histograms. */
  memberLosses: number[];
  nonMemberLosses: number[];
  delta: number;
  /** Reference models used by lira-offline, and how their variance was fitted. */
  reference?: { models: number; variance: 'per-example' | 'pooled' };
  /** The shadow models of lira-online / rmia: how many, LiRA's variance fit, queries, population. */
  shadows?: { models: number; variance: 'global' | 'per-example'; queries: Augmentation; population: number };
}

/** Per-example statistics from logits [n, k] (row-major) and labels. */
export function exampleStats(logits: ArrayLike<number>, labels: ArrayLike<number>, n: number): ExampleStats[] {
  const k = logits.length / n;
  if (!Number.isInteger(k) || k < 2) throw new RpOnnxError(`membership inference needs logits [n, classes >= 2]; got ${logits.length} values for ${n} examples`);
  const out: ExampleStats[] = [];
  const z = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    let arg = 0;
    for (let j = 0; j < k; j++) {
      z[j] = logits[i * k + j]!;
      if (z[j]! > max) { max = z[j]!; arg = j; }
    }
    const y = labels[i]!;
    let sum = 0;
    let sumOthers = 0;
    let maxOthers = -Infinity;
    for (let j = 0; j < k; j++) if (j !== y) maxOthers = Math.max(maxOthers, z[j]!);
    for (let j = 0; j < k; j++) {
      sum += Math.exp(z[j]! - max);
      if (j !== y) sumOthers += Math.exp(z[j]! - maxOthers);
    }
    const logZ = max + Math.log(sum);
    let entropy = 0;
    let modifiedEntropy = 0;
    for (let j = 0; j < k; j++) {
      const logP = z[j]! - logZ;
      const p = Math.exp(logP);
      if (p > 0) entropy -= p * logP;
      if (j === y) modifiedEntropy -= (1 - p) * logP;
      else if (p > 0) modifiedEntropy -= p * Math.log1p(-Math.min(p, 1 - 1e-16));
    }
    const phi = z[y]! - (maxOthers + Math.log(sumOthers));
    out.push({
      // -log p_y = log(1 + e^-phi): keeps the tiny losses of confident members distinct (logZ - z_y
      // rounds them to 0 once the margin exceeds ~37).
      loss: phi > 0 ? Math.log1p(Math.exp(-phi)) : -phi + Math.log1p(Math.exp(phi)),
      correct: arg === y,
      trueProb: Math.exp(z[y]! - logZ),
      maxProb: Math.exp(max - logZ),
      entropy,
      modifiedEntropy,
      phi,
    });
  }
  return out;
}

/**
 * LiRA-offline scores (phi - mu) / sigma of each example from its target phi and its phi under R
 * OUT reference models (`reference[r][i]`). Per-example sigma with >= 16 models, else pooled.
 */
export function liraOfflineScores(target: ArrayLike<number>, reference: readonly ArrayLike<number>[]): { scores: number[]; variance: 'per-example' | 'pooled' } {
  const r = reference.length;
  if (r < 2) throw new RpOnnxError(`the lira-offline attack needs at least 2 reference models, got ${r}`);
  const n = target.length;
  const mu = new Float64Array(n);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (const ref of reference) s += ref[i]!;
    mu[i] = s / r;
    let ss = 0;
    for (const ref of reference) ss += (ref[i]! - mu[i]!) ** 2;
    v[i] = ss / (r - 1);
  }
  const variance = r >= 16 ? 'per-example' : 'pooled';
  const pooled = v.reduce((a, b) => a + b, 0) / n;
  const floor = 1e-12;
  const scores = Array.from({ length: n }, (_, i) => (target[i]! - mu[i]!) / Math.sqrt(Math.max(variance === 'pooled' ? pooled : v[i]!, floor)));
  return { scores, variance };
}

function pick(ds: Dataset, n: number, rng: Random): Dataset {
  if (n >= ds.count) return ds;
  return subset(ds, [...rng.permutation(ds.count).subarray(0, n)].sort((a, b) => a - b));
}

/** Concatenates two datasets with the same example shape. */
function concat(a: Dataset, b: Dataset): Dataset {
  const images = new Float32Array(a.images.length + b.images.length);
  images.set(a.images);
  images.set(b.images, a.images.length);
  const labels = new Int32Array(a.count + b.count);
  labels.set(a.labels);
  labels.set(b.labels, a.count);
  return { ...a, images, labels, count: a.count + b.count, name: `${a.name}+${b.name}` };
}

async function queryStats(model: Model, ds: Dataset, opts: AuditOptions, onProgress?: (fraction: number) => void): Promise<ExampleStats[]> {
  const r = await predict([model], { data: ds.images, count: ds.count, shape: ds.shape, labels: ds.labels }, {
    samples: opts.samples ?? 1, batch: opts.batch ?? 256, threads: opts.threads, noiseSeed: opts.noiseSeed, executionProvider: opts.executionProvider,
    onProgress: onProgress && ((done, total) => onProgress(done / total)),
  });
  if (r.classes < ds.classes) {
    throw new RpOnnxError(`the model outputs ${r.classes} classes but the data has labels up to ${ds.classes - 1}`);
  }
  return exampleStats(r.logits, ds.labels, ds.count);
}

/** phi of every query view (the examples, then their augmentations): [view][example]. */
async function queryPhis(model: Model, views: readonly Dataset[], opts: AuditOptions): Promise<number[][]> {
  const out: number[][] = [];
  for (const v of views) out.push((await queryStats(model, v, opts)).map((e) => e.phi));
  return out;
}

async function referenceModels(ref: ReferenceOptions, rng: Random): Promise<readonly Model[]> {
  if (ref.models) return ref.models;
  if (!ref.train || !ref.pool) throw new RpOnnxError('the lira-offline attack needs reference models, or a train callback and a pool of data disjoint from the audited examples');
  const count = ref.count ?? 4;
  const size = ref.size ?? Math.floor(ref.pool.count / 2);
  if (!(size >= 1 && size <= ref.pool.count)) throw new RpOnnxError(`reference training sets of ${size} examples cannot be drawn from a pool of ${ref.pool.count}`);
  const models: Model[] = [];
  for (let i = 0; i < count; i++) models.push(await ref.train(pick(ref.pool, size, rng), i));
  return models;
}

function checkShadows(sh: ShadowModels, n: number): void {
  if (sh.models.length < 2) throw new RpOnnxError(`the shadow-model attacks need at least 2 shadow models, got ${sh.models.length}`);
  if (sh.include.length !== sh.models.length) throw new RpOnnxError(`${sh.models.length} shadow models but ${sh.include.length} inclusion rows`);
  for (const row of sh.include) if (row.length !== 2 * n) throw new RpOnnxError(`shadow inclusion rows must cover the ${2 * n} audited examples (members then non-members), got ${row.length}`);
}

/** Every attack the options can run: the threshold attacks, plus what the models at hand allow. */
export function availableAttacks(opts: Pick<AuditOptions, 'reference' | 'shadows' | 'population'>): AttackName[] {
  return [
    ...THRESHOLD_ATTACK_NAMES,
    ...(opts.reference || opts.shadows ? ['lira-offline' as const] : []),
    ...(opts.shadows ? ['lira-online' as const] : []),
    ...(opts.shadows && opts.population ? ['rmia' as const] : []),
  ];
}

export async function auditMembership(model: Model, opts: AuditOptions): Promise<AuditReport> {
  if (opts.members.shape.join() !== opts.nonMembers.shape.join()) {
    throw new RpOnnxError(`members have shape [${opts.members.shape.join(', ')}] but non-members [${opts.nonMembers.shape.join(', ')}]`);
  }
  const attacks = opts.attacks ?? availableAttacks(opts);
  for (const a of attacks) if (!ATTACKS.includes(a)) throw new RpOnnxError(`unknown attack '${a}' (choose from ${ATTACKS.join(', ')})`);
  if (attacks.includes('lira-offline') && !opts.reference && !opts.shadows) throw new RpOnnxError('the lira-offline attack needs reference models (--reference) or shadow models (--shadows)');
  for (const a of SHADOW_ATTACK_NAMES) if (attacks.includes(a) && !opts.shadows) throw new RpOnnxError(`the ${a} attack needs shadow models (--shadows)`);
  if (attacks.includes('rmia') && !opts.population) throw new RpOnnxError('the rmia attack needs population examples that no model trained on');
  const rng = new Random(opts.seed ?? 0);
  let members: Dataset;
  let nonMembers: Dataset;
  let n: number;
  if (opts.shadows) {
    // The shadows were trained on halves of exactly these examples: no sampling here.
    n = opts.members.count;
    if (opts.nonMembers.count !== n || (opts.count !== undefined && opts.count !== n)) {
      throw new RpOnnxError(`with shadow models the audit takes the members and non-members as given: ${opts.members.count} members, ${opts.nonMembers.count} non-members`);
    }
    checkShadows(opts.shadows, n);
    members = opts.members;
    nonMembers = opts.nonMembers;
  } else {
    n = Math.min(opts.count ?? Infinity, opts.members.count, opts.nonMembers.count);
    members = pick(opts.members, n, rng);
    nonMembers = pick(opts.nonMembers, n, rng);
  }
  if (!(n >= 1)) throw new RpOnnxError('the audit needs at least one member and one non-member');
  const audited = concat(members, nonMembers);
  // Progress in query units: the audited model, then each reference model (when known).
  const queries = 1 + (attacks.includes('lira-offline') && opts.reference ? opts.reference.models?.length ?? opts.reference.count ?? 4 : 0);
  const part = (q: number) => opts.onProgress && ((f: number) => opts.onProgress!(Math.min(1, (q + f) / queries)));
  const stats = await queryStats(model, audited, opts, part(0));
  const m = stats.slice(0, n);
  const o = stats.slice(n);

  // Shadow statistics: computed from the shadows alone (the target only enters as the tested value).
  const augment = opts.augment ?? 'none';
  let shadowPhis: number[][][] | undefined;
  let targetPhis: number[][] | undefined;
  let population: { target: number[][]; shadows: number[][][] } | undefined;
  if (opts.shadows && attacks.some((a) => a === 'lira-online' || a === 'rmia' || (a === 'lira-offline' && !opts.reference))) {
    const views = queryViews(audited, augment);
    targetPhis = [stats.map((e) => e.phi), ...(await queryPhis(model, views.slice(1), opts))];
    shadowPhis = [];
    for (const s of opts.shadows.models) shadowPhis.push(await queryPhis(s, views, opts));
    if (attacks.includes('rmia')) {
      const pviews = queryViews(opts.population!, augment);
      population = { target: await queryPhis(model, pviews, opts), shadows: [] };
      for (const s of opts.shadows.models) population.shadows.push(await queryPhis(s, pviews, opts));
    }
  }

  const results: AttackResult[] = [];
  let reference: AuditReport['reference'];
  let shadowInfo: AuditReport['shadows'];
  const split = (scores: number[]) => [scores.slice(0, n), scores.slice(n)] as const;
  for (const attack of attacks) {
    let ms: readonly number[];
    let os: readonly number[];
    if (attack === 'lira-offline' && opts.reference) {
      const refs = await referenceModels(opts.reference, rng.fork());
      const phis: number[][] = [];
      for (const [q, r] of refs.entries()) phis.push((await queryStats(r, audited, opts, part(1 + q))).map((e) => e.phi));
      const lira = liraOfflineScores(stats.map((e) => e.phi), phis);
      reference = { models: refs.length, variance: lira.variance };
      [ms, os] = split(lira.scores);
    } else if (attack === 'lira-offline' || attack === 'lira-online') {
      const f = attack === 'lira-online' ? liraOnlineScores : liraOfflineShadowScores;
      const lira = f(targetPhis!, shadowPhis!, opts.shadows!.include, opts.shadows!.variance ?? 'auto');
      shadowInfo = { models: opts.shadows!.models.length, variance: lira.variance, queries: augment, population: opts.population?.count ?? 0 };
      [ms, os] = split(lira.scores);
    } else if (attack === 'rmia') {
      [ms, os] = split(rmiaScores({ target: targetPhis!, shadows: shadowPhis!, populationTarget: population!.target, populationShadows: population!.shadows, gamma: opts.rmiaGamma }));
      shadowInfo ??= { models: opts.shadows!.models.length, variance: 'global', queries: augment, population: opts.population!.count };
    } else {
      const score = THRESHOLD_ATTACKS[attack].score;
      ms = m.map(score);
      os = o.map(score);
    }
    results.push({ attack, ...attackMetrics(ms, os, opts.delta, { comparisons: attacks.length, seed: opts.seed ?? 0 }), roc: rocCurve(ms, os) });
  }
  const accuracy = (s: ExampleStats[]) => s.filter((e) => e.correct).length / s.length;
  const trainAccuracy = accuracy(m);
  const testAccuracy = accuracy(o);
  return {
    members: n, nonMembers: n, samples: opts.samples ?? 1, trainAccuracy, testAccuracy,
    generalizationGap: trainAccuracy - testAccuracy, attacks: results,
    memberLosses: m.map((e) => e.loss), nonMemberLosses: o.map((e) => e.loss), delta: opts.delta,
    ...(reference ? { reference } : {}),
    ...(shadowInfo ? { shadows: { ...shadowInfo, population: opts.population?.count ?? 0 } } : {}),
  };
}
