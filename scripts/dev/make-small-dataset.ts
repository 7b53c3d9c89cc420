/**
 * Cuts the embedded default dataset, data/fashion-mnist-small/, from the full Fashion-MNIST IDX
 * files: the first TRAIN training examples and the first TEST test examples, in file order,
 * written back as gzipped IDX files with the same names so the IDX loader reads them unchanged.
 *
 *   node --import tsx scripts/dev/make-small-dataset.ts [--src DIR] [--out DIR] [--train 4000] [--test 1000]
 *
 * DIR defaults to findFashionMnist() (../shared/data/fashion-mnist or Debian's
 * /usr/share/datasets/fashion-mnist). Output is deterministic: gzip level 9, no file name or time
 * in the gzip header.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { defaultDataDir, findFashionMnist } from '../../src/data/paths.js';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, parseIdxU8 } from '../../src/data/idx.js';
import { readDataFile } from '../../src/data/read-bytes.js';

const { values } = parseArgs({
  options: {
    src: { type: 'string' },
    out: { type: 'string' },
    train: { type: 'string', default: '4000' },
    test: { type: 'string', default: '1000' },
  },
});
const src = values.src ?? findFashionMnist();
if (!src) throw new Error('full Fashion-MNIST not found; pass --src DIR');
const out = values.out ?? defaultDataDir();
mkdirSync(out, { recursive: true });

/** IDX bytes: magic, big-endian dims, then the data. */
function encodeIdx(magic: number, dims: number[], data: Uint8Array): Uint8Array {
  const b = Buffer.alloc(4 + 4 * dims.length + data.length);
  b.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  b.set(data, 4 + 4 * dims.length);
  return b;
}

function cut(prefix: string, n: number): void {
  const imgName = `${prefix}-images-idx3-ubyte.gz`;
  const lblName = `${prefix}-labels-idx1-ubyte.gz`;
  const img = parseIdxU8(readDataFile(join(src!, imgName)), imgName, IDX_IMAGES_MAGIC, 'images');
  const lbl = parseIdxU8(readDataFile(join(src!, lblName)), lblName, IDX_LABELS_MAGIC, 'labels');
  const [total, h, w] = img.dims as [number, number, number];
  if (n > total || lbl.dims[0] !== total) throw new Error(`${prefix}: cannot take ${n} of ${total} examples`);
  const images = encodeIdx(IDX_IMAGES_MAGIC, [n, h, w], img.data.subarray(0, n * h * w));
  const labels = encodeIdx(IDX_LABELS_MAGIC, [n], lbl.data.subarray(0, n));
  writeFileSync(join(out, imgName), gzipSync(images, { level: 9 }));
  writeFileSync(join(out, lblName), gzipSync(labels, { level: 9 }));
  console.log(`${prefix}: first ${n} of ${total} examples -> ${out}`);
}

cut('train', Number(values.train));
cut('t10k', Number(values.test));
