/**
 * Which training examples a run actually used: a bitmap over the training set (bit i set =
 * example i was in at least one batch; bit i is bit i % 8 of byte floor(i / 8), least
 * significant first), stored base64 in `rp-onnx.training` and in checkpoints. A run of
 * `--steps 20 --batch 8` on 512 examples used 160 of them, not the whole set; a membership
 * audit must know which.
 */
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

  static fromBase64(count: number, s: string): ExamplesUsed {
    const bits = new Uint8Array(Buffer.from(s, 'base64'));
    if (bits.length !== Math.ceil(count / 8)) return new ExamplesUsed(count);
    return new ExamplesUsed(count, bits);
  }
}
