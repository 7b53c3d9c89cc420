/**
 * NumPy .npy files (format versions 1.0-3.0): the magic "\x93NUMPY", a version byte pair, the
 * header length (uint16 little-endian for v1, uint32 for v2/v3), a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), }, then the raw elements.
 * Supported element types: <f4 <f8 |u1 <i4 <i8, C order only.
 */
import { endianness } from 'node:os';
import { RpOnnxError } from '../errors.js';
import { printable } from '../printable.js';

export type NpyDtype = 'f4' | 'f8' | 'u1' | 'i4' | 'i8';
export type NpyData = Float32Array | Float64Array | Uint8Array | Int32Array | BigInt64Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

/** descr string -> dtype, element size and a constructor over an aligned buffer. */
const DTYPES: Record<string, { dtype: NpyDtype; size: number; view: (b: ArrayBuffer, n: number) => NpyData }> = {
  '<f4': { dtype: 'f4', size: 4, view: (b, n) => new Float32Array(b, 0, n) },
  '<f8': { dtype: 'f8', size: 8, view: (b, n) => new Float64Array(b, 0, n) },
  '|u1': { dtype: 'u1', size: 1, view: (b, n) => new Uint8Array(b, 0, n) },
  '<i4': { dtype: 'i4', size: 4, view: (b, n) => new Int32Array(b, 0, n) },
  '<i8': { dtype: 'i8', size: 8, view: (b, n) => new BigInt64Array(b, 0, n) },
};
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

interface NpyHeader {
  type: (typeof DTYPES)[string];
  descr: string;
  shape: number[];
  count: number;
  dataStart: number;
}

/** The header of a .npy file; undefined when `bytes` ends inside it and `partial` allows that. */
function readHeader(bytes: Uint8Array, path: string, partial: boolean): NpyHeader | undefined {
  if (partial && bytes.length < 10) return undefined;
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new RpOnnxError(`${path} is not a .npy file (no \\x93NUMPY magic); save arrays with numpy.save`);
  }
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new RpOnnxError(`${path}: unsupported .npy format version ${major}.${bytes[7]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) {
    if (partial) return undefined;
    throw new RpOnnxError(`${path} is truncated inside its .npy header`);
  }
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes;
  if (bytes.length < start + headerLen) {
    if (partial) return undefined;
    throw new RpOnnxError(`${path} is truncated inside its .npy header`);
  }
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen));

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new RpOnnxError(`${path}: cannot read the .npy header ${JSON.stringify(header.trim().slice(0, 200))} (structured dtypes are not supported)`);
  }
  if (fortran === 'True') {
    throw new RpOnnxError(`${path} is stored in Fortran order; save it in C order (numpy.save(path, numpy.ascontiguousarray(a)))`);
  }
  const type = DTYPES[descr];
  if (!type) {
    throw new RpOnnxError(`${path}: unsupported dtype '${printable(descr, 40)}'; use one of ${Object.keys(DTYPES).join(' ')} (e.g. a.astype(numpy.float32))`);
  }
  if (type.size > 1 && endianness() !== 'LE') throw new RpOnnxError(`reading multi-byte .npy data needs a little-endian machine (${path})`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => {
    const d = Number(s.replace(/L$/, ''));
    if (!Number.isSafeInteger(d) || d < 0) throw new RpOnnxError(`${path}: bad shape (${printable(shapeText, 60)}) in the .npy header`);
    return d;
  });
  const count = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(count * type.size)) throw new RpOnnxError(`${path}: shape (${shape.join(', ')}) in the .npy header is too large`);
  return { type, descr, shape, count, dataStart: start + headerLen };
}

/** The file size a .npy header declares (header + data), to bound decompression. */
export function npyDeclaredSize(path: string): (head: Uint8Array) => number | undefined {
  return (head) => {
    const h = readHeader(head, path, true);
    return h ? h.dataStart + h.count * h.type.size : undefined;
  };
}

export function parseNpy(bytes: Uint8Array, path: string): NpyArray {
  const { type, descr, shape, count, dataStart } = readHeader(bytes, path, false)!;
  const need = count * type.size;
  const have = bytes.length - dataStart;
  if (have < need) throw new RpOnnxError(`${path} is truncated: shape (${shape.join(', ')}) of ${descr} needs ${need} data bytes but the file has ${have}`);
  // Copy into a fresh buffer: the data offset inside a file is not aligned for 4/8-byte views.
  const buf = new ArrayBuffer(need);
  new Uint8Array(buf).set(bytes.subarray(dataStart, dataStart + need));
  return { dtype: type.dtype, shape, data: type.view(buf, count) };
}
