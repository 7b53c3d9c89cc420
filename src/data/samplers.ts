/**
 * Turning a Dataset into batches. Two samplers:
 * - `batches`: one epoch of fixed-size batches, in file order or in a seeded random order (every
 *   example exactly once per epoch), the usual non-private training loop.
 * - `poissonBatches`: Poisson subsampling for DP-SGD: at every step each example joins the batch
 *   independently with probability q, so batch sizes vary (and may be 0). The privacy analysis of
 *   the subsampled Gaussian (RDP accountant) assumes exactly this sampling; fixed-size shuffled
 *   batches do not give the amplification it claims. Pass `Random.secure()` when the result ships.
 */
import { RpOnnxError } from '../errors.js';
import { Random, secureSeed } from '../random.js';
import { exampleSize, type Dataset } from './dataset.js';

export interface Batch {
  /** size*C*H*W float32 values, NCHW. */
  readonly images: Float32Array;
  /** Class indices as int32. */
  readonly labels: Int32Array;
  /** The same labels as int64, ready for an ONNX int64 label input. */
  readonly labels64: BigInt64Array;
  /** Positions of these examples in the dataset. */
  readonly indices: Uint32Array;
  readonly size: number;
}

/** Copies the examples at `indices` into one batch. */
export function gatherBatch(ds: Dataset, indices: Uint32Array): Batch {
  const per = exampleSize(ds);
  const size = indices.length;
  const images = new Float32Array(size * per);
  const labels = new Int32Array(size);
  const labels64 = new BigInt64Array(size);
  for (let k = 0; k < size; k++) {
    const i = indices[k]!;
    if (i >= ds.count) throw new RpOnnxError(`batch of ${ds.name}: index ${i} is out of range [0, ${ds.count})`);
    images.set(ds.images.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = ds.labels[i]!;
    labels64[k] = BigInt(ds.labels[i]!);
  }
  return { images, labels, labels64, indices, size };
}

export interface BatchOptions {
  /** Visit examples in a random order (a fresh permutation each call, i.e. each epoch). */
  shuffle: boolean;
  /** Generator for the permutation; defaults to one seeded from the OS (not reproducible). */
  rng?: Random;
  /** Drop the last batch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
}

/** Number of batches `batches` yields for one epoch. */
export function batchCount(count: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

/**
 * One epoch of batches of `batchSize` examples. Without shuffle the first batch is exactly
 * examples 0..B-1 in file order; with shuffle, the order is `rng.permutation(count)`, so a seeded
 * generator replays the same epochs and calling again with the same generator gives the next epoch.
 */
export function* batches(ds: Dataset, batchSize: number, opts: BatchOptions): Generator<Batch, void, undefined> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RpOnnxError(`batch size must be a positive integer, got ${batchSize}`);
  const order = opts.shuffle
    ? (opts.rng ?? new Random(secureSeed())).permutation(ds.count)
    : Uint32Array.from({ length: ds.count }, (_, i) => i);
  const n = batchCount(ds.count, batchSize, opts.dropLast ?? false);
  for (let b = 0; b < n; b++) {
    yield gatherBatch(ds, order.slice(b * batchSize, Math.min((b + 1) * batchSize, ds.count)));
  }
}

/** Indices (ascending) of a Poisson sample of 0..count-1: each kept independently with probability q. */
export function poissonSample(count: number, q: number, rng: Random): Uint32Array {
  const picked: number[] = [];
  for (let i = 0; i < count; i++) if (rng.uniform() < q) picked.push(i);
  return Uint32Array.from(picked);
}

/**
 * `steps` Poisson-sampled batches for DP-SGD: at each step every example is included
 * independently with probability `sampleRate` (q). The expected batch size is q*N; a batch may be
 * empty (size 0), and DP-SGD must still take the step (noise only) for the accounting to hold.
 */
export function* poissonBatches(ds: Dataset, sampleRate: number, steps: number, rng: Random): Generator<Batch, void, undefined> {
  if (!(sampleRate > 0 && sampleRate <= 1)) throw new RpOnnxError(`sample rate must lie in (0, 1], got ${sampleRate}`);
  if (!Number.isInteger(steps) || steps < 0) throw new RpOnnxError(`steps must be a non-negative integer, got ${steps}`);
  for (let s = 0; s < steps; s++) yield gatherBatch(ds, poissonSample(ds.count, sampleRate, rng));
}
