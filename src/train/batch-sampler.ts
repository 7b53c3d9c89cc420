/**
 * Which examples each step of a training run sees. A sampler answers "the examples of step s of
 * epoch e" from (seed, epoch, step) alone, so a resumed run replays exactly the batches of an
 * uninterrupted one without storing generator state:
 * - `shuffleSampler`: fixed-size batches of a permutation per epoch (every example once per epoch),
 *   the plain loop's and DP-SGD's 'shuffle' sampling;
 * - `poissonSampler`: DP-SGD's Poisson sampling, every example independently with probability q
 *   at every step, so batches vary in size and may be empty.
 * A generator of null seed draws from the OS CSPRNG (DP-SGD that ships: nobody can replay which
 * examples were in which batch).
 */
import { Random } from '../random.js';
import { poissonSample } from '../data/index.js';

export interface BatchSampler {
  readonly kind: 'shuffle' | 'poisson';
  readonly stepsPerEpoch: number;
  /** The batches of epoch `epoch` (0-based): step s of it -> example indices. */
  epoch(epoch: number): (stepInEpoch: number, globalStep: number) => Uint32Array;
}

/** A 32-bit seed from a seed and stream labels (FNV-1a then a murmur finalizer): independent streams per (seed, labels). */
export function derivedSeed(seed: number, ...parts: (string | number)[]): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (const p of parts) {
    for (const ch of `${String(p)}|`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export interface ShuffleSamplerOptions {
  count: number;
  batchSize: number;
  /** false: file order (the first batch is examples 0..B-1). */
  shuffle: boolean;
  /** The permutation of an epoch; null: from the OS CSPRNG. */
  rngForEpoch: ((epoch: number) => Random) | null;
}

export function shuffleSampler(o: ShuffleSamplerOptions): BatchSampler {
  const stepsPerEpoch = Math.ceil(o.count / o.batchSize);
  return {
    kind: 'shuffle',
    stepsPerEpoch,
    epoch(epoch) {
      const order = o.shuffle
        ? (o.rngForEpoch ? o.rngForEpoch(epoch) : Random.secure()).permutation(o.count)
        : Uint32Array.from({ length: o.count }, (_, i) => i);
      return (s) => order.slice(s * o.batchSize, Math.min(o.count, (s + 1) * o.batchSize));
    },
  };
}

export interface PoissonSamplerOptions {
  count: number;
  sampleRate: number;
  /** Seed of the sampling stream; null: the OS CSPRNG. */
  seed: number | null;
}

export function poissonSampler(o: PoissonSamplerOptions): BatchSampler {
  const secure = o.seed === null ? Random.secure() : undefined;
  return {
    kind: 'poisson',
    // An "epoch" of Poisson sampling: 1/q steps, N examples in expectation.
    stepsPerEpoch: Math.max(1, Math.round(1 / o.sampleRate)),
    epoch() {
      return (_s, t) => poissonSample(o.count, o.sampleRate, secure ?? new Random(derivedSeed(o.seed!, 'poisson', t)));
    },
  };
}
