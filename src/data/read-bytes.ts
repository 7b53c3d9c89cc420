/**
 * Reading dataset files: gzip is undone transparently (by the file's magic bytes, so a .gz
 * suffix is not required), and every failure becomes a one-line RpOnnxError naming the file.
 * Decompression is bounded: a format passes the size its header declares (read from the first
 * decompressed bytes), or a fixed cap, and output beyond it is refused as it is produced, so a
 * small "zip bomb" cannot take gigabytes of memory before failing.
 */
import { constants as bufferConstants } from 'node:buffer';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { RpOnnxError } from '../errors.js';
import { readRegularFile } from '../fs-read.js';

/**
 * The total decompressed size a file's header declares, from its first bytes; undefined when
 * `head` is too short to tell. May throw the format's own error for a header it does not accept.
 */
export type DeclaredSize = (head: Uint8Array) => number | undefined;

/** Cap for formats without a size in their header (CIFAR records, zip archives). */
export const MAX_DATA_FILE_BYTES = 2 ** 30;
/** Most bytes one Buffer may hold here. */
const BUFFER_LIMIT = Math.min(bufferConstants.MAX_LENGTH, 2 ** 32);
/** Compressed prefixes decompressed to read a header: deflate expands at most ~1032x. */
const HEADER_PREFIXES = [1024, 64 * 1024];

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The first decompressed bytes of a gzip file, enough for `declared` to decide. */
function declaredGzipSize(bytes: Uint8Array, path: string, declared: DeclaredSize): number {
  for (const prefix of HEADER_PREFIXES) {
    let head: Uint8Array;
    try {
      // Z_SYNC_FLUSH: a cut-off stream yields what it decoded instead of an error.
      head = gunzipSync(bytes.subarray(0, prefix), { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: 128 * 1024 * 1024 });
    } catch (e) {
      throw new RpOnnxError(`${path} is a bad or truncated gzip file (${(e as Error).message}); re-download it`);
    }
    const size = declared(head);
    if (size !== undefined) return size;
    if (prefix >= bytes.length) break;
  }
  throw new RpOnnxError(`${path}: its header is truncated or implausibly long; re-download it`);
}

/**
 * The file's bytes, gunzipped when it is a gzip file. `limit` bounds the decompressed size: the
 * size the header declares (a function of the first bytes), or a number of bytes.
 */
export function readDataFile(path: string, limit: DeclaredSize | number = MAX_DATA_FILE_BYTES): Uint8Array {
  const bytes = readRegularFile(path, 'a dataset file');
  const gzip = isGzip(bytes);
  if (path.endsWith('.gz') && !gzip) {
    throw new RpOnnxError(`${path} is not a gzip file (no gzip magic bytes); re-download it or drop the .gz suffix if it is uncompressed`);
  }
  if (!gzip) return bytes;
  const max = typeof limit === 'number' ? limit : declaredGzipSize(bytes, path, limit);
  if (!(max <= BUFFER_LIMIT)) {
    throw new RpOnnxError(`${path}: its header declares ${max} bytes of data, more than can be loaded (${BUFFER_LIMIT}); is this the right file?`);
  }
  try {
    // One byte of slack, so a stream longer than declared is told apart from one that fits.
    return gunzipSync(bytes, { maxOutputLength: Math.max(1, Math.min(BUFFER_LIMIT, max + 1)) });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
      throw new RpOnnxError(`${path} decompresses to more than the ${max} bytes ${typeof limit === 'number' ? 'allowed for this format' : 'its header declares'}; the file is corrupt or not a dataset`);
    }
    throw new RpOnnxError(`${path} is a bad or truncated gzip file (${err.message}); re-download it`);
  }
}

/** Lookup table byte -> byte/255 as float32 (exact division, then rounded once). */
const BYTE_SCALE = Float32Array.from({ length: 256 }, (_, i) => i / 255);

/** Scales 8-bit pixels to [0, 1]: out[i] = src[i] / 255. */
export function bytesToUnit(src: Uint8Array, out = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) out[i] = BYTE_SCALE[src[i]!]!;
  return out;
}

export function readU32BE(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}
