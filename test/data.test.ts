/**
 * Datasets: the embedded Fashion-MNIST subset against values read independently (Python's gzip
 * on the original files); crafted IDX / CIFAR / NPY / NPZ bytes and NumPy-written fixtures decode
 * to the values written; corrupt inputs give one-line RpOnnxErrors; samplers' statistics.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { RpOnnxError } from '../src/errors.js';
import { Random } from '../src/random.js';
import { loadModel, saveModel } from '../src/graph/io.js';
import { buildModel } from '../models/index.js';
import { runCli } from './helpers/cli.js';
import {
  batches, channelStats, defaultDataDir, findFashionMnist, hasSplit, loadDataDir, loadDefaultDataset,
  makeDataset, normalize, packageRoot, parseNpy, poissonBatches, split, subset, checkFiniteInputs, fitDataToModel, fitSplitsToModel, type Dataset,
} from '../src/data/index.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'data');
let tmp: string;
before(() => { tmp = mkdtempSync(join(tmpdir(), 'rp-onnx-data-')); });
after(() => { rmSync(tmp, { recursive: true, force: true }); });

/** A fresh directory under the test's temp folder holding `files`. */
let dirCount = 0;
function dirWith(files: Record<string, Uint8Array>): string {
  const d = join(tmp, `d${dirCount++}`);
  mkdirSync(d, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) {
    mkdirSync(dirname(join(d, name)), { recursive: true });
    writeFileSync(join(d, name), bytes);
  }
  return d;
}

function throwsRp(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RpOnnxError, `expected RpOnnxError, got ${String(e)}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), 'message must be one line');
    return true;
  });
}

/** IDX bytes written by hand: big-endian magic and dims, then the data. */
function idx(magic: number, dims: number[], data: number[]): Uint8Array {
  const b = Buffer.alloc(4 + 4 * dims.length + data.length);
  b.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  data.forEach((v, i) => { b[4 + 4 * dims.length + i] = v; });
  return b;
}
const unit = (b: number) => Math.fround(b / 255);

describe('embedded Fashion-MNIST subset', () => {
  test('loads 4,000 train / 1,000 test images of shape [1,28,28] in [0,1] with the published first labels', () => {
    const train = loadDefaultDataset('train');
    const testSet = loadDefaultDataset('test');
    assert.equal(train.count, 4000);
    assert.equal(testSet.count, 1000);
    assert.deepEqual(train.shape, [1, 28, 28]);
    assert.equal(train.classes, 10);
    assert.equal(train.images.length, 4000 * 784);
    let min = Infinity, max = -Infinity;
    for (const v of train.images) { if (v < min) min = v; if (v > max) max = v; }
    assert.equal(min, 0);
    assert.equal(max, 1);
    // First labels of the original files (train: 9 = ankle boot first), read with Python's gzip.
    assert.deepEqual([...train.labels.slice(0, 10)], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    assert.deepEqual([...testSet.labels.slice(0, 10)], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    // Class counts of the first 4,000 training labels and the pixel sum of image 0 (Python).
    const counts = new Array<number>(10).fill(0);
    for (const l of train.labels) counts[l]!++;
    assert.deepEqual(counts, [373, 440, 404, 409, 395, 391, 400, 413, 380, 395]);
    let sum = 0;
    for (let i = 0; i < 784; i++) sum += train.images[i]! * 255;
    assert.ok(Math.abs(sum - 76247) < 1e-2, `pixel sum ${sum}`);
  });

  test('is the first 4,000 / 1,000 examples of the full files, byte for byte (when the full set is here)', (t) => {
    const full = findFashionMnist();
    if (!full) { t.skip('full Fashion-MNIST not installed'); return; }
    const train = loadDefaultDataset('train');
    const rawImages = zlib.gunzipSync(readFileSync(join(full, 'train-images-idx3-ubyte.gz'))).subarray(16, 16 + 4000 * 784);
    const rawLabels = zlib.gunzipSync(readFileSync(join(full, 'train-labels-idx1-ubyte.gz'))).subarray(8, 8 + 4000);
    assert.deepEqual([...train.labels], [...rawLabels]);
    for (let i = 0; i < rawImages.length; i++) {
      if (train.images[i] !== unit(rawImages[i]!)) assert.fail(`pixel ${i}: ${train.images[i]} vs ${rawImages[i]}/255`);
    }
    const testLabels = zlib.gunzipSync(readFileSync(join(full, 't10k-labels-idx1-ubyte.gz'))).subarray(8, 8 + 1000);
    assert.deepEqual([...loadDefaultDataset('test').labels], [...testLabels]);
  });

  test('defaultDataDir resolves inside the package root', () => {
    const root = packageRoot();
    assert.equal(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).name, 'rp-onnx');
    assert.equal(defaultDataDir(), join(root, 'data', 'fashion-mnist-small'));
    assert.ok(existsSync(join(defaultDataDir(), 'README.md')));
    assert.equal(hasSplit(defaultDataDir(), 'test'), true);
  });
});

describe('IDX', () => {
  const trainImg = [0, 255, 128, 1, 2, 3, 4, 5, 250, 251, 252, 253];
  const files = (gz: boolean): Record<string, Uint8Array> => {
    const z = (b: Uint8Array) => (gz ? zlib.gzipSync(b) : b);
    const s = gz ? '.gz' : '';
    return {
      [`train-images-idx3-ubyte${s}`]: z(idx(0x803, [3, 2, 2], trainImg)),
      [`train-labels-idx1-ubyte${s}`]: z(idx(0x801, [3], [7, 0, 3])),
      [`t10k-images-idx3-ubyte${s}`]: z(idx(0x803, [1, 2, 2], [9, 8, 7, 6])),
      [`t10k-labels-idx1-ubyte${s}`]: z(idx(0x801, [1], [9])),
    };
  };
  for (const gz of [false, true]) {
    test(`decodes crafted ${gz ? 'gzipped' : 'raw'} files`, () => {
      const dir = dirWith(files(gz));
      const ds = loadDataDir(dir, { split: 'train' });
      assert.equal(ds.count, 3);
      assert.deepEqual(ds.shape, [1, 2, 2]);
      assert.deepEqual([...ds.images], trainImg.map(unit));
      assert.deepEqual([...ds.labels], [7, 0, 3]);
      // The class count covers both splits (test has a 9), so train and test agree.
      assert.equal(ds.classes, 10);
      const te = loadDataDir(dir, { split: 'test' });
      assert.deepEqual([...te.images], [9, 8, 7, 6].map(unit));
      assert.equal(te.classes, 10);
      assert.match(ds.source, /^idx: .*train-images-idx3-ubyte/);
    });
  }

  test('accepts the dotted MNIST names and reports a missing test split', () => {
    const dir = dirWith({ 'train-images.idx3-ubyte': idx(0x803, [1, 1, 2], [1, 2]), 'train-labels.idx1-ubyte': idx(0x801, [1], [4]) });
    assert.deepEqual([...loadDataDir(dir, { split: 'train' }).labels], [4]);
    assert.equal(hasSplit(dir, 'test'), false);
    throwsRp(() => loadDataDir(dir, { split: 'test' }), /has no test split; IDX/);
  });

  test('corrupt files give one-line errors', () => {
    const good = files(false);
    throwsRp(() => loadDataDir(dirWith({ ...good, 'train-images-idx3-ubyte': idx(0x801, [3], [1, 2, 3]) }), { split: 'train' }),
      /train-images-idx3-ubyte: wrong IDX magic 0x00000801 \(expected 0x00000803/);
    throwsRp(() => loadDataDir(dirWith({ ...good, 'train-labels-idx1-ubyte': idx(0x801, [2], [1, 2]) }), { split: 'train' }),
      /has 3 images but .*train-labels-idx1-ubyte has 2 labels/);
    throwsRp(() => loadDataDir(dirWith({ ...good, 'train-images-idx3-ubyte': idx(0x803, [3, 2, 2], trainImg.slice(0, 11)) }), { split: 'train' }),
      /is truncated: its header promises 12 bytes .* it has 11/);
    throwsRp(() => loadDataDir(dirWith({ ...good, 'train-images-idx3-ubyte': new Uint8Array([0, 0, 8]) }), { split: 'train' }), /is truncated/);
    const gz = files(true);
    const img = gz['train-images-idx3-ubyte.gz']!;
    throwsRp(() => loadDataDir(dirWith({ ...gz, 'train-images-idx3-ubyte.gz': img.subarray(0, img.length - 6) }), { split: 'train' }),
      /train-images-idx3-ubyte.gz is a bad or truncated gzip file/);
    const garbled = Uint8Array.from(img);
    garbled.fill(0xff, 10, 20);
    throwsRp(() => loadDataDir(dirWith({ ...gz, 'train-images-idx3-ubyte.gz': garbled }), { split: 'train' }), /bad or truncated gzip/);
    throwsRp(() => loadDataDir(dirWith({ ...gz, 'train-images-idx3-ubyte.gz': idx(0x803, [3, 2, 2], trainImg) }), { split: 'train' }),
      /is not a gzip file/);
    // Labels above an explicit class count.
    throwsRp(() => loadDataDir(dirWith(good), { split: 'train', classes: 5 }), /label 7 of example 0 is out of range \[0, 5\)/);
    // A label file with no images next to it is not a dataset.
    throwsRp(() => loadDataDir(dirWith({ 'train-labels-idx1-ubyte': idx(0x801, [1], [1]) }), { split: 'train' }),
      /no recognised dataset files in .*; expected one of: IDX \(train-images-idx3-ubyte.*CIFAR-10 binary.*CIFAR-100.*NPZ.*NPY/);
    throwsRp(() => loadDataDir(dirWith({ 'train-images-idx3-ubyte': idx(0x803, [1, 1, 1], [1]) }), { split: 'train' }), /no train-labels-idx1-ubyte/);
  });

  test('missing or empty directory', () => {
    throwsRp(() => loadDataDir(join(tmp, 'nope'), { split: 'train' }), /data directory .*nope does not exist/);
    throwsRp(() => loadDataDir(dirWith({}), { split: 'train' }), /no recognised dataset files/);
    throwsRp(() => hasSplit(join(tmp, 'nope'), 'test'), /does not exist/);
  });
});

describe('CIFAR binary', () => {
  /** A record: label bytes then 3072 pixels, pixel p of record r = (31*r + 7*p) mod 256. */
  const record = (labels: number[], r: number) => [...labels, ...Array.from({ length: 3072 }, (_, p) => (31 * r + 7 * p) % 256)];
  const expectImage = (ds: Dataset, k: number, r: number) => {
    for (const p of [0, 1, 1023, 1024, 2048, 3071]) assert.equal(ds.images[k * 3072 + p], unit((31 * r + 7 * p) % 256), `example ${k} pixel ${p}`);
  };

  test('CIFAR-10: batches in order, CHW records, labels, archive subfolder', () => {
    const dir = dirWith({
      'cifar-10-batches-bin/data_batch_1.bin': Uint8Array.from([...record([3], 0), ...record([9], 1)]),
      'cifar-10-batches-bin/data_batch_2.bin': Uint8Array.from(record([0], 2)),
      'cifar-10-batches-bin/test_batch.bin': Uint8Array.from(record([5], 3)),
    });
    const ds = loadDataDir(dir, { split: 'train' });
    assert.equal(ds.count, 3);
    assert.deepEqual(ds.shape, [3, 32, 32]);
    assert.equal(ds.classes, 10);
    assert.deepEqual([...ds.labels], [3, 9, 0]);
    [0, 1, 2].forEach((r) => expectImage(ds, r, r));
    const te = loadDataDir(dir, { split: 'test' });
    assert.deepEqual([...te.labels], [5]);
    expectImage(te, 0, 3);
  });

  test('CIFAR-100: fine labels by default, coarse on request', () => {
    const dir = dirWith({ 'train.bin': Uint8Array.from([...record([4, 99], 0), ...record([19, 7], 1)]), 'test.bin': Uint8Array.from(record([0, 1], 2)) });
    const fine = loadDataDir(dir, { split: 'train' });
    assert.deepEqual([...fine.labels], [99, 7]);
    assert.equal(fine.classes, 100);
    expectImage(fine, 1, 1);
    const coarse = loadDataDir(dir, { split: 'train', cifar100Labels: 'coarse' });
    assert.deepEqual([...coarse.labels], [4, 19]);
    assert.equal(coarse.classes, 20);
  });

  test('corrupt files', () => {
    throwsRp(() => loadDataDir(dirWith({ 'data_batch_1.bin': Uint8Array.from(record([1], 0)).subarray(0, 3000) }), { split: 'train' }),
      /data_batch_1.bin is truncated or not a CIFAR-10 binary file: 3000 bytes/);
    throwsRp(() => loadDataDir(dirWith({ 'data_batch_1.bin': Uint8Array.from([...record([1], 0), ...record([10], 1)]) }), { split: 'train' }),
      /data_batch_1.bin: label 10 of record 1 is out of range \[0, 10\)/);
    throwsRp(() => loadDataDir(dirWith({ 'data_batch_1.bin': Uint8Array.from(record([1], 0)), 'data_batch_3.bin': Uint8Array.from(record([1], 0)) }), { split: 'train' }),
      /has data_batch_3.bin but not data_batch_2.bin/);
    throwsRp(() => loadDataDir(dirWith({ 'train.bin': Uint8Array.from(record([20, 5], 0)) }), { split: 'train', cifar100Labels: 'coarse' }),
      /label 20 of record 0 is out of range \[0, 20\)/);
  });
});

/** .npy bytes written by hand (v1 header padded to 64 bytes like NumPy, or v2). */
function npy(descr: string, shape: number[], data: ArrayBufferView, version = 1): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const pre = version === 1 ? 10 : 12;
  header += ' '.repeat(63 - ((pre + header.length) % 64)) + '\n';
  const head = Buffer.alloc(pre);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head);
  if (version === 1) head.writeUInt16LE(header.length, 8);
  else head.writeUInt32LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** A zip written by hand: local headers, data, central directory, end record. */
function zip(entries: { name: string; data: Uint8Array; deflate: boolean; declaredSize?: number }[]): Uint8Array {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const body = e.deflate ? zlib.deflateRawSync(e.data) : Buffer.from(e.data);
    const name = Buffer.from(e.name);
    const crc = zlib.crc32(e.data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(20, 4); lh.writeUInt16LE(e.deflate ? 8 : 0, 8);
    lh.writeUInt32LE(crc, 14); lh.writeUInt32LE(body.length, 18); lh.writeUInt32LE(e.declaredSize ?? e.data.length, 22); lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(20, 4); ch.writeUInt16LE(20, 6); ch.writeUInt16LE(e.deflate ? 8 : 0, 10);
    ch.writeUInt32LE(crc, 16); ch.writeUInt32LE(body.length, 20); ch.writeUInt32LE(e.declaredSize ?? e.data.length, 24); ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, name, body);
    centrals.push(ch, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(entries.length, 8); end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

describe('NPY / NPZ', () => {
  test('parseNpy decodes every supported dtype, v1 and v2 headers', () => {
    const f4 = parseNpy(npy('<f4', [2, 3], new Float32Array([0.5, -1, 2, 3.25, 4, 5])), 'a.npy');
    assert.deepEqual(f4.shape, [2, 3]);
    assert.deepEqual([...f4.data], [0.5, -1, 2, 3.25, 4, 5]);
    assert.deepEqual([...parseNpy(npy('<f8', [2], new Float64Array([0.1, 1e300]), 2), 'b.npy').data], [0.1, 1e300]);
    assert.deepEqual([...parseNpy(npy('|u1', [3], new Uint8Array([0, 128, 255])), 'c.npy').data], [0, 128, 255]);
    assert.deepEqual([...parseNpy(npy('<i4', [2], new Int32Array([-7, 123456789])), 'd.npy').data], [-7, 123456789]);
    assert.deepEqual([...parseNpy(npy('<i8', [2], new BigInt64Array([-1n, 9007199254740991n])), 'e.npy').data], [-1n, 9007199254740991n]);
    assert.deepEqual(parseNpy(npy('<f4', [], new Float32Array([7])), 's.npy').shape, []);
  });

  test('NumPy-written fixtures: np.savez (stored, ZIP64 local headers), NHWC -> NCHW, (N,1) labels', () => {
    const dir = join(FIXTURES, 'keras');
    const ds = loadDataDir(dir, { split: 'train' });
    assert.equal(ds.count, 3);
    assert.deepEqual(ds.shape, [3, 2, 2]);
    for (let n = 0; n < 3; n++) for (let c = 0; c < 3; c++) for (let h = 0; h < 2; h++) for (let w = 0; w < 2; w++) {
      // NumPy wrote arange(36)*7 % 256 reshaped (3, 2, 2, 3): element [n, h, w, c].
      assert.equal(ds.images[((n * 3 + c) * 2 + h) * 2 + w], unit(((n * 12 + h * 6 + w * 3 + c) * 7) % 256));
    }
    assert.deepEqual([...ds.labels], [2, 0, 1]);
    const te = loadDataDir(dir, { split: 'test' });
    assert.deepEqual([...te.labels], [1, 2]);
    assert.equal(te.classes, 3);
    assert.equal(ds.classes, 3);
  });

  test('NumPy-written fixtures: np.savez_compressed train.npz (deflate) and separate .npy files', () => {
    const ds = loadDataDir(join(FIXTURES, 'compressed'), { split: 'train' });
    assert.deepEqual(ds.shape, [1, 2, 2]);
    assert.deepEqual([...ds.images], Array.from({ length: 16 }, (_, i) => i / 16));
    assert.deepEqual([...ds.labels], [3, 1, 4, 1]);
    assert.equal(ds.classes, 5);
    assert.equal(hasSplit(join(FIXTURES, 'compressed'), 'test'), false);
    const np = loadDataDir(join(FIXTURES, 'npy'), { split: 'train' });
    assert.deepEqual(np.shape, [1, 2, 2]);
    assert.deepEqual([...np.images], Array.from({ length: 8 }, (_, i) => i / 8));
    assert.deepEqual([...np.labels], [1, 0]);
  });

  test('hand-written zip with stored and deflated entries', () => {
    // x_train NHWC uint8 (2, 1, 2, 3): value at [n, h, w, c] = 100n + 10w + c.
    const x = new Uint8Array(12);
    for (let n = 0; n < 2; n++) for (let w = 0; w < 2; w++) for (let c = 0; c < 3; c++) x[n * 6 + w * 3 + c] = 100 * n + 10 * w + c;
    const dir = dirWith({
      'data.npz': zip([
        { name: 'x_train.npy', data: npy('|u1', [2, 1, 2, 3], x), deflate: true },
        { name: 'y_train.npy', data: npy('<i8', [2], new BigInt64Array([4n, 2n])), deflate: false },
        { name: 'x_test.npy', data: npy('<f4', [1, 2, 1, 2], new Float32Array([0.25, 0.5, 0.75, 1])), deflate: false },
        { name: 'y_test.npy', data: npy('<i4', [1, 1], new Int32Array([6])), deflate: true },
      ]),
    });
    const ds = loadDataDir(dir, { split: 'train' });
    assert.deepEqual(ds.shape, [3, 1, 2]);
    // NCHW [n, c, 0, w] = (100n + 10w + c) / 255.
    assert.deepEqual([...ds.images], [0, 10, 1, 11, 2, 12, 100, 110, 101, 111, 102, 112].map(unit));
    assert.deepEqual([...ds.labels], [4, 2]);
    assert.equal(ds.classes, 7);
    const te = loadDataDir(dir, { split: 'test' });
    assert.deepEqual(te.shape, [2, 1, 2]); // last dim 2 is not a channel count: NCHW as stored
    assert.deepEqual([...te.images], [0.25, 0.5, 0.75, 1]);
  });

  test('bad NPY / NPZ files', () => {
    throwsRp(() => parseNpy(readFileSync(join(FIXTURES, 'bad', 'fortran.npy')), 'fortran.npy'), /fortran.npy is stored in Fortran order/);
    throwsRp(() => parseNpy(readFileSync(join(FIXTURES, 'bad', 'bigendian.npy')), 'big.npy'), /unsupported dtype '>f4'; use one of <f4 <f8 \|u1 <i4 <i8/);
    throwsRp(() => parseNpy(npy('<f4', [4], new Float32Array([1, 2, 3])), 't.npy'), /t.npy is truncated: shape \(4\) of <f4 needs 16 data bytes but the file has 12/);
    throwsRp(() => parseNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), 'x.npy'), /not a .npy file/);
    const entries = [
      { name: 'x_train.npy', data: npy('|u1', [2, 2, 2], new Uint8Array(8)), deflate: false },
      { name: 'y_train.npy', data: npy('<i8', [2], new BigInt64Array([1n, -1n])), deflate: false },
    ];
    throwsRp(() => loadDataDir(dirWith({ 'd.npz': zip(entries) }), { split: 'train' }), /label -1 of example 1 is out of range/);
    const good = zip([entries[0]!, { name: 'y_train.npy', data: npy('<i8', [3], new BigInt64Array([1n, 0n, 1n])), deflate: true }]);
    throwsRp(() => loadDataDir(dirWith({ 'd.npz': good }), { split: 'train' }), /x_train has 2 images but y_train has 3 labels/);
    throwsRp(() => loadDataDir(dirWith({ 'd.npz': good.subarray(0, good.length - 30) }), { split: 'train' }), /d.npz is not a valid zip\/npz file/);
    const flipped = Uint8Array.from(good);
    flipped[100] ^= 0xff; // inside x_train's stored pixels
    throwsRp(() => loadDataDir(dirWith({ 'd.npz': flipped }), { split: 'train' }), /entry 'x_train.npy' fails its CRC-32 check/);
    throwsRp(() => loadDataDir(dirWith({ 'train.npz': zip([entries[0]!]) }), { split: 'train' }), /train.npz holds neither images\/labels nor x\/y/);
  });
});

describe('Dataset operations and samplers', () => {
  // 10 examples of shape [2, 1, 2]: value at [n, c, 0, w] = 10n + 2c + w.
  const ds = makeDataset({
    images: Float32Array.from({ length: 40 }, (_, i) => 10 * Math.floor(i / 4) + (i % 4)),
    labels: Int32Array.from({ length: 10 }, (_, i) => i % 3),
    count: 10, shape: [2, 1, 2], classes: 3, name: 'toy', source: 'test',
  });

  test('subset, split and normalize', () => {
    const s = subset(ds, [3, 1]);
    assert.deepEqual([...s.images], [30, 31, 32, 33, 10, 11, 12, 13]);
    assert.deepEqual([...s.labels], [0, 1]);
    const [a, b] = split(ds, 3);
    assert.deepEqual([...a.labels], [0, 1, 2]);
    assert.equal(b.count, 7);
    assert.equal(b.images[0], 30);
    const [r1, r2] = split(ds, 4, new Random(5));
    const seen = [...r1.images.filter((_, i) => i % 4 === 0), ...r2.images.filter((_, i) => i % 4 === 0)].sort((x, y) => x - y);
    assert.deepEqual(seen, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    const nz = normalize(ds, [1, 2], [2, 4]);
    assert.deepEqual([...nz.images.slice(4, 8)], [(10 - 1) / 2, (11 - 1) / 2, (12 - 2) / 4, (13 - 2) / 4]);
    assert.deepEqual(nz.normalization, { mean: [1, 2], std: [2, 4] });
    const st = channelStats(ds);
    const again = channelStats(normalize(ds, st.mean, st.std));
    again.mean.forEach((m) => assert.ok(Math.abs(m) < 1e-6));
    again.std.forEach((v) => assert.ok(Math.abs(v - 1) < 1e-6));
    // Channel 0 holds 10n + {0, 1}: mean 45.5.
    assert.ok(Math.abs(st.mean[0]! - 45.5) < 1e-9);
    throwsRp(() => normalize(nz, [0], [1]), /already normalized/);
    throwsRp(() => normalize(ds, [0, 0, 0], [1]), /mean has 3 entries but the images have 2 channels/);
  });

  test('batches without shuffle: file order, last batch short or dropped', () => {
    const bs = [...batches(ds, 4, { shuffle: false })];
    assert.deepEqual(bs.map((b) => b.size), [4, 4, 2]);
    assert.deepEqual([...bs[0]!.indices], [0, 1, 2, 3]);
    assert.deepEqual([...bs[0]!.images], [...ds.images.slice(0, 16)]);
    assert.deepEqual([...bs[0]!.labels], [0, 1, 2, 0]);
    assert.deepEqual([...bs[0]!.labels64], [0n, 1n, 2n, 0n]);
    assert.deepEqual([...bs[2]!.indices], [8, 9]);
    assert.equal([...batches(ds, 4, { shuffle: false, dropLast: true })].length, 2);
    throwsRp(() => [...batches(ds, 0, { shuffle: false })], /batch size must be a positive integer/);
  });

  test('shuffled batches: a permutation per epoch, reproducible from the seed', () => {
    const big = subset(ds, Array.from({ length: 200 }, (_, i) => i % 10));
    const epoch = (rng: Random) => [...batches(big, 32, { shuffle: true, rng })];
    const e1 = epoch(new Random(42));
    const order = e1.flatMap((b) => [...b.indices]);
    assert.deepEqual([...order].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i));
    assert.notDeepEqual(order, Array.from({ length: 200 }, (_, i) => i));
    assert.deepEqual(epoch(new Random(42)).flatMap((b) => [...b.indices]), order);
    const b = e1[1]!;
    for (let k = 0; k < b.size; k++) {
      assert.equal(b.images[k * 4], big.images[b.indices[k]! * 4]);
      assert.equal(b.labels[k], big.labels[b.indices[k]!]);
    }
    // The same generator continues with a different permutation for the next epoch.
    const rng = new Random(42);
    epoch(rng);
    assert.notDeepEqual(epoch(rng).flatMap((x) => [...x.indices]), order);
  });

  test('Poisson sampling: mean and variance of the batch size match Binomial(N, q); empty batches occur', () => {
    const n = 1000, q = 0.05, steps = 2000;
    const big = makeDataset({ images: new Float32Array(n), labels: new Int32Array(n), count: n, shape: [1, 1, 1], classes: 1, name: 'p', source: 't' });
    const sizes: number[] = [];
    const hits = new Uint32Array(n);
    for (const b of poissonBatches(big, q, steps, new Random(7))) {
      sizes.push(b.size);
      for (let k = 1; k < b.size; k++) assert.ok(b.indices[k]! > b.indices[k - 1]!);
      for (const i of b.indices) hits[i]!++;
    }
    assert.equal(sizes.length, steps);
    const mean = sizes.reduce((a, b) => a + b, 0) / steps;
    const variance = sizes.reduce((a, b) => a + (b - mean) ** 2, 0) / (steps - 1);
    const se = Math.sqrt((n * q * (1 - q)) / steps);
    assert.ok(Math.abs(mean - n * q) < 4 * se, `mean ${mean} vs ${n * q} (se ${se})`);
    // Variance N q (1-q) = 47.5; its standard error over 2000 draws is about 1.5.
    assert.ok(Math.abs(variance - n * q * (1 - q)) < 6, `variance ${variance}`);
    // Every example is included about q*steps = 100 times (binomial sd ~ 9.7).
    assert.ok(Math.min(...hits) > 50 && Math.max(...hits) < 150, `hits ${Math.min(...hits)}..${Math.max(...hits)}`);
    const small = subset(ds, [0, 1, 2]);
    const tiny = [...poissonBatches(small, 0.01, 200, new Random(3))];
    const empty = tiny.find((b) => b.size === 0)!;
    assert.ok(empty, 'some batch is empty');
    assert.equal(empty.images.length, 0);
    throwsRp(() => [...poissonBatches(ds, 0, 1, new Random(1))], /sample rate must lie in \(0, 1\]/);
  });
});

describe('hostile data files: bounded memory, no empty data sets, finite inputs', () => {
  /**
   * A gzip "bomb": concatenated gzip members (gunzip reads them all) of 16 MiB of zeros each,
   * after a first member holding a small, valid header. About 1 MB on disk, 1 GiB unpacked.
   */
  function gzipBomb(header: Uint8Array, members = 64): Buffer {
    const zeros = zlib.gzipSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 });
    return Buffer.concat([zlib.gzipSync(header), ...Array.from({ length: members }, () => zeros)]);
  }

  function boundedLoad(dir: string, pattern: RegExp): void {
    const rss = process.memoryUsage().rss;
    const started = Date.now();
    throwsRp(() => loadDataDir(dir, { split: 'train' }), pattern);
    const seconds = (Date.now() - started) / 1000;
    const grew = (process.memoryUsage().rss - rss) / 2 ** 20;
    // Unbounded, this took 4.2 GB resident; bounded by the header it is a few kilobytes.
    assert.ok(seconds < 5, `failed in ${seconds} s`);
    assert.ok(grew < 200, `resident memory grew by ${grew.toFixed(0)} MiB`);
  }

  test('a gzip IDX file that decompresses past what its header declares fails fast, in bounded memory', () => {
    const header = idx(0x00000803, [10, 28, 28], new Array<number>(7840).fill(7));
    const bomb = gzipBomb(header);
    assert.ok(bomb.length < 2_000_000, `${bomb.length} bytes`);
    const dir = dirWith({
      'train-images-idx3-ubyte.gz': bomb,
      'train-labels-idx1-ubyte.gz': zlib.gzipSync(idx(0x00000801, [10], new Array<number>(10).fill(1))),
    });
    boundedLoad(dir, /train-images-idx3-ubyte.gz decompresses to more than the 7856 bytes its header declares/);
    // A header declaring more than fits in memory is refused before decompressing anything.
    const huge = dirWith({
      'train-images-idx3-ubyte.gz': zlib.gzipSync(idx(0x00000803, [0xffffffff, 0xffff, 28], [])),
      'train-labels-idx1-ubyte.gz': zlib.gzipSync(idx(0x00000801, [1], [1])),
    });
    throwsRp(() => loadDataDir(huge, { split: 'train' }), /header declares \d+ bytes of data, more than can be loaded/);
    // The wrong magic inside a gzip file is reported as such, not as a size problem.
    const wrong = dirWith({
      'train-images-idx3-ubyte.gz': zlib.gzipSync(idx(0x00000801, [3], [1, 2, 3])),
      'train-labels-idx1-ubyte.gz': zlib.gzipSync(idx(0x00000801, [3], [1, 2, 3])),
    });
    throwsRp(() => loadDataDir(wrong, { split: 'train' }), /wrong IDX magic 0x00000801 \(expected 0x00000803/);
  });

  test('gzip NPY and deflated NPZ entries are bounded by their header and directory', () => {
    const x = npy('|u1', [2, 4, 4], new Uint8Array(32).fill(9));
    const dir = dirWith({ 'x_train.npy.gz': gzipBomb(x, 16), 'y_train.npy': npy('<i8', [2], new BigInt64Array([0n, 1n])) });
    boundedLoad(dir, /x_train.npy.gz decompresses to more than the \d+ bytes its header declares/);
    // An NPZ entry whose directory says 128 bytes but which inflates to 64 MiB.
    const big = Buffer.alloc(64 * 1024 * 1024);
    const npzDir = dirWith({ 'train.npz': zip([
      { name: 'images.npy', data: big, deflate: true, declaredSize: 128 },
      { name: 'labels.npy', data: npy('<i8', [2], new BigInt64Array([0n, 1n])), deflate: false },
    ]) });
    boundedLoad(npzDir, /entry 'images.npy' inflates to more than the 128 bytes the directory declares/);
  });

  test('a data set with no examples is refused at load (training would loop over empty epochs)', () => {
    const dir = dirWith({
      'train-images-idx3-ubyte': idx(0x00000803, [0, 28, 28], []),
      'train-labels-idx1-ubyte': idx(0x00000801, [0], []),
    });
    throwsRp(() => loadDataDir(dir, { split: 'train' }), /train-images-idx3-ubyte, .*train-labels-idx1-ubyte: the train split holds no examples/);
    const npyDir = dirWith({ 'x_train.npy': npy('<f4', [0, 2, 2], new Float32Array(0)), 'y_train.npy': npy('<i8', [0], new BigInt64Array(0)) });
    throwsRp(() => loadDataDir(npyDir, { split: 'train' }), /the train split holds no examples/);
  });

  test('checkFiniteInputs names the first NaN or infinity by example and position', () => {
    checkFiniteInputs(new Float32Array([0, -1e38, 3.4e38, 1e-45]), 2, 'x.npy');
    throwsRp(() => checkFiniteInputs(new Float32Array([0, 1, 2, 3, Number.NaN, 5]), 2, 'x.npy'), /^x.npy: input example 2, value 0 is NaN; inputs must be finite/);
    throwsRp(() => checkFiniteInputs(new Float32Array([0, 1, 2, Number.NEGATIVE_INFINITY]), 4, 'request'), /^request: input example 0, value 3 is -Infinity/);
    throwsRp(() => checkFiniteInputs([Infinity], 1, 'r'), /example 0, value 0 is Infinity/);
  });
});

describe('fitting data to the model (layout, shape, classes)', () => {
  const MODELS = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
  /** count CIFAR-like examples of 3x32x32 with pixel values that identify their position. */
  function cifarLike(count: number, labels: number[]): Dataset {
    const rng = new Random(5);
    return makeDataset({
      images: Float32Array.from({ length: count * 3072 }, () => rng.uniform()), labels: Int32Array.from(labels),
      count, shape: [3, 32, 32], classes: 10, name: 'cifar-like', source: 'test',
    });
  }

  test('a Keras-style NHWC model gets NCHW data transposed to [H, W, C]', () => {
    const keras = loadModel(join(MODELS, 'keras-style-resnet-nhwc-op13.onnx'));
    const ds = cifarLike(2, [1, 7]);
    const fitted = fitDataToModel(keras, ds);
    assert.equal(fitted.layout, 'nhwc');
    assert.deepEqual(fitted.shape, [32, 32, 3]);
    // Independent index arithmetic: NCHW (n, c, y, x) lands at NHWC (n, y, x, c).
    for (const [n, c, y, x] of [[0, 0, 0, 0], [0, 2, 5, 31], [1, 1, 31, 0], [1, 2, 17, 9]] as const) {
      assert.equal(fitted.images[n * 3072 + (y * 32 + x) * 3 + c], ds.images[n * 3072 + c * 1024 + y * 32 + x]);
    }
    assert.deepEqual([...fitted.labels], [1, 7]);
    // Fitting again is a no-op; an explicit layout that does not fit is refused with the fix.
    assert.equal(fitDataToModel(keras, fitted), fitted);
    throwsRp(() => fitDataToModel(keras, ds, { layout: 'nchw' }), /takes \[unk__1, 32, 32, 3\] .* but cifar-like has examples of 3x32x32/);
  });

  test('a shape mismatch names both shapes and the rebuild (resnet20 for 3x32x32, the default data is 1x28x28)', () => {
    const resnet20 = buildModel('resnet20');
    const train = loadDefaultDataset('train');
    throwsRp(() => fitDataToModel(resnet20, train), /the model's input '.*' takes \[.*, 3, 32, 32\] \(examples of 3x32x32\) but fashion-mnist-small\/train has examples of 1x28x28: rebuild the model for this data \(rp-onnx models create resnet20 --in-channels 1 --image-size 28\) or give data of 3x32x32/);
    const fitting = buildModel('resnet8', { inChannels: 1, imageSize: 28 });
    const { train: t2, test: none } = fitSplitsToModel(fitting, { train, test: undefined });
    assert.equal(t2, train);
    assert.equal(none, undefined);
  });

  test('labels outside the model\'s classes, NaN/Inf inputs and empty data are refused', () => {
    const model = buildModel('resnet8');
    throwsRp(() => fitDataToModel(model, makeDataset({ ...cifarLike(2, [3, 1]), labels: Int32Array.from([3, 255]), classes: 256 })), /cifar-like: label 255 of example 1 is outside the model's 10 classes \(0..9\)/);
    const nan = cifarLike(2, [0, 1]);
    const images = nan.images.slice();
    images[3072 + 5] = Number.NaN;
    throwsRp(() => fitDataToModel(model, makeDataset({ ...nan, images })), /cifar-like: input example 1, value 5 is NaN/);
    throwsRp(() => fitDataToModel(model, subset(nan, [])), /holds no examples/);
    // Labels below the model's class count take the model's count.
    assert.equal(fitDataToModel(buildModel('resnet8', { classes: 12 }), cifarLike(1, [0])).classes, 12);
  });

  test('predict: NHWC model on a CIFAR folder equals the same examples transposed by hand; label 255 exits 2', () => {
    const rng = new Random(9);
    const n = 3;
    const pixels = Uint8Array.from({ length: n * 3072 }, () => rng.int(256));
    const records = Buffer.alloc(n * 3073);
    for (let i = 0; i < n; i++) {
      records[i * 3073] = i;
      records.set(pixels.subarray(i * 3072, (i + 1) * 3072), i * 3073 + 1);
    }
    const dir = dirWith({ 'test_batch.bin': records });
    const nhwc = new Float32Array(n * 3072);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) nhwc[i * 3072 + p * 3 + c] = pixels[i * 3072 + c * 1024 + p]! / 255;
    writeFileSync(join(dir, 'x.npy'), npy('<f4', [n, 32, 32, 3], nhwc));
    const model = join(MODELS, 'keras-style-resnet-nhwc-op13.onnx');
    const fromDir = runCli(['predict', model, '--data', dir, '--json', '--threads', '1']);
    assert.equal(fromDir.status, 0, fromDir.stderr);
    const byHand = runCli(['predict', model, '--input', join(dir, 'x.npy'), '--json', '--threads', '1']);
    assert.equal(byHand.status, 0, byHand.stderr);
    const a = JSON.parse(fromDir.stdout) as { count: number };
    const b = JSON.parse(byHand.stdout) as { logits: number[][]; predictions: number[] };
    assert.equal(a.count, n);
    // Labels 0, 1, 2 exist, so accuracy is checkable against the hand-transposed predictions.
    const agree = b.predictions.filter((p, i) => p === i).length;
    assert.equal((a as unknown as { correct: number }).correct, agree);
    const labels = idx(0x00000801, [2], [3, 255]);
    const bad = dirWith({ 't10k-images-idx3-ubyte': idx(0x00000803, [2, 28, 28], new Array<number>(1568).fill(0)), 't10k-labels-idx1-ubyte': labels });
    const mnistModel = join(bad, 'resnet8.onnx');
    saveModel(buildModel('resnet8', { inChannels: 1, imageSize: 28 }), mnistModel);
    const r = runCli(['predict', mnistModel, '--data', bad]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^error: .*: label 255 of example 1 is outside the model's 10 classes \(0..9\)/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});

test('a .npy header with control characters in its dtype gives a one-line error (found by test/fuzz.test.ts)', () => {
  const bytes = Buffer.from(npy('<f4', [1], new Float32Array([1])));
  const at = bytes.indexOf("'<f4'") + 1;
  bytes[at] = 0x0a; // '\n' inside the descr string
  throwsRp(() => parseNpy(bytes, 'x.npy'), /^x.npy: unsupported dtype '\?f4'; use one of/);
});

test('train and audit refuse IDX label 255 for a 10-class model before any work, in one line', () => {
  const dir = dirWith({
    'train-images-idx3-ubyte': idx(0x00000803, [2, 28, 28], new Array<number>(1568).fill(0)),
    'train-labels-idx1-ubyte': idx(0x00000801, [2], [1, 255]),
    't10k-images-idx3-ubyte': idx(0x00000803, [2, 28, 28], new Array<number>(1568).fill(0)),
    't10k-labels-idx1-ubyte': idx(0x00000801, [2], [0, 1]),
  });
  const model = join(dir, 'resnet8.onnx');
  saveModel(buildModel('resnet8', { inChannels: 1, imageSize: 28 }), model);
  for (const args of [['train', model, '--data', dir, '--steps', '1', '-o', join(dir, 'out.onnx')], ['audit', model, '--train-data', dir]]) {
    const r = runCli(args);
    assert.equal(r.status, 2, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /^error: .*label 255 of example 1 is outside the model's 10 classes \(0..9\)/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
  assert.equal(existsSync(join(dir, 'out.onnx')), false);
});

test('a FIFO or a directory where a data file should be fails at once instead of blocking', () => {
  const dir = dirWith({ 'train-images-idx3-ubyte': idx(0x00000803, [1, 2, 2], [1, 2, 3, 4]) });
  execFileSync('mkfifo', [join(dir, 'train-labels-idx1-ubyte')]);
  const started = Date.now();
  throwsRp(() => loadDataDir(dir, { split: 'train' }), /train-labels-idx1-ubyte is a FIFO \(named pipe\), not a dataset file/);
  assert.ok(Date.now() - started < 5000);
  const d2 = dirWith({ 'x_train.npy': npy('<f4', [1, 1], new Float32Array([1])) });
  mkdirSync(join(d2, 'y_train.npy'));
  throwsRp(() => loadDataDir(d2, { split: 'train' }), /y_train.npy is a directory, not a dataset file/);
});
