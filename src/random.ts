/**
 * Randomness is explicit: code that needs it takes a `Random`. Tests pass a seed for
 * reproducibility; anything that ships privacy noise uses `Random.secure()`, whose bits come
 * straight from the OS's cryptographic generator, so noise is unpredictable across processes
 * and restarts.
 */
import { randomBytes, randomFillSync } from 'node:crypto';

/** 32 random bits from the operating system's CSPRNG. */
export function secureSeed(): number {
  return randomBytes(4).readUInt32BE();
}

/** A source of uniformly random 32-bit words. */
interface WordSource {
  next(): number;
}

/** xoshiro128** (Blackman & Vigna), seeded through splitmix32: fast, 2^128 - 1 period. */
class Xoshiro128 implements WordSource {
  private a: number; private b: number; private c: number; private d: number;
  constructor(seed: number) {
    let x = seed >>> 0;
    const split = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = split(); this.b = split(); this.c = split(); this.d = split();
  }
  next(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a; this.d ^= this.b; this.b ^= this.c; this.a ^= this.d;
    this.c ^= t; this.d = rotl(this.d, 11);
    return r;
  }
}
function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Words from the OS CSPRNG, fetched in 64 KiB blocks. */
class CryptoWords implements WordSource {
  private buf = new Uint32Array(16384);
  private pos = this.buf.length;
  next(): number {
    if (this.pos === this.buf.length) {
      randomFillSync(this.buf);
      this.pos = 0;
    }
    return this.buf[this.pos++]!;
  }
}

export class Random {
  private spare: number | null = null;
  /** The seed, or null for a cryptographic generator. */
  readonly seed: number | null;
  private readonly src: WordSource;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.src = new Xoshiro128(this.seed);
  }

  /** A generator whose every bit comes from the OS's cryptographic generator. */
  static secure(): Random {
    const r = Object.create(Random.prototype) as Random;
    Object.assign(r, { spare: null, seed: null, src: new CryptoWords() });
    return r;
  }

  get isSecure(): boolean {
    return this.seed === null;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    return ((this.src.next() >>> 5) * 67108864 + (this.src.next() >>> 6)) / 9007199254740992;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }
  /** Standard normal deviate (Box-Muller, the second value cached). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
  /** Fills `out` with N(0, std^2) deviates. */
  fillNormal(out: Float32Array | Float64Array, std = 1): void {
    for (let i = 0; i < out.length; i++) out[i] = this.normal() * std;
  }
  /** Fisher-Yates shuffle of 0..n-1. */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i]!; p[i] = p[j]!; p[j] = t;
    }
    return p;
  }
  /** A generator with an independent stream (workers, ensemble members); secure stays secure. */
  fork(): Random {
    return this.isSecure ? Random.secure() : new Random(this.src.next());
  }
}
