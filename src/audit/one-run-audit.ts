/**
 * The one-run audit of Steinke, Nasr and Jagielski (2023, "Privacy Auditing with One (1) Training
 * Run"): m canaries, each included in the training set independently with probability 1/2; after
 * training every canary is scored (its loss under the trained model), the auditor guesses "IN" for
 * the k+ highest-scoring, "OUT" for the k- lowest and abstains on the rest (the least confident).
 * With r = k+ + k- guesses of which v are correct, an (eps, delta)-DP training algorithm gives
 *   P[v' >= v] <= P[Binomial(r, q) >= v] + 2 m delta max_{i = 1..v} P[v - i <= Binomial(r, q) < v] / i,
 *   q = e^eps / (1 + e^eps)
 * (their Theorem 5.2 and the procedure of their Appendix D), so the largest eps whose bound is
 * below 1 - confidence is a lower bound on the algorithm's epsilon at that confidence. The guess
 * counts must be fixed before the scores are seen (they are options here, never tuned on them).
 *
 * Canaries (default): training examples with a wrong label drawn uniformly from the other
 * classes, so the model can only fit them by memorising; option 'ood': uniform-noise inputs with
 * random labels. Both are scored with their canary label.
 */
import type { Model } from '../graph/ir.js';
import { exampleSize, makeDataset, type Dataset } from '../data/index.js';
import { predict } from '../runtime/predict.js';
import { Random } from '../random.js';
import { RpOnnxError } from '../errors.js';
import { exampleStats } from './membership-inference.js';

/** log of the Binomial(r, q) pmf at 0..r. */
function binomialLogPmf(r: number, q: number): Float64Array {
  const out = new Float64Array(r + 1);
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  let logC = 0;
  for (let k = 0; k <= r; k++) {
    if (k > 0) logC += Math.log((r - k + 1) / k);
    out[k] = logC + (k === 0 ? 0 : k * lq) + (k === r ? 0 : (r - k) * l1q);
  }
  return out;
}

function logSumExp(xs: ArrayLike<number>, from: number, to: number): number {
  let max = -Infinity;
  for (let i = from; i < to; i++) max = Math.max(max, xs[i]!);
  if (max === -Infinity) return -Infinity;
  let s = 0;
  for (let i = from; i < to; i++) s += Math.exp(xs[i]! - max);
  return max + Math.log(s);
}

/**
 * The p-value of v or more correct guesses out of r among m canaries under (eps, delta)-DP
 * (the file comment's bound, capped at 1).
 */
export function oneRunPValue(m: number, r: number, v: number, eps: number, delta: number): number {
  if (!(Number.isInteger(m) && Number.isInteger(r) && Number.isInteger(v) && v >= 0 && v <= r && r <= m)) {
    throw new RpOnnxError(`one-run audit needs integers 0 <= correct (${v}) <= guesses (${r}) <= canaries (${m})`);
  }
  if (!(eps >= 0) || !(delta >= 0 && delta <= 1)) throw new RpOnnxError(`one-run audit: eps must be >= 0 and delta in [0, 1], got ${eps}, ${delta}`);
  const q = 1 / (1 + Math.exp(-eps));
  const lp = binomialLogPmf(r, q);
  const tail = Math.exp(logSumExp(lp, v, r + 1));
  if (delta === 0 || v === 0) return Math.min(1, tail);
  let alpha = 0;
  let below = 0; // P[v - i <= Bin < v]
  for (let i = 1; i <= v; i++) {
    below += Math.exp(lp[v - i]!);
    alpha = Math.max(alpha, below / i);
  }
  return Math.min(1, tail + 2 * m * delta * alpha);
}

/** The largest eps (bisection to 1e-6) whose p-value stays below 1 - confidence; 0 if none. */
export function oneRunEpsilonLowerBound(m: number, r: number, v: number, delta: number, confidence = 0.95): number {
  if (!(confidence > 0 && confidence < 1)) throw new RpOnnxError(`confidence must lie in (0, 1), got ${confidence}`);
  const beta = 1 - confidence;
  if (oneRunPValue(m, r, v, 0, delta) >= beta) return 0;
  let lo = 0;
  let hi = 1;
  while (oneRunPValue(m, r, v, hi, delta) < beta && hi < 100) { lo = hi; hi *= 2; }
  while (hi - lo > 1e-6) {
    const mid = (lo + hi) / 2;
    if (oneRunPValue(m, r, v, mid, delta) < beta) lo = mid;
    else hi = mid;
  }
  return lo;
}

export type CanaryKind = 'mislabel' | 'ood';

export interface Canaries {
  /** The canary examples with their canary labels. */
  data: Dataset;
  /** included[j]: canary j was put into the training set (independently, probability 1/2). */
  included: boolean[];
}

/**
 * M canaries from `source` (mislabelled copies of its first M examples, or noise images), each
 * included with probability 1/2. `train` gets the included ones appended.
 */
export function makeCanaries(source: Dataset, m: number, kind: CanaryKind, rng: Random): Canaries {
  if (!(Number.isInteger(m) && m >= 2)) throw new RpOnnxError(`--audit-canaries must be an integer >= 2, got ${m}`);
  if (kind === 'mislabel' && m > source.count) throw new RpOnnxError(`${m} mislabelled canaries need as many source examples, the data has ${source.count}`);
  if (source.classes < 2) throw new RpOnnxError('canaries need at least two classes');
  const per = exampleSize(source);
  const images = new Float32Array(m * per);
  const labels = new Int32Array(m);
  for (let j = 0; j < m; j++) {
    if (kind === 'mislabel') {
      images.set(source.images.subarray(j * per, (j + 1) * per), j * per);
      labels[j] = (source.labels[j]! + 1 + rng.int(source.classes - 1)) % source.classes;
    } else {
      for (let d = 0; d < per; d++) images[j * per + d] = rng.uniform();
      labels[j] = rng.int(source.classes);
    }
  }
  const included = Array.from({ length: m }, () => rng.uniform() < 0.5);
  return { data: makeDataset({ ...source, images, labels, count: m, name: `${source.name}[canaries]` }), included };
}

/** The training set with the included canaries appended. */
export function withCanaries(train: Dataset, c: Canaries): Dataset {
  const per = exampleSize(train);
  const idx = c.included.flatMap((inc, j) => (inc ? [j] : []));
  const images = new Float32Array((train.count + idx.length) * per);
  images.set(train.images);
  const labels = new Int32Array(train.count + idx.length);
  labels.set(train.labels);
  idx.forEach((j, k) => {
    images.set(c.data.images.subarray(j * per, (j + 1) * per), (train.count + k) * per);
    labels[train.count + k] = c.data.labels[j]!;
  });
  return makeDataset({ ...train, images, labels, count: train.count + idx.length, name: `${train.name}+canaries` });
}

export interface OneRunAuditResult {
  canaries: number;
  guesses: number;
  correct: number;
  epsilonLowerBound: number;
  confidence: 0.95;
  delta: number;
  /** Guesses of each kind: the k+ highest scores called IN, the k- lowest OUT. */
  guessedIn: number;
  guessedOut: number;
}

export interface GuessOptions {
  /** Canaries called IN / OUT (default: 10% of the canaries each). */
  guessIn?: number;
  guessOut?: number;
}

/** Guesses from canary scores (higher = more likely trained on) and the bound. */
export function oneRunGuesses(scores: readonly number[], included: readonly boolean[], delta: number, o: GuessOptions = {}): OneRunAuditResult {
  const m = scores.length;
  if (included.length !== m) throw new RpOnnxError(`${m} canary scores but ${included.length} inclusion flags`);
  const kIn = o.guessIn ?? Math.max(1, Math.floor(m / 10));
  const kOut = o.guessOut ?? Math.max(1, Math.floor(m / 10));
  if (!(Number.isInteger(kIn) && Number.isInteger(kOut) && kIn >= 0 && kOut >= 0 && kIn + kOut <= m)) {
    throw new RpOnnxError(`one-run audit: ${kIn} IN and ${kOut} OUT guesses do not fit ${m} canaries`);
  }
  // Ties broken by index: a fixed rule that does not look at the inclusion flags.
  const order = [...scores.keys()].sort((a, b) => scores[b]! - scores[a]! || a - b);
  let correct = 0;
  for (let k = 0; k < kIn; k++) if (included[order[k]!]) correct++;
  for (let k = 0; k < kOut; k++) if (!included[order[m - 1 - k]!]) correct++;
  const guesses = kIn + kOut;
  return {
    canaries: m, guesses, correct, epsilonLowerBound: oneRunEpsilonLowerBound(m, guesses, correct, delta, 0.95),
    confidence: 0.95, delta, guessedIn: kIn, guessedOut: kOut,
  };
}

export interface OneRunAuditOptions extends GuessOptions {
  canaries: number;
  kind?: CanaryKind;
  /** Where mislabelled canaries come from: examples disjoint from the training set. */
  source: Dataset;
  delta: number;
  seed?: number;
  threads?: number;
}

/**
 * The hook a training command needs (`rp-onnx train --audit-canaries M`): `train` is the set to
 * train on instead of the original (canaries appended), and `finish(model)` scores the canaries
 * and returns the JSON block `oneRunAudit` to print next to the accountant's epsilon.
 */
export function prepareOneRunAudit(trainSet: Dataset, o: OneRunAuditOptions): { train: Dataset; canaries: Canaries; finish: (model: Model) => Promise<OneRunAuditResult> } {
  const rng = new Random(o.seed ?? 0);
  const c = makeCanaries(o.source, o.canaries, o.kind ?? 'mislabel', rng);
  return {
    train: withCanaries(trainSet, c),
    canaries: c,
    finish: async (model) => {
      const r = await predict([model], { data: c.data.images, count: c.data.count, shape: c.data.shape, labels: c.data.labels }, { threads: o.threads, noiseSeed: 'secure' });
      const scores = exampleStats(r.logits, c.data.labels, c.data.count).map((e) => -e.loss);
      return oneRunGuesses(scores, c.included, o.delta, o);
    },
  };
}

/** The whole audit around one training run: `train` (DP-SGD or plain, the caller's) is called once. */
export async function oneRunAudit(trainSet: Dataset, train: (ds: Dataset) => Promise<Model>, o: OneRunAuditOptions): Promise<OneRunAuditResult & { model: Model }> {
  const hook = prepareOneRunAudit(trainSet, o);
  const model = await train(hook.train);
  return { ...(await hook.finish(model)), model };
}
