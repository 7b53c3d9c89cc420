/**
 * Gradient encoding and denoising (after Nasr, Shokri, Houmansadr 2020):
 * - encode: each example's flattened gradient keeps only its top-k coordinates by magnitude
 *   (the rest become 0) before clipping, so the clipped L2 budget is spent on the coordinates
 *   that carry signal; clipping is then to L2 norm C as usual, so the Gaussian sensitivity
 *   analysis (and our accountant) is unchanged.
 * - denoise: post-processing of the noisy sum (free under DP): coordinates whose magnitude is
 *   below `threshold * noiseStd` are set to 0, because with sparse encoded gradients most
 *   coordinates of the sum are pure noise.
 */

/** Indices of the k largest |v[i]| (ties broken by index), by quickselect on magnitudes. */
export function topKIndices(v: Float32Array, k: number): Uint32Array {
  const n = v.length;
  if (k >= n) return Uint32Array.from({ length: n }, (_, i) => i);
  const idx = Uint32Array.from({ length: n }, (_, i) => i);
  const mag = (i: number) => Math.abs(v[idx[i]!]!);
  let lo = 0;
  let hi = n - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = Math.abs(v[idx[(lo + hi) >> 1]!]!);
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (mag(i) > pivot) i++;
      while (mag(j) < pivot) j--;
      if (i <= j) {
        const t = idx[i]!; idx[i] = idx[j]!; idx[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return idx.slice(0, k);
}

/** Zeroes all but the top-k coordinates of `g` in place. */
export function keepTopK(g: Float32Array, k: number): void {
  if (k >= g.length) return;
  const keep = topKIndices(g, k);
  const saved = Float32Array.from(keep, (i) => g[i]!);
  g.fill(0);
  keep.forEach((i, j) => { g[i] = saved[j]!; });
}

/** Hard-threshold denoising: zero the coordinates of `sum` smaller than threshold * noiseStd. */
export function denoise(sum: Float32Array, noiseStd: number, threshold: number): number {
  const cut = threshold * noiseStd;
  let zeroed = 0;
  for (let i = 0; i < sum.length; i++) {
    if (Math.abs(sum[i]!) < cut) {
      sum[i] = 0;
      zeroed++;
    }
  }
  return zeroed;
}
