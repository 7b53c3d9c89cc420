/**
 * IDX files (MNIST, Fashion-MNIST, EMNIST ...): a 4-byte big-endian magic 0x0000TTDD (TT = element
 * type, 0x08 = unsigned byte; DD = number of dimensions), DD big-endian uint32 dimensions, then the
 * elements in C order. Images are 0x00000803 [N, H, W], labels 0x00000801 [N]. Files may be
 * gzipped (`train-images-idx3-ubyte.gz`), as distributed.
 */
import { join } from 'node:path';
import { RpOnnxError } from '../errors.js';
import { bytesToUnit, readDataFile, readU32BE, type DeclaredSize } from './read-bytes.js';
import { pickFile, type DataFormat, type Split, type SplitData } from './format.js';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

function checkMagic(bytes: Uint8Array, path: string, magic: number, what: string): void {
  const got = readU32BE(bytes, 0);
  if (got !== magic) {
    const hex = (m: number) => `0x${m.toString(16).padStart(8, '0')}`;
    throw new RpOnnxError(`${path}: wrong IDX magic ${hex(got)} (expected ${hex(magic)} for ${what}); is this the right file?`);
  }
}

/** The file size an IDX header declares (header + elements), to bound decompression. */
export function idxDeclaredSize(path: string, magic: number, what: string): DeclaredSize {
  return (head) => {
    if (head.length < 4) return undefined;
    checkMagic(head, path, magic, what);
    const ndim = magic & 0xff;
    const header = 4 + 4 * ndim;
    if (head.length < header) return undefined;
    let size = 1;
    for (let d = 0; d < ndim; d++) size *= readU32BE(head, 4 + 4 * d);
    return header + size;
  };
}

/** Decodes an unsigned-byte IDX file whose magic must be `magic`; returns dims and the elements. */
export function parseIdxU8(bytes: Uint8Array, path: string, magic: number, what: string): { dims: number[]; data: Uint8Array } {
  if (bytes.length < 4) throw new RpOnnxError(`${path} is truncated: ${bytes.length} bytes, too short for an IDX header; re-download it`);
  checkMagic(bytes, path, magic, what);
  const ndim = magic & 0xff;
  const header = 4 + 4 * ndim;
  if (bytes.length < header) throw new RpOnnxError(`${path} is truncated inside its IDX header; re-download it`);
  const dims: number[] = [];
  for (let d = 0; d < ndim; d++) dims.push(readU32BE(bytes, 4 + 4 * d));
  const size = dims.reduce((a, b) => a * b, 1);
  const have = bytes.length - header;
  if (have < size) {
    throw new RpOnnxError(`${path} is truncated: its header promises ${size} bytes of data [${dims.join(', ')}] but it has ${have}; re-download it`);
  }
  if (have > size) throw new RpOnnxError(`${path}: ${have - size} unexpected bytes after the [${dims.join(', ')}] IDX data; is this the right file?`);
  return { dims, data: bytes.subarray(header) };
}

const PREFIX: Record<Split, readonly string[]> = { train: ['train'], test: ['t10k', 'test'] };
const imageNames = (s: Split) => PREFIX[s].flatMap((p) => [`${p}-images-idx3-ubyte`, `${p}-images.idx3-ubyte`]);
const labelNames = (s: Split) => PREFIX[s].flatMap((p) => [`${p}-labels-idx1-ubyte`, `${p}-labels.idx1-ubyte`]);

function labelFile(dir: string, files: ReadonlySet<string>, split: Split): string {
  const name = pickFile(files, labelNames(split));
  if (!name) throw new RpOnnxError(`${dir} has ${pickFile(files, imageNames(split))} but no ${labelNames(split)[0]}[.gz] label file`);
  return join(dir, name);
}

function readLabels(path: string): Int32Array {
  const what = 'unsigned-byte labels [N]';
  const { data } = parseIdxU8(readDataFile(path, idxDeclaredSize(path, IDX_LABELS_MAGIC, what)), path, IDX_LABELS_MAGIC, what);
  return Int32Array.from(data);
}

export const idxFormat: DataFormat = {
  name: 'idx',
  expected: 'IDX (train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz], t10k-... for test)',
  has: (_dir, files, split) => pickFile(files, imageNames(split)) !== undefined,
  loadLabels: (dir, files, split) => readLabels(labelFile(dir, files, split)),
  load(dir, files, split): SplitData {
    const imagesPath = join(dir, pickFile(files, imageNames(split))!);
    const labelsPath = labelFile(dir, files, split);
    const what = 'unsigned-byte images [N, H, W]';
    const { dims, data } = parseIdxU8(readDataFile(imagesPath, idxDeclaredSize(imagesPath, IDX_IMAGES_MAGIC, what)), imagesPath, IDX_IMAGES_MAGIC, what);
    const labels = readLabels(labelsPath);
    const [n, h, w] = dims as [number, number, number];
    if (labels.length !== n) {
      throw new RpOnnxError(`${imagesPath} has ${n} images but ${labelsPath} has ${labels.length} labels; the files do not belong together`);
    }
    return { images: bytesToUnit(data), labels, count: n, shape: [1, h, w], files: [imagesPath, labelsPath] };
  },
};
