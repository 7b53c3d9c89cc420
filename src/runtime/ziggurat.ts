/**
 * Fast exact Gaussian noise for the runtime: the ziggurat method (Marsaglia & Tsang 2000, 256
 * layers) on xoshiro128++ words (Blackman & Vigna).
 *
 * Why not onnxruntime's RandomNormalLike: its CPU kernel draws through std::normal_distribution on
 * minstd_rand0, about 6 ns per value on one thread here, which made a perturbed ResNet-18 25%
 * slower than the plain one. The same loop in C (native/ziggurat.c, used when built) costs about
 * 2.3 ns; in V8 (the fallback here) about 6 (2.8M values, this machine's AMD EPYC). It is
 * exact: ~98.5% of the draws take the fast path (one word, one table compare, one multiply); the
 * rest go through the wedge / tail tests of the original algorithm, so the output is N(0, 1), not
 * an approximation.
 *
 * Word layout: the low 8 bits pick the layer, the upper 24 bits (signed) are the position in it,
 * so the layer choice and the value use disjoint bits (the original RNOR shares them).
 *
 * Unpredictability: `reseed()` takes a fresh 128-bit state from the OS CSPRNG; the runtime calls it
 * before every run in secure mode, so each run's noise comes from its own key and nothing about
 * it follows from earlier outputs. xoshiro itself is not a cryptographic generator: a reseeded
 * stream is statistically fresh, and its key is unpredictable.
 */
import { randomFillSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** The C fill of native/ziggurat.c, when it was built (npm install builds it where a compiler exists). */
interface NativeZiggurat {
  fill(out: Float32Array, state: Int32Array, mean: number, scale: number): void;
  /** The same fill on a libuv worker thread; `state` is written back when the promise settles. */
  fillAsync(out: Float32Array, state: Int32Array, mean: number, scale: number): Promise<void>;
}

function loadNative(): NativeZiggurat | null {
  if (process.env.RP_ONNX_NATIVE === '0') return null;
  // src/runtime (sources run with tsx) or dist/src/runtime (the build): the package root is above.
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    const file = join(here, up, 'native', 'build', 'Release', 'rp_ziggurat.node');
    if (!existsSync(file)) continue;
    try {
      return createRequire(import.meta.url)(file) as NativeZiggurat;
    } catch {
      return null; // built for another Node ABI or platform: the TypeScript loop is used
    }
  }
  return null;
}

const native = loadNative();

/** Which implementation `fill` uses on Float32Arrays: 'native' (C addon) or 'typescript'. */
export const noiseBackend: 'native' | 'typescript' = native ? 'native' : 'typescript';

const LAYERS = 256;
/** Start of the tail (x of the outermost layer) and area of each layer, for 256 layers. */
const R = 3.6541528853610088;
const V = 0.00492867323399;
/** Positions are signed 24-bit integers: |j| < 2^23. */
const SCALE = 2 ** 23;

/** kn[i]: the fast-path bound of layer i; wn[i]: x per unit of j; fn[i]: density at x_i. */
const kn = new Int32Array(LAYERS);
const wn = new Float64Array(LAYERS);
const fn = new Float64Array(LAYERS);
{
  let dn = R;
  let tn = dn;
  const q = V / Math.exp(-0.5 * dn * dn);
  kn[0] = Math.floor((dn / q) * SCALE);
  kn[1] = 0;
  wn[0] = q / SCALE;
  wn[LAYERS - 1] = dn / SCALE;
  fn[0] = 1;
  fn[LAYERS - 1] = Math.exp(-0.5 * dn * dn);
  for (let i = LAYERS - 2; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(V / dn + Math.exp(-0.5 * dn * dn)));
    kn[i + 1] = Math.floor((dn / tn) * SCALE);
    tn = dn;
    fn[i] = Math.exp(-0.5 * dn * dn);
    wn[i] = dn / SCALE;
  }
}

export class ZigguratNormal {
  /** xoshiro128++ state (four 32-bit words, never all zero). */
  private readonly s = new Int32Array(4);
  /** The unfinished `fillAsync`, which owns the state until it settles. */
  private pending: Promise<void> | null = null;

  /** A generator from a number (reproducible) or, without one, from the OS CSPRNG. */
  constructor(seed?: number) {
    if (seed === undefined) this.reseed();
    else this.seedFrom(seed);
  }

  /** A fresh 128-bit state from the OS CSPRNG. */
  reseed(): void {
    this.assertIdle();
    do randomFillSync(this.s);
    while ((this.s[0]! | this.s[1]! | this.s[2]! | this.s[3]!) === 0);
  }

  /** Expands a 32-bit seed with splitmix32. */
  private seedFrom(seed: number): void {
    let x = seed >>> 0;
    for (let k = 0; k < 4; k++) {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[k] = z ^ (z >>> 16);
    }
    if ((this.s[0]! | this.s[1]! | this.s[2]! | this.s[3]!) === 0) this.s[0] = 1;
  }

  /** A distinct generator for another consumer: secure stays secure, seeded stays reproducible. */
  fork(secure: boolean): ZigguratNormal {
    this.assertIdle();
    return secure ? new ZigguratNormal() : new ZigguratNormal(this.word() >>> 0);
  }

  /** One 32-bit word (for forks and the slow path). */
  private word(): number {
    const s = this.s;
    let a = s[0]!, b = s[1]!, c = s[2]!, d = s[3]!;
    const t0 = (a + d) | 0;
    const r = (((t0 << 7) | (t0 >>> 25)) + a) | 0;
    const t = b << 9;
    c ^= a; d ^= b; b ^= c; a ^= d; c ^= t; d = (d << 11) | (d >>> 21);
    s[0] = a; s[1] = b; s[2] = c; s[3] = d;
    return r;
  }

  /** Uniform in (0, 1), never 0 (a log argument). */
  private open01(): number {
    return ((this.word() >>> 8) + 0.5) / 16777216;
  }

  /**
   * out[i] = mean + scale * z_i with z_i ~ N(0, 1) independent; the C addon when it is built
   * (same values as the TypeScript loop, see test/ziggurat.test.ts).
   */
  fill(out: Float32Array | Float64Array, mean = 0, scale = 1): void {
    this.assertIdle();
    if (native && out instanceof Float32Array) native.fill(out, this.s, mean, scale);
    else this.fillPortable(out, mean, scale);
  }

  /**
   * `fill` on a worker thread when the C addon is built (at once otherwise): the same values, drawn
   * while the caller's thread does other work. Neither `out` nor this generator may be used until
   * the promise settles (the generator throws if it is).
   */
  fillAsync(out: Float32Array, mean = 0, scale = 1): Promise<void> {
    if (!native) {
      this.fill(out, mean, scale);
      return Promise.resolve();
    }
    this.assertIdle();
    const done = native.fillAsync(out, this.s, mean, scale).finally(() => {
      this.pending = null;
    });
    this.pending = done;
    return done;
  }

  private assertIdle(): void {
    if (this.pending) throw new Error('internal error: a noise generator was used while its fillAsync was running');
  }

  /** The TypeScript implementation of `fill` (the reference, and the fallback without the addon). */
  fillPortable(out: Float32Array | Float64Array, mean = 0, scale = 1): void {
    const s = this.s;
    let a = s[0]!, b = s[1]!, c = s[2]!, d = s[3]!;
    const n = out.length;
    // Draws are used in order, the ~1.5% that miss the fast path finished at once from the same
    // stream, so the values of a stream do not depend on how it is split into fills.
    for (let i = 0; i < n; i++) {
      const t0 = (a + d) | 0;
      const w = (((t0 << 7) | (t0 >>> 25)) + a) | 0;
      const t = b << 9;
      c ^= a; d ^= b; b ^= c; a ^= d; c ^= t; d = (d << 11) | (d >>> 21);
      const iz = w & 255;
      const j = w >> 8;
      const m = j >> 31;
      if (((j ^ m) - m) < kn[iz]!) {
        out[i] = mean + scale * (j * wn[iz]!);
      } else {
        s[0] = a; s[1] = b; s[2] = c; s[3] = d;
        out[i] = mean + scale * this.slow(j, iz);
        a = s[0]!; b = s[1]!; c = s[2]!; d = s[3]!;
      }
    }
    s[0] = a; s[1] = b; s[2] = c; s[3] = d;
  }

  /** The wedge and tail tests of Marsaglia & Tsang's nfix, for a draw that missed the fast path. */
  private slow(j: number, iz: number): number {
    for (;;) {
      if (iz === 0) {
        // Base strip beyond the last layer: Marsaglia's exact tail sampler for x > R.
        let x: number;
        let y: number;
        do {
          x = -Math.log(this.open01()) / R;
          y = -Math.log(this.open01());
        } while (y + y < x * x);
        return j > 0 ? R + x : -R - x;
      }
      const x = j * wn[iz]!;
      if (fn[iz]! + this.open01() * (fn[iz - 1]! - fn[iz]!) < Math.exp(-0.5 * x * x)) return x;
      const w = this.word();
      iz = w & 255;
      j = w >> 8;
      if (Math.abs(j) < kn[iz]!) return j * wn[iz]!;
    }
  }
}
