/**
 * Reading dataset files: gzip is undone transparently (by the file's magic bytes, so a .gz
 * suffix is not required), and every failure becomes a one-line RpOnnxError naming the file.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { RpOnnxError } from '../../errors.js';

/** The file's bytes, gunzipped when it is a gzip file. */
export function readDataFile(path: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new RpOnnxError(`cannot read ${path}: ${(e as Error).message}`);
  }
  const isGzip = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  if (path.endsWith('.gz') && !isGzip) {
    throw new RpOnnxError(`${path} is not a gzip file (no gzip magic bytes); re-download it or drop the .gz suffix if it is uncompressed`);
  }
  if (!isGzip) return bytes;
  try {
    return gunzipSync(bytes);
  } catch (e) {
    throw new RpOnnxError(`${path} is a bad or truncated gzip file (${(e as Error).message}); re-download it`);
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
