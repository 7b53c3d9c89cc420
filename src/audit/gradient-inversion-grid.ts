/**
 * The PNG grid of a gradient-leakage run: one row per attacked example, one column per image
 * kind (original, then each method's reconstruction), each column headed by its label drawn in
 * a 5x7 pixel font (upper-case letters, digits, space, '-', '.', '=').
 */
import { tileImages, type RasterImage } from './png.js';

// 5x7 glyphs, one string of 7 rows of 5 bits each.
const GLYPHS: Readonly<Record<string, string>> = {
  A: '01110100011000111111100011000110001', B: '11110100011000111110100011000111110', C: '01110100011000010000100001000101110',
  D: '11110100011000110001100011000111110', E: '11111100001000011110100001000011111', F: '11111100001000011110100001000010000',
  G: '01110100011000010111100011000101111', H: '10001100011000111111100011000110001', I: '01110001000010000100001000010001110',
  J: '00111000100001000010000101001001100', K: '10001100101010011000101001001010001', L: '10000100001000010000100001000011111',
  M: '10001110111010110101100011000110001', N: '10001100011100110101100111000110001', O: '01110100011000110001100011000101110',
  P: '11110100011000111110100001000010000', Q: '01110100011000110001101011001001101', R: '11110100011000111110101001001010001',
  S: '01111100001000001110000010000111110', T: '11111001000010000100001000010000100', U: '10001100011000110001100011000101110',
  V: '10001100011000110001100010101000100', W: '10001100011000110101101011010101010', X: '10001100010101000100010101000110001',
  Y: '10001100010101000100001000010000100', Z: '11111000010001000100010001000011111',
  '0': '01110100011001110101110011000101110', '1': '00100011000010000100001000010001110', '2': '01110100010000100010001000100011111',
  '3': '11111000100010000010000011000101110', '4': '00010001100101010010111110001000010', '5': '11111100001111000001000011000101110',
  '6': '00110010001000011110100011000101110', '7': '11111000010001000100010000100001000', '8': '01110100011000101110100011000101110',
  '9': '01110100011000101111000010001001100', ' ': '00000000000000000000000000000000000', '-': '00000000000000011111000000000000000',
  '.': '00000000000000000000000000110001100', '=': '00000000001111100000111110000000000',
};

function drawText(img: RasterImage, text: string, x0: number, y0: number, scale: number, maxWidth: number): void {
  let x = x0;
  for (const ch of text.toUpperCase()) {
    const glyph = GLYPHS[ch] ?? GLYPHS[' ']!;
    if (x + 5 * scale > x0 + maxWidth) break;
    for (let r = 0; r < 7; r++) {
      for (let c = 0; c < 5; c++) {
        if (glyph[r * 5 + c] !== '1') continue;
        for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) {
          const px = ((y0 + r * scale + dy) * img.width + x + c * scale + dx) * img.channels;
          for (let k = 0; k < img.channels; k++) img.data[px + k] = 0;
        }
      }
    }
    x += 6 * scale;
  }
}

/** `rows[r][k]` is column k of example r; `labels[k]` heads column k. */
export function labelledGrid(rows: readonly (readonly Float32Array[])[], labels: readonly string[], shape: readonly [number, number, number], opts: { zoom?: number; gap?: number } = {}): RasterImage {
  const zoom = opts.zoom ?? 4;
  const gap = opts.gap ?? 4;
  const body = tileImages(rows, shape, { zoom, gap });
  const cellWidth = shape[2] * zoom;
  // The largest text scale at which the longest label fits its column (at least 1).
  const longest = Math.max(...labels.map((l) => l.length), 1);
  const scale = Math.max(1, Math.min(2, Math.floor(cellWidth / (6 * longest))));
  const header = 7 * scale + gap;
  const img: RasterImage = { width: body.width, height: body.height + header, channels: body.channels, data: new Uint8Array(body.width * (body.height + header) * body.channels).fill(255) };
  img.data.set(body.data, header * body.width * body.channels);
  labels.forEach((label, k) => drawText(img, label, gap + k * (cellWidth + gap), gap, scale, cellWidth));
  return img;
}
