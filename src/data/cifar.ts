/**
 * CIFAR binary versions (https://www.cs.toronto.edu/~kriz/cifar.html). Every record is the label
 * byte(s) followed by 3072 pixel bytes: the 1024 red values of the 32x32 image row by row, then
 * green, then blue, which is already CHW, so records copy straight into NCHW.
 * - CIFAR-10: data_batch_1.bin .. data_batch_5.bin (train), test_batch.bin; 1 label byte (0..9).
 * - CIFAR-100: train.bin, test.bin; a coarse label byte (0..19) then a fine one (0..99).
 */
import { join } from 'node:path';
import { RpOnnxError } from '../errors.js';
import { bytesToUnit, readDataFile } from './read-bytes.js';
import { pickFile, type DataFormat, type FormatOptions, type Split, type SplitData } from './format.js';

const PIXELS = 3 * 32 * 32;

interface Layout {
  /** Label bytes before the pixels. */
  labelBytes: number;
  /** Which label byte to use and how many classes it has. */
  labelAt: number;
  classes: number;
  what: string;
}

function decode(paths: string[], layout: Layout): SplitData {
  const record = layout.labelBytes + PIXELS;
  const parts = paths.map((path) => {
    const bytes = readDataFile(path);
    if (bytes.length === 0 || bytes.length % record !== 0) {
      throw new RpOnnxError(`${path} is truncated or not a ${layout.what} file: ${bytes.length} bytes is not a whole number of ${record}-byte records; re-download it`);
    }
    return { path, bytes, n: bytes.length / record };
  });
  const count = parts.reduce((a, p) => a + p.n, 0);
  const images = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  let k = 0;
  for (const { path, bytes, n } of parts) {
    for (let r = 0; r < n; r++, k++) {
      const o = r * record;
      const label = bytes[o + layout.labelAt]!;
      if (label >= layout.classes) {
        throw new RpOnnxError(`${path}: label ${label} of record ${r} is out of range [0, ${layout.classes}); the file is corrupt or not ${layout.what}`);
      }
      labels[k] = label;
      bytesToUnit(bytes.subarray(o + layout.labelBytes, o + record), images.subarray(k * PIXELS, (k + 1) * PIXELS));
    }
  }
  return { images, labels, count, shape: [3, 32, 32], files: paths, classes: layout.classes };
}

/** data_batch_1..k for the longest run present; a gap before a later batch is an error. */
function cifar10Files(dir: string, files: ReadonlySet<string>, split: Split): string[] {
  if (split === 'test') return [join(dir, pickFile(files, ['test_batch.bin'])!)];
  const names: string[] = [];
  for (let i = 1; i <= 5; i++) {
    const name = pickFile(files, [`data_batch_${i}.bin`]);
    if (name) {
      if (names.length !== i - 1) throw new RpOnnxError(`${dir} has data_batch_${i}.bin but not data_batch_${names.length + 1}.bin; CIFAR-10 training data is data_batch_1.bin .. data_batch_5.bin`);
      names.push(join(dir, name));
    }
  }
  return names;
}

const CIFAR10: Layout = { labelBytes: 1, labelAt: 0, classes: 10, what: 'CIFAR-10 binary' };

export const cifar10Format: DataFormat = {
  name: 'cifar10',
  expected: 'CIFAR-10 binary (data_batch_1..5.bin, test_batch.bin)',
  has: (_dir, files, split) =>
    split === 'test' ? pickFile(files, ['test_batch.bin']) !== undefined : pickFile(files, ['data_batch_1.bin']) !== undefined,
  load: (dir, files, split) => decode(cifar10Files(dir, files, split), CIFAR10),
  loadLabels: (dir, files, split) => decode(cifar10Files(dir, files, split), CIFAR10).labels,
};

function cifar100Layout(opts: FormatOptions): Layout {
  return opts.cifar100Labels === 'coarse'
    ? { labelBytes: 2, labelAt: 0, classes: 20, what: 'CIFAR-100 binary' }
    : { labelBytes: 2, labelAt: 1, classes: 100, what: 'CIFAR-100 binary' };
}

export const cifar100Format: DataFormat = {
  name: 'cifar100',
  expected: 'CIFAR-100 binary (train.bin, test.bin)',
  has: (_dir, files, split) => pickFile(files, [`${split}.bin`]) !== undefined,
  load: (dir, files, split, opts) => decode([join(dir, pickFile(files, [`${split}.bin`])!)], cifar100Layout(opts)),
  loadLabels: (dir, files, split, opts) => decode([join(dir, pickFile(files, [`${split}.bin`])!)], cifar100Layout(opts)).labels,
};
