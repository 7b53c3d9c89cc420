/**
 * A minimal PNG encoder (8-bit grayscale or RGB, no interlace), enough to save reconstructions
 * for a person to look at. Layout per the PNG specification: signature, IHDR, one IDAT holding
 * the zlib stream of the scanlines (each prefixed by filter type 0), IEND; every chunk ends with
 * the CRC-32 of its type and data.
 */
import { deflateSync } from 'node:zlib';

export interface RasterImage {
  width: number;
  height: number;
  /** 1 = grayscale, 3 = RGB (interleaved). */
  channels: 1 | 3;
  /** width * height * channels bytes, row-major. */
  data: Uint8Array;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309 / ITU-T V.42, the polynomial PNG and zlib use). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export function encodePng(img: RasterImage): Buffer {
  const { width, height, channels, data } = img;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width >= 1 && height >= 1)) throw new RangeError(`PNG size ${width}x${height} must be positive integers`);
  if (data.length !== width * height * channels) throw new RangeError(`PNG data has ${data.length} bytes, expected ${width}x${height}x${channels}`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 1 ? 0 : 2; // color type: grayscale or truecolor
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering (we use filter 0 on every row)
  ihdr[12] = 0; // no interlace
  const stride = width * channels;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) raw.set(data.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

/** Values in [lo, hi] to bytes (clamped, rounded). */
export function toBytes(values: ArrayLike<number>, lo = 0, hi = 1): Uint8Array {
  const out = new Uint8Array(values.length);
  const scale = 255 / (hi - lo);
  for (let i = 0; i < values.length; i++) out[i] = Math.max(0, Math.min(255, Math.round((values[i]! - lo) * scale)));
  return out;
}

/**
 * Images of one size (CHW floats in [lo, hi], C = 1 or 3) side by side, each scaled up by an
 * integer `zoom` (nearest neighbour) with a `gap`-pixel white border around and between them.
 * Several rows of images make a grid.
 */
export function tileImages(rows: readonly (readonly Float32Array[])[], shape: readonly [number, number, number], opts: { zoom?: number; gap?: number; lo?: number; hi?: number } = {}): RasterImage {
  const [c, h, w] = shape;
  if (c !== 1 && c !== 3) throw new RangeError(`images with ${c} channels cannot be saved as PNG (1 or 3)`);
  const zoom = opts.zoom ?? 4;
  const gap = opts.gap ?? 4;
  const cols = Math.max(...rows.map((r) => r.length));
  const width = gap + cols * (w * zoom + gap);
  const height = gap + rows.length * (h * zoom + gap);
  const data = new Uint8Array(width * height * c).fill(255);
  rows.forEach((row, r) => row.forEach((img, k) => {
    const bytes = toBytes(img, opts.lo ?? 0, opts.hi ?? 1);
    const x0 = gap + k * (w * zoom + gap);
    const y0 = gap + r * (h * zoom + gap);
    for (let y = 0; y < h * zoom; y++) {
      for (let x = 0; x < w * zoom; x++) {
        const src = Math.floor(y / zoom) * w + Math.floor(x / zoom);
        for (let ch = 0; ch < c; ch++) data[((y0 + y) * width + x0 + x) * c + ch] = bytes[ch * h * w + src]!;
      }
    }
  }));
  return { width, height, channels: c, data };
}
