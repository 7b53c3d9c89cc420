/**
 * An in-memory image classification dataset. Images are float32, NCHW, one example after the
 * other; loaders scale 8-bit pixels by 1/255 so values lie in [0, 1] until `normalize` is applied.
 * Datasets are values: every function here returns a new Dataset and never edits its argument.
 */
import { RpOnnxError } from '../errors.js';
import type { Random } from '../random.js';

export interface Dataset {
  /** N*C*H*W float32 values, NCHW order. In [0, 1] unless `normalization` is set. */
  readonly images: Float32Array;
  /** N class indices in [0, classes). */
  readonly labels: Int32Array;
  readonly count: number;
  /** Shape of one example, [C, H, W] ([H, W, C] when `layout` is 'nhwc'). */
  readonly shape: readonly [number, number, number];
  /** 'nhwc' once fitted to a model that takes channels last (see fit-to-model.ts); else NCHW. */
  readonly layout?: 'nhwc';
  /** Number of classes (labels lie in [0, classes)). */
  readonly classes: number;
  /** Short name, e.g. 'fashion-mnist-small/train'. */
  readonly name: string;
  /** Where the data came from (format and files), for reports and metadata. */
  readonly source: string;
  /** Per-channel (mean, std) applied by `normalize`, if any. */
  readonly normalization?: { readonly mean: readonly number[]; readonly std: readonly number[] };
}

/** Values per example, C*H*W. */
export function exampleSize(ds: Pick<Dataset, 'shape'>): number {
  return ds.shape[0] * ds.shape[1] * ds.shape[2];
}

/** Builds a Dataset after checking that the arrays agree with count, shape and classes. */
export function makeDataset(d: Dataset): Dataset {
  const [c, h, w] = d.shape;
  for (const v of [c, h, w, d.count, d.classes]) {
    if (!Number.isInteger(v) || v < 0) throw new RpOnnxError(`dataset ${d.name}: shape [${d.shape.join(', ')}], count ${d.count} and classes ${d.classes} must be non-negative integers`);
  }
  if (d.images.length !== d.count * c * h * w) {
    throw new RpOnnxError(`dataset ${d.name}: ${d.images.length} image values do not match ${d.count} examples of shape [${d.shape.join(', ')}]`);
  }
  if (d.labels.length !== d.count) {
    throw new RpOnnxError(`dataset ${d.name}: ${d.labels.length} labels for ${d.count} images`);
  }
  checkLabels(d.labels, d.classes, d.source);
  return Object.freeze({ ...d, shape: [c, h, w] as const });
}

/** Throws when a label lies outside [0, classes); `where` names the file for the message. */
export function checkLabels(labels: Int32Array, classes: number, where: string): void {
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l < 0 || l >= classes) {
      throw new RpOnnxError(`${where}: label ${l} of example ${i} is out of range [0, ${classes}); pass the right class count or fix the labels`);
    }
  }
}

/** The examples at `indices` (in that order; repeats allowed), copied into a new Dataset. */
export function subset(ds: Dataset, indices: ArrayLike<number>, name = `${ds.name}[subset]`): Dataset {
  const per = exampleSize(ds);
  const n = indices.length;
  const images = new Float32Array(n * per);
  const labels = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = indices[k]!;
    if (!Number.isInteger(i) || i < 0 || i >= ds.count) {
      throw new RpOnnxError(`subset of ${ds.name}: index ${i} is out of range [0, ${ds.count})`);
    }
    images.set(ds.images.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = ds.labels[i]!;
  }
  return makeDataset({ ...ds, images, labels, count: n, name });
}

/**
 * Splits into the first `n` examples and the rest, in file order; with `rng`, a uniformly random
 * n-subset and its complement instead (each part keeps file order).
 */
export function split(ds: Dataset, n: number, rng?: Random): [Dataset, Dataset] {
  if (!Number.isInteger(n) || n < 0 || n > ds.count) {
    throw new RpOnnxError(`split of ${ds.name}: size ${n} must be an integer in [0, ${ds.count}]`);
  }
  let first: Uint32Array;
  let rest: Uint32Array;
  if (rng) {
    const chosen = new Uint8Array(ds.count);
    const perm = rng.permutation(ds.count);
    for (let k = 0; k < n; k++) chosen[perm[k]!] = 1;
    first = new Uint32Array(n);
    rest = new Uint32Array(ds.count - n);
    for (let i = 0, a = 0, b = 0; i < ds.count; i++) {
      if (chosen[i]) first[a++] = i;
      else rest[b++] = i;
    }
  } else {
    first = new Uint32Array(n).map((_, i) => i);
    rest = new Uint32Array(ds.count - n).map((_, i) => n + i);
  }
  return [subset(ds, first, `${ds.name}[0:${n}]`), subset(ds, rest, `${ds.name}[${n}:]`)];
}

/**
 * Per-channel standardisation: value' = (value - mean[c]) / std[c] for every pixel of channel c.
 * `mean` and `std` have one entry per channel (or a single entry used for all channels), are
 * given on the [0, 1] scale (e.g. CIFAR-10: mean [0.4914, 0.4822, 0.4465]), and are recorded in
 * `normalization` so exported models can state what their inputs expect. Normalising twice is an
 * error, because it is almost always a bug.
 */
export function normalize(ds: Dataset, mean: readonly number[], std: readonly number[]): Dataset {
  if (ds.layout === 'nhwc') throw new RpOnnxError(`normalize ${ds.name}: normalize before fitting the data to an NHWC model`);
  const c = ds.shape[0];
  if (ds.normalization) throw new RpOnnxError(`dataset ${ds.name} is already normalized`);
  const expand = (v: readonly number[], what: string): number[] => {
    if (v.length === 1) return new Array<number>(c).fill(v[0]!);
    if (v.length !== c) throw new RpOnnxError(`normalize ${ds.name}: ${what} has ${v.length} entries but the images have ${c} channels`);
    return [...v];
  };
  const m = expand(mean, 'mean');
  const s = expand(std, 'std');
  if (s.some((x) => !(x > 0) || !Number.isFinite(x))) throw new RpOnnxError(`normalize ${ds.name}: every std must be a positive number, got [${s.join(', ')}]`);
  if (m.some((x) => !Number.isFinite(x))) throw new RpOnnxError(`normalize ${ds.name}: every mean must be finite, got [${m.join(', ')}]`);
  const plane = ds.shape[1] * ds.shape[2];
  const images = new Float32Array(ds.images.length);
  for (let base = 0; base < images.length; base += c * plane) {
    for (let ch = 0; ch < c; ch++) {
      const mu = m[ch]!;
      const inv = 1 / s[ch]!;
      const o = base + ch * plane;
      for (let p = 0; p < plane; p++) images[o + p] = (ds.images[o + p]! - mu) * inv;
    }
  }
  return makeDataset({ ...ds, images, normalization: { mean: m, std: s } });
}

/** Per-channel mean and (population) standard deviation over every pixel of every example. */
export function channelStats(ds: Dataset): { mean: number[]; std: number[] } {
  if (ds.layout === 'nhwc') throw new RpOnnxError(`channel statistics of ${ds.name}: compute them before fitting the data to an NHWC model`);
  const [c, h, w] = ds.shape;
  const plane = h * w;
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  for (let base = 0; base < ds.images.length; base += c * plane) {
    for (let ch = 0; ch < c; ch++) {
      let s = 0;
      let q = 0;
      const o = base + ch * plane;
      for (let p = 0; p < plane; p++) {
        const v = ds.images[o + p]!;
        s += v;
        q += v * v;
      }
      sum[ch] += s;
      sq[ch] += q;
    }
  }
  const n = ds.count * plane;
  const mean = Array.from(sum, (s) => (n ? s / n : 0));
  const std = Array.from(sq, (q, ch) => (n ? Math.sqrt(Math.max(0, q / n - mean[ch]! ** 2)) : 0));
  return { mean, std };
}
