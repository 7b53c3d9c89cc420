/**
 * Datasets saved from NumPy. Where the arrays of a split are looked for:
 * - NPZ: `<split>.npz` holding `images`/`labels` (or `x`/`y`); otherwise any `*.npz` holding
 *   Keras-style `x_<split>`/`y_<split>` (keras.datasets' mnist.npz); otherwise, for the train split
 *   only, a single `*.npz` (not test.npz) holding `images`/`labels`.
 * - NPY: `x_<split>.npy` + `y_<split>.npy`, or `<split>_images.npy` + `<split>_labels.npy`.
 * Array layout and scaling rules are in arrays.ts.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { RpOnnxError } from '../errors.js';
import { arrayToImages, arrayToLabels } from './arrays.js';
import { npyDeclaredSize, parseNpy, type NpyArray } from './npy.js';
import { readDataFile } from './read-bytes.js';
import { ZipArchive } from './zip.js';
import { pickFile, type DataFormat, type Split, type SplitData } from './format.js';

// `has` and `load` both open the archive; keep the last one while nobody else needs the memory.
let lastZip: { key: string; zip: WeakRef<ZipArchive> } | undefined;
function openZip(path: string): ZipArchive {
  const st = statSync(path);
  const key = `${path}:${st.size}:${st.mtimeMs}`;
  const cached = lastZip?.key === key ? lastZip.zip.deref() : undefined;
  if (cached) return cached;
  const zip = new ZipArchive(readDataFile(path), path);
  lastZip = { key, zip: new WeakRef(zip) };
  return zip;
}

interface NpzSource {
  path: string;
  images: string;
  labels: string;
}

function npzSource(dir: string, files: ReadonlySet<string>, split: Split): NpzSource | undefined {
  const npz = [...files].filter((f) => f.endsWith('.npz')).sort();
  const pair = (path: string, pairs: [string, string][]): NpzSource | undefined => {
    const zip = openZip(path);
    for (const [x, y] of pairs) if (zip.entries.has(`${x}.npy`) && zip.entries.has(`${y}.npy`)) return { path, images: x, labels: y };
    return undefined;
  };
  if (files.has(`${split}.npz`)) {
    const path = join(dir, `${split}.npz`);
    const found = pair(path, [['images', 'labels'], ['x', 'y'], [`x_${split}`, `y_${split}`]]);
    if (!found) throw new RpOnnxError(`${path} holds neither images/labels nor x/y arrays (it has: ${openZip(path).names().join(', ')})`);
    return found;
  }
  for (const f of npz) {
    const found = pair(join(dir, f), [[`x_${split}`, `y_${split}`]]);
    if (found) return found;
  }
  if (split === 'train') {
    const plain = npz.filter((f) => f !== 'test.npz');
    if (plain.length === 1) return pair(join(dir, plain[0]!), [['images', 'labels']]);
  }
  return undefined;
}

function readNpz(src: NpzSource, name: string): NpyArray {
  const zip = openZip(src.path);
  return parseNpy(zip.read(`${name}.npy`), `${src.path}:${name}.npy`);
}

export const npzFormat: DataFormat = {
  name: 'npz',
  expected: 'NPZ (x_train/y_train/x_test/y_test arrays, or train.npz/test.npz with images/labels)',
  has: (dir, files, split) => npzSource(dir, files, split) !== undefined,
  loadLabels(dir, files, split) {
    const src = npzSource(dir, files, split)!;
    return arrayToLabels(readNpz(src, src.labels), `${src.path}:${src.labels}.npy`);
  },
  load(dir, files, split): SplitData {
    const src = npzSource(dir, files, split)!;
    const labels = arrayToLabels(readNpz(src, src.labels), `${src.path}:${src.labels}.npy`);
    const img = arrayToImages(readNpz(src, src.images), `${src.path}:${src.images}.npy`);
    if (img.count !== labels.length) {
      throw new RpOnnxError(`${src.path}: ${src.images} has ${img.count} images but ${src.labels} has ${labels.length} labels`);
    }
    return { ...img, labels, files: [src.path] };
  },
};

const npyNames = (split: Split): [string, string][] => [
  [`x_${split}.npy`, `y_${split}.npy`],
  [`${split}_images.npy`, `${split}_labels.npy`],
];

function npyFiles(dir: string, files: ReadonlySet<string>, split: Split): [string, string] | undefined {
  for (const [x, y] of npyNames(split)) {
    const xf = pickFile(files, [x]);
    if (!xf) continue;
    const yf = pickFile(files, [y]);
    if (!yf) throw new RpOnnxError(`${dir} has ${xf} but no ${y} with the labels`);
    return [join(dir, xf), join(dir, yf)];
  }
  return undefined;
}

export const npyFormat: DataFormat = {
  name: 'npy',
  expected: 'NPY (x_train.npy + y_train.npy, x_test.npy + y_test.npy)',
  has: (dir, files, split) => npyFiles(dir, files, split) !== undefined,
  loadLabels(dir, files, split) {
    const [, y] = npyFiles(dir, files, split)!;
    return arrayToLabels(parseNpy(readDataFile(y, npyDeclaredSize(y)), y), y);
  },
  load(dir, files, split): SplitData {
    const [x, y] = npyFiles(dir, files, split)!;
    const labels = arrayToLabels(parseNpy(readDataFile(y, npyDeclaredSize(y)), y), y);
    const img = arrayToImages(parseNpy(readDataFile(x, npyDeclaredSize(x)), x), x);
    if (img.count !== labels.length) throw new RpOnnxError(`${x} has ${img.count} images but ${y} has ${labels.length} labels`);
    return { ...img, labels, files: [x, y] };
  },
};

