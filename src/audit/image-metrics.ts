/**
 * Image reconstruction quality: MSE, PSNR and SSIM, for images stored CHW (one channel or
 * several, each channel compared separately and averaged).
 *
 * SSIM follows Wang, Bovik, Sheikh, Simoncelli 2004 ("Image quality assessment: from error
 * visibility to structural similarity") and their reference code: local statistics under a
 * normalized Gaussian window (11x11, sigma 1.5 by default; 7x7 for small images), evaluated at
 * every position where the window fits inside the image ("valid"), with
 *   SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),
 * C1 = (0.01 L)^2, C2 = (0.03 L)^2, L the data range; the mean over positions is the index.
 */

export function mse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length || a.length === 0) throw new RangeError(`mse: images of ${a.length} and ${b.length} values`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s / a.length;
}

/** Peak signal-to-noise ratio in dB: 10 log10(L^2 / MSE); Infinity for identical images. */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>, dataRange = 1): number {
  const e = mse(a, b);
  return e === 0 ? Infinity : 10 * Math.log10((dataRange * dataRange) / e);
}

export interface SsimOptions {
  /** Window side, odd (default 11; 7 suits images under ~22 pixels). */
  window?: number;
  sigma?: number;
  dataRange?: number;
  k1?: number;
  k2?: number;
}

/** Normalized 1-D Gaussian (the 2-D window is its outer product, so filtering is separable). */
export function gaussianKernel(size: number, sigma: number): Float64Array {
  const k = new Float64Array(size);
  const c = (size - 1) / 2;
  let s = 0;
  for (let i = 0; i < size; i++) s += k[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
  for (let i = 0; i < size; i++) k[i]! /= s;
  return k;
}

/** 'valid' separable filtering of an h x w plane: (h - n + 1) x (w - n + 1). */
function filterValid(img: Float64Array, h: number, w: number, k: Float64Array): Float64Array {
  const n = k.length;
  const oh = h - n + 1;
  const ow = w - n + 1;
  const rows = new Float64Array(h * ow);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i]! * img[y * w + x + i]!;
      rows[y * ow + x] = s;
    }
  }
  const out = new Float64Array(oh * ow);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i]! * rows[(y + i) * ow + x]!;
      out[y * ow + x] = s;
    }
  }
  return out;
}

/** The SSIM map of two single-channel h x w images. */
export function ssimMap(a: ArrayLike<number>, b: ArrayLike<number>, h: number, w: number, opts: SsimOptions = {}): Float64Array {
  const size = opts.window ?? 11;
  const sigma = opts.sigma ?? 1.5;
  const L = opts.dataRange ?? 1;
  if (size % 2 !== 1 || size < 1) throw new RangeError(`SSIM window must be odd, got ${size}`);
  if (h < size || w < size) throw new RangeError(`SSIM window ${size}x${size} does not fit a ${h}x${w} image; use a smaller window`);
  if (a.length !== h * w || b.length !== h * w) throw new RangeError(`SSIM: images of ${a.length} and ${b.length} values, expected ${h}x${w}`);
  const c1 = ((opts.k1 ?? 0.01) * L) ** 2;
  const c2 = ((opts.k2 ?? 0.03) * L) ** 2;
  const k = gaussianKernel(size, sigma);
  const x = Float64Array.from(a);
  const y = Float64Array.from(b);
  const prod = (p: Float64Array, q: Float64Array) => p.map((v, i) => v * q[i]!);
  const mx = filterValid(x, h, w, k);
  const my = filterValid(y, h, w, k);
  const xx = filterValid(prod(x, x), h, w, k);
  const yy = filterValid(prod(y, y), h, w, k);
  const xy = filterValid(prod(x, y), h, w, k);
  return mx.map((ux, i) => {
    const uy = my[i]!;
    const vx = xx[i]! - ux * ux;
    const vy = yy[i]! - uy * uy;
    const cxy = xy[i]! - ux * uy;
    return ((2 * ux * uy + c1) * (2 * cxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
  });
}

/** Mean SSIM of two CHW images of `shape` [C, H, W], averaged over channels. */
export function ssim(a: ArrayLike<number>, b: ArrayLike<number>, shape: readonly [number, number, number], opts: SsimOptions = {}): number {
  const [c, h, w] = shape;
  if (a.length !== c * h * w || b.length !== c * h * w) throw new RangeError(`SSIM: images of ${a.length} and ${b.length} values, expected [${shape.join(', ')}]`);
  const plane = h * w;
  let total = 0;
  for (let ch = 0; ch < c; ch++) {
    const pa = Array.prototype.slice.call(a, ch * plane, (ch + 1) * plane) as number[];
    const pb = Array.prototype.slice.call(b, ch * plane, (ch + 1) * plane) as number[];
    const map = ssimMap(pa, pb, h, w, opts);
    total += map.reduce((s, v) => s + v, 0) / map.length;
  }
  return total / c;
}
