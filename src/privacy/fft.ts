/**
 * Radix-2 complex FFT, in place, iterative (bit reversal then butterflies), with the twiddle
 * factors of each size computed once. Used by the PRV accountant to compose privacy-loss
 * distributions: a convolution is a pointwise product of transforms.
 */
import { RpOnnxError } from '../errors.js';

/** Per size: twiddles of every stage stored contiguously (stage with half-size m at offset m - 1), bit reversal. */
const tables = new Map<number, { cos: Float64Array; sin: Float64Array; rev: Uint32Array }>();

function tablesFor(n: number) {
  let t = tables.get(n);
  if (!t) {
    const cos = new Float64Array(n);
    const sin = new Float64Array(n);
    for (let m = 1; m < n; m <<= 1) {
      for (let k = 0; k < m; k++) {
        cos[m - 1 + k] = Math.cos((Math.PI * k) / m);
        sin[m - 1 + k] = Math.sin((Math.PI * k) / m);
      }
    }
    const bits = Math.log2(n);
    const rev = new Uint32Array(n);
    for (let i = 0; i < n; i++) rev[i] = (rev[i >> 1]! >> 1) | ((i & 1) << (bits - 1));
    t = { cos, sin, rev };
    tables.set(n, t);
  }
  return t;
}

/** In-place DFT X_k = sum_j x_j e^{-2 pi i jk/n} (inverse: e^{+2 pi i jk/n} / n). */
export function fft(re: Float64Array, im: Float64Array, inverse = false): void {
  const n = re.length;
  if (n !== im.length || n < 2 || (n & (n - 1)) !== 0) throw new RpOnnxError(`fft: size must be a power of two >= 2, got ${n}`);
  const { cos, sin, rev } = tablesFor(n);
  for (let i = 0; i < n; i++) {
    const j = rev[i]!;
    if (j > i) {
      let t = re[i]!; re[i] = re[j]!; re[j] = t;
      t = im[i]!; im[i] = im[j]!; im[j] = t;
    }
  }
  const sign = inverse ? 1 : -1;
  for (let m = 1; m < n; m <<= 1) {
    const size = m << 1;
    for (let start = 0; start < n; start += size) {
      for (let k = 0; k < m; k++) {
        const wr = cos[m - 1 + k]!;
        const wi = sign * sin[m - 1 + k]!;
        const a = start + k;
        const b = a + m;
        const br = re[b]!;
        const bi = im[b]!;
        const xr = br * wr - bi * wi;
        const xi = br * wi + bi * wr;
        const ar = re[a]!;
        const ai = im[a]!;
        re[b] = ar - xr;
        im[b] = ai - xi;
        re[a] = ar + xr;
        im[a] = ai + xi;
      }
    }
  }
  if (inverse) {
    for (let i = 0; i < n; i++) {
      re[i]! /= n;
      im[i]! /= n;
    }
  }
}
