/**
 * `loadDataDir(dir, { split })`: finds which format the files in `dir` are in and loads one split.
 * Formats are asked in the order of FORMATS; the first that recognises a train or test split
 * claims the directory. When nothing at the top level is recognised, the folders the official
 * archives unpack into (cifar-10-batches-bin, cifar-100-binary, torchvision's raw) are tried.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { RpOnnxError } from '../errors.js';
import { cifar100Format, cifar10Format } from './cifar.js';
import { makeDataset, type Dataset } from './dataset.js';
import type { DataFormat, FormatOptions, Split } from './format.js';
import { idxFormat } from './idx.js';
import { npyFormat, npzFormat } from './numpy-formats.js';
import { defaultDataDir } from './paths.js';

export type { Split } from './format.js';

/** Every format loadDataDir knows, most specific file names first. */
export const FORMATS: readonly DataFormat[] = [idxFormat, cifar10Format, cifar100Format, npzFormat, npyFormat];

/** Folders that dataset archives unpack into, tried when `dir` itself holds no recognised files. */
const ARCHIVE_FOLDERS = ['cifar-10-batches-bin', 'cifar-100-binary', 'raw'];

export interface LoadDataOptions extends FormatOptions {
  split: Split;
  /** Class count; by default fixed by the format (CIFAR) or the largest label in train/test + 1. */
  classes?: number;
  /** Dataset name; default '<folder>/<split>'. */
  name?: string;
}

interface Resolved {
  dir: string;
  files: ReadonlySet<string>;
  format: DataFormat;
}

function listDir(dir: string): Set<string> {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new RpOnnxError(`data directory ${dir} does not exist; pass a folder holding the dataset files`);
  }
  if (!isDir) throw new RpOnnxError(`${dir} is not a directory; pass the folder holding the dataset files`);
  return new Set(readdirSync(dir));
}

function recognise(dir: string, files: ReadonlySet<string>): DataFormat | undefined {
  return FORMATS.find((f) => f.has(dir, files, 'train') || f.has(dir, files, 'test'));
}

function resolveDir(dir: string): Resolved {
  const files = listDir(dir);
  const format = recognise(dir, files);
  if (format) return { dir, files, format };
  for (const sub of ARCHIVE_FOLDERS) {
    const inner = join(dir, sub);
    if (!files.has(sub) || !statSync(inner).isDirectory()) continue;
    const innerFiles = listDir(inner);
    const f = recognise(inner, innerFiles);
    if (f) return { dir: inner, files: innerFiles, format: f };
  }
  throw new RpOnnxError(`no recognised dataset files in ${dir}; expected one of: ${FORMATS.map((f) => f.expected).join('; ')}`);
}

/** Whether the dataset in `dir` has the given split (throws when `dir` holds no dataset at all). */
export function hasSplit(dir: string, split: Split): boolean {
  const r = resolveDir(dir);
  return r.format.has(r.dir, r.files, split);
}

function maxLabel(labels: Int32Array): number {
  let m = -1;
  for (let i = 0; i < labels.length; i++) if (labels[i]! > m) m = labels[i]!;
  return m;
}

/** Loads one split of the dataset in `dir`, images scaled to [0, 1], NCHW. */
export function loadDataDir(dir: string, opts: LoadDataOptions): Dataset {
  const { split } = opts;
  if (split !== 'train' && split !== 'test') throw new RpOnnxError(`split must be 'train' or 'test', got '${String(split)}'`);
  if (opts.classes !== undefined && !(Number.isInteger(opts.classes) && opts.classes > 0)) {
    throw new RpOnnxError(`the class count must be a positive integer, got ${opts.classes}`);
  }
  const r = resolveDir(dir);
  if (!r.format.has(r.dir, r.files, split)) {
    throw new RpOnnxError(`${r.dir} has no ${split} split; ${r.format.expected}`);
  }
  const data = r.format.load(r.dir, r.files, split, opts);
  if (data.count === 0) {
    // Training would loop over empty epochs forever; nothing else can use it either.
    throw new RpOnnxError(`${data.files.join(', ')}: the ${split} split holds no examples; is this the right folder?`);
  }
  let classes = opts.classes ?? data.classes;
  if (classes === undefined) {
    // One class count for both splits, so a model trained on one evaluates on the other.
    let max = maxLabel(data.labels);
    const other: Split = split === 'train' ? 'test' : 'train';
    if (r.format.has(r.dir, r.files, other)) max = Math.max(max, maxLabel(r.format.loadLabels(r.dir, r.files, other, opts)));
    classes = max + 1;
  }
  return makeDataset({
    images: data.images,
    labels: data.labels,
    count: data.count,
    shape: data.shape,
    classes,
    name: opts.name ?? `${basename(r.dir)}/${split}`,
    source: `${r.format.name}: ${data.files.join(', ')}`,
  });
}

/** One split of the embedded Fashion-MNIST subset (4,000 train / 1,000 test images). */
export function loadDefaultDataset(split: Split): Dataset {
  return loadDataDir(defaultDataDir(), { split, name: `fashion-mnist-small/${split}` });
}
