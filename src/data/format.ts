/**
 * What a dataset file format provides to `loadDataDir`. Each format lives in its own file and is
 * listed once in load.ts; the loader only asks formats whether they recognise a directory.
 */
export type Split = 'train' | 'test';

export interface FormatOptions {
  /** CIFAR-100: which of the two label bytes to use (default 'fine', 100 classes). */
  cifar100Labels?: 'fine' | 'coarse';
}

/** One split as a format decodes it, before the loader settles the class count. */
export interface SplitData {
  images: Float32Array;
  labels: Int32Array;
  count: number;
  shape: [number, number, number];
  /** The files read, for Dataset.source. */
  files: string[];
  /** The class count when the format fixes it (CIFAR-10: 10); otherwise inferred from labels. */
  classes?: number;
}

export interface DataFormat {
  /** Short name used in Dataset.source, e.g. 'idx'. */
  readonly name: string;
  /** The files this format expects, for the "no recognised files" message. */
  readonly expected: string;
  /** Whether `dir`, whose entries are `files`, holds this format's files for `split`. */
  has(dir: string, files: ReadonlySet<string>, split: Split): boolean;
  load(dir: string, files: ReadonlySet<string>, split: Split, opts: FormatOptions): SplitData;
  /** Only the labels of a split (cheap), to infer one class count for both splits. */
  loadLabels(dir: string, files: ReadonlySet<string>, split: Split, opts: FormatOptions): Int32Array;
}

/** The first of `names` present in `files`, each also tried with a .gz suffix. */
export function pickFile(files: ReadonlySet<string>, names: readonly string[]): string | undefined {
  for (const n of names) {
    if (files.has(n)) return n;
    if (files.has(`${n}.gz`)) return `${n}.gz`;
  }
  return undefined;
}
