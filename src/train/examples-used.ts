/**
 * Which training examples a run actually used: a bitmap over the training set (bit i set =
 * example i was in at least one batch; bit i is bit i % 8 of byte floor(i / 8), least
 * significant first), stored base64 in `rp-onnx.training` and in checkpoints. A run of
 * `--steps 20 --batch 8` on 512 examples used 160 of them, not the whole set; a membership
 * audit must know which.
 */
import { RpOnnxError } from '../errors.js';

export class ExamplesUsed {
  readonly bits: Uint8Array;
  constructor(readonly count: number, bits?: Uint8Array) {
    this.bits = bits ?? new Uint8Array(Math.ceil(count / 8));
  }

  mark(indices: ArrayLike<number>): void {
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      this.bits[i >> 3]! |= 1 << (i & 7);
    }
  }

  has(i: number): boolean {
    return (this.bits[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  get used(): number {
    let n = 0;
    for (let i = 0; i < this.count; i++) if (this.has(i)) n++;
    return n;
  }

  toBase64(): string {
    return Buffer.from(this.bits).toString('base64');
  }

  /** Indices of the examples used, ascending. */
  indices(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.count; i++) if (this.has(i)) out.push(i);
    return out;
  }

  /**
   * The inverse of toBase64. A bitmap too short for `count` examples is an error, not an empty
   * set: reading it as "nothing used" would silently change which examples count as members.
   * Trailing bytes beyond ceil(count / 8) are ignored.
   */
  static fromBase64(count: number, s: string, source = 'examples-used bitmap'): ExamplesUsed {
    const bytes = Buffer.from(s, 'base64');
    const need = Math.ceil(count / 8);
    if (bytes.length < need) throw new RpOnnxError(`${source}: holds ${bytes.length * 8} bits for ${count} examples`);
    const bits = new Uint8Array(need);
    bits.set(bytes.subarray(0, need));
    // Bits past `count` in the last byte are not examples.
    if (count % 8 !== 0) bits[need - 1]! &= (1 << (count % 8)) - 1;
    return new ExamplesUsed(count, bits);
  }
}
