/**
 * Turning NumPy arrays into dataset images and labels. The rules:
 * - Images of shape [N, H, W] are one-channel: [N, 1, H, W].
 * - A 4-D array whose LAST dimension is 1 or 3 is NHWC (Keras / TensorFlow layout, e.g. CIFAR-10
 *   from keras.datasets is [N, 32, 32, 3]) and is transposed to NCHW; any other 4-D array is NCHW.
 * - A 2-D array [N, D] is flat features, shape [1, 1, D].
 * - Integer images (uint8, int32, int64) must lie in 0..255 and are divided by 255; float images
 *   are taken as they are (assumed already scaled).
 * - Labels are [N] or [N, 1] non-negative integers (float labels must hold whole numbers).
 */
import { RpOnnxError } from '../errors.js';
import type { NpyArray } from './npy.js';
import { bytesToUnit } from './read-bytes.js';

export function arrayToImages(a: NpyArray, where: string): { images: Float32Array; count: number; shape: [number, number, number] } {
  const s = a.shape;
  let n: number, c: number, h: number, w: number, nhwc = false;
  if (s.length === 4) {
    if (s[3] === 1 || s[3] === 3) { [n, h, w, c] = s as [number, number, number, number]; nhwc = true; }
    else [n, c, h, w] = s as [number, number, number, number];
  } else if (s.length === 3) [n, c, h, w] = [s[0]!, 1, s[1]!, s[2]!];
  else if (s.length === 2) [n, c, h, w] = [s[0]!, 1, 1, s[1]!];
  else throw new RpOnnxError(`${where}: images must be 2-D, 3-D or 4-D, got shape (${s.join(', ')})`);

  const unit = toUnitFloat(a, where);
  if (!nhwc || c === 1) return { images: unit, count: n, shape: [c, h, w] };
  const images = new Float32Array(unit.length);
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    const base = i * plane * c;
    for (let p = 0; p < plane; p++) {
      for (let ch = 0; ch < c; ch++) images[base + ch * plane + p] = unit[base + p * c + ch]!;
    }
  }
  return { images, count: n, shape: [c, h, w] };
}

function toUnitFloat(a: NpyArray, where: string): Float32Array {
  const d = a.data;
  if (d instanceof Uint8Array) return bytesToUnit(d);
  if (d instanceof Float32Array) return d;
  if (d instanceof Float64Array) return Float32Array.from(d);
  const out = new Float32Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = Number(d[i]!);
    if (v < 0 || v > 255) throw new RpOnnxError(`${where}: integer image value ${v} at element ${i} is outside 0..255; store pixels as uint8 or as floats in [0, 1]`);
    out[i] = v / 255;
  }
  return out;
}

export function arrayToLabels(a: NpyArray, where: string): Int32Array {
  const s = a.shape;
  if (!(s.length === 1 || (s.length === 2 && s[1] === 1))) {
    throw new RpOnnxError(`${where}: labels must have shape (N,) or (N, 1) holding class indices, got (${s.join(', ')}); convert one-hot labels with argmax`);
  }
  const d = a.data;
  const out = new Int32Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = Number(d[i]!);
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
      throw new RpOnnxError(`${where}: label ${v} of example ${i} is out of range (labels are class indices 0, 1, 2, ...)`);
    }
    out[i] = v;
  }
  return out;
}
