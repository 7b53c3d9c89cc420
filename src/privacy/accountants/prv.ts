/**
 * The PRV accountant (Gopi, Lee, Wutschitz 2021): each release's privacy-loss distribution is
 * discretised on one grid (src/privacy/privacy-loss.ts), the composition is the product of their
 * Fourier transforms (raised to the count of each distinct release), and delta(eps) is read off
 * the composed distribution. epsilon(delta) is the UPPER end of a certified interval:
 *
 *   delta_true(eps) <= delta_inf + (1 - delta_inf) * (delta_grid(eps - epsError) + eta + wrap + slack)
 *
 * - epsError = h sqrt(T log(1/eta) / 2): Hoeffding on the T independent mean-zero rounding
 *   errors of width h (mesh h is chosen so that epsError <= the requested 0.01);
 * - eta = deltaError / 2, deltaError = delta / 1000 (as Opacus);
 * - wrap: the composed mass above the circular window, which the FFT would fold down; bounded
 *   by Chernoff with the exact moment generating functions of the discrete distributions;
 * - delta_inf: the probability that some release's loss fell above the grid (counted in full);
 * - slack: floating-point error of the transforms (n 2^-50) and of the cell quadrature (1e-6 delta).
 * Both directions of add/remove adjacency are composed (one complex FFT carries both real
 * distributions) and the larger epsilon is reported.
 *
 * Speed: one forward FFT per distinct release (cached), one inverse FFT per epsilon query, and
 * a cache of the last answers, so the ledger can ask every step. Up to 64 distinct releases are
 * composed exactly; beyond that (noise schedules) each sigma is rounded DOWN onto the geometric
 * grid 2^(j / 2^k) (a smaller sigma is never more private) with the finest k <= 9 that leaves
 * at most 64 groups (for a schedule spanning a factor 2: k = 6, sigma rounded down by < 1.1%).
 * The grids are nested, so a coarser grouping never gives a smaller epsilon.
 */
import { HistoryAccountant, validateDelta, type HistorySegment } from './accountant.js';
import { fft } from '../fft.js';
import { discretiseLoss, type DiscreteLoss } from '../privacy-loss.js';
import { DEFAULT_ORDERS, rdpStep } from '../rdp.js';
import { RpOnnxError } from '../../errors.js';

export interface PrvOptions {
  /** Largest certified epsilon error (default 0.01). */
  epsError?: number;
  /** deltaError = delta * this (default 1e-3). */
  deltaErrorRatio?: number;
}

export interface PrvBounds {
  lower: number;
  estimate: number;
  upper: number;
  /** The certified epsilon error of this grid (<= the requested one). */
  epsError: number;
  deltaError: number;
  gridSize: number;
}

/** Above this many distinct releases, sigmas are rounded down onto a geometric grid. */
const MAX_GROUPS = 64;
const FINEST_SIGMA_GRID = 9;
/** Largest transform (2^22 points: 32 MB per array); beyond it the mesh grows and epsError with it. */
const MAX_GRID = 2 ** 22;
/** Smallest transform: few releases get a finer mesh than the error target needs. */
const MIN_GRID = 2 ** 17;
const MGF_LAMBDAS = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64];

interface Grid {
  delta: number;
  h: number;
  /** Window of the composed distribution: k in [kLo, kLo + n). */
  kLo: number;
  n: number;
  capacity: number;
  eta: number;
}

/** One distinct release on a grid: spectra (log-polar) of both directions and their tails. */
interface GroupSpectrum {
  logMag: [Float64Array, Float64Array];
  angle: [Float64Array, Float64Array];
  shift: [number, number];
  pInf: [number, number];
  /** log E[exp(lambda Ytilde)] for MGF_LAMBDAS, per direction. */
  logMgf: [number[], number[]];
}

interface Group {
  key: string;
  sigma: number;
  q: number;
  count: number;
}

export class PrvAccountant extends HistoryAccountant {
  readonly name = 'prv';
  readonly description = 'PRV accountant (Gopi, Lee, Wutschitz 2021), upper end of its certified interval';
  readonly epsErrorTarget: number;
  readonly deltaErrorRatio: number;
  private grid: Grid | undefined;
  private readonly spectra = new Map<string, GroupSpectrum>();
  /** Shift, infinite mass and moments of every group on the grid (small; the spectra are not kept for all). */
  private readonly tails = new Map<string, Pick<GroupSpectrum, 'shift' | 'pInf' | 'logMgf'>>();
  /** Running sums over the included groups: sum count * log|X| and count * arg X, per direction. */
  private accLogMag: [Float64Array, Float64Array] | undefined;
  private accAngle: [Float64Array, Float64Array] | undefined;
  private included = new Map<string, number>();
  private readonly answers = new Map<string, PrvBounds>();

  constructor(opts: PrvOptions = {}) {
    super();
    this.epsErrorTarget = opts.epsError ?? 0.01;
    this.deltaErrorRatio = opts.deltaErrorRatio ?? 1e-3;
    if (!(this.epsErrorTarget > 0)) throw new RpOnnxError(`PRV eps error must be > 0, got ${this.epsErrorTarget}`);
  }

  epsilon(delta: number): number {
    return this.bounds(delta).upper;
  }

  /** The certified interval [lower, upper] and the estimate for epsilon at delta. */
  bounds(delta: number): PrvBounds {
    validateDelta(delta);
    const groups = this.groups();
    const key = `${delta}|${groups.map((g) => `${g.key}*${g.count}`).join(',')}`;
    const cached = this.answers.get(key);
    if (cached) return cached;
    const result = this.compute(delta, groups);
    if (this.answers.size > 4) this.answers.delete(this.answers.keys().next().value!);
    this.answers.set(key, result);
    return result;
  }

  /** The history as groups of releases; schedules' many sigmas rounded down onto a grid. */
  private groups(): Group[] {
    const live = this.history.filter((s) => s.count > 0 && s.sampleRate > 0);
    const byGrid = (k: number | undefined) => {
      const map = new Map<string, Group>();
      for (const s of live) {
        const sigma = k === undefined ? s.noiseMultiplier : roundSigmaDown(s.noiseMultiplier, k);
        const key = `${sigma}:${s.sampleRate}`;
        const g = map.get(key);
        if (g) g.count += s.count;
        else map.set(key, { key, sigma, q: s.sampleRate, count: s.count });
      }
      return [...map.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
    };
    if (live.length <= MAX_GROUPS) return byGrid(undefined);
    for (let k = FINEST_SIGMA_GRID; k > 0; k--) {
      const g = byGrid(k);
      if (g.length <= MAX_GROUPS) return g;
    }
    return byGrid(0);
  }

  private compute(delta: number, groups: Group[]): PrvBounds {
    const deltaError = delta * this.deltaErrorRatio;
    const none = { epsError: 0, deltaError, gridSize: 0 };
    if (groups.length === 0) return { lower: 0, estimate: 0, upper: 0, ...none };
    if (groups.some((g) => g.sigma === 0)) return { lower: Infinity, estimate: Infinity, upper: Infinity, ...none };
    const T = groups.reduce((a, g) => a + g.count, 0);
    const grid = this.ensureGrid(delta, groups, T);
    const { n, h, kLo, eta } = grid;
    // Bring the running sums to the groups' counts.
    const want = new Map(groups.map((g) => [g.key, g]));
    const gone = [...this.included.keys()].filter((k) => !want.has(k));
    if (gone.every((k) => this.spectra.has(k))) for (const k of gone) this.add(k, undefined, -this.included.get(k)!);
    else this.reset();
    for (const g of groups) {
      const d = g.count - (this.included.get(g.key) ?? 0);
      if (d !== 0) this.add(g.key, g, d);
    }
    // Shifts, infinite masses and the wrap bound of the composition.
    const shift = [0, 0];
    const logFinite = [0, 0];
    const logMgf = [MGF_LAMBDAS.map(() => 0), MGF_LAMBDAS.map(() => 0)];
    for (const g of groups) {
      const s = this.tails.get(g.key) ?? this.spectrum(g);
      for (const d of [0, 1] as const) {
        shift[d]! += g.count * s.shift[d];
        logFinite[d]! += g.count * Math.log1p(-s.pInf[d]);
        s.logMgf[d].forEach((v, i) => { logMgf[d]![i]! += g.count * v; });
      }
    }
    // Inverse transform of both composed spectra at once: A_remove + i A_add.
    const re = new Float64Array(n);
    const im = new Float64Array(n);
    const [lmR, lmA] = this.accLogMag!;
    const [anR, anA] = this.accAngle!;
    for (let j = 0; j < n; j++) {
      const mr = Math.exp(lmR[j]!);
      const ma = Math.exp(lmA[j]!);
      const ar = mr * Math.cos(anR[j]!);
      const ai = mr * Math.sin(anR[j]!);
      const br = ma * Math.cos(anA[j]!);
      const bi = ma * Math.sin(anA[j]!);
      re[j] = ar - bi;
      im[j] = ai + br;
    }
    fft(re, im, true);
    const epsError = h * Math.sqrt((T * Math.log(1 / eta)) / 2);
    const slack = n * 2 ** -50 + 1e-6 * delta;
    const out = { lower: 0, estimate: 0, upper: 0 };
    for (const d of [0, 1] as const) {
      const pmf = d === 0 ? re : im;
      const deltaInf = -Math.expm1(logFinite[d]!);
      const top = (kLo + n) * h + shift[d]!;
      const wrap = Math.min(1, ...MGF_LAMBDAS.map((l, i) => Math.exp(logMgf[d]![i]! - l * top)));
      const fin = (x: number) => (x - deltaInf) / (1 - deltaInf);
      const upper = solveEpsilon(pmf, kLo, h, shift[d]!, fin(delta) - eta - wrap - slack) + epsError;
      const estimate = solveEpsilon(pmf, kLo, h, shift[d]!, fin(delta));
      const lower = solveEpsilon(pmf, kLo, h, shift[d]!, fin(delta) + eta + slack) - epsError;
      out.upper = Math.max(out.upper, upper);
      out.estimate = Math.max(out.estimate, estimate);
      out.lower = Math.max(out.lower, lower);
    }
    return { lower: Math.max(0, out.lower), estimate: Math.max(0, out.estimate), upper: Math.max(0, out.upper), epsError, deltaError, gridSize: n };
  }

  /** The grid for this history: kept while it covers it, else rebuilt (capacity doubles). */
  private ensureGrid(delta: number, groups: Group[], T: number): Grid {
    const g0 = this.grid;
    const topNeeded = (capacity: number) => chernoffTop(groups, T, capacity, delta * this.deltaErrorRatio / 10);
    if (g0 && g0.delta === delta && T <= g0.capacity && topNeeded(g0.capacity) <= (g0.kLo + g0.n) * g0.h) return g0;
    const capacity = 2 ** Math.ceil(Math.log2(Math.max(T, 1)));
    const deltaError = delta * this.deltaErrorRatio;
    const eta = deltaError / 2;
    let h = this.epsErrorTarget / Math.sqrt((capacity * Math.log(1 / eta)) / 2);
    // Below the window the composed loss has mass <= e^bottom (E[e^-Y] = 1): deltaError / 10.
    const bottom = -Math.log(10 / deltaError) - 1;
    const top = topNeeded(capacity);
    let n = 2 ** Math.ceil(Math.log2((top - bottom) / h + 1));
    if (n < MIN_GRID) {
      // Short compositions: a finer mesh costs little and tightens the interval.
      n = MIN_GRID;
      h = (top - bottom) / (n - 1);
    } else if (n > MAX_GRID) {
      n = MAX_GRID;
      h = (top - bottom) / (n - 1);
    }
    const kLo = Math.floor(bottom / h);
    this.grid = { delta, h, kLo, n, capacity, eta };
    this.spectra.clear();
    this.tails.clear();
    this.reset();
    return this.grid;
  }

  /** Empties the running sums. */
  private reset(): void {
    const n = this.grid!.n;
    this.included = new Map();
    this.accLogMag = [new Float64Array(n), new Float64Array(n)];
    this.accAngle = [new Float64Array(n), new Float64Array(n)];
  }

  /** Adds `count` (may be negative) copies of a group's log-spectrum to the running sums. */
  private add(key: string, group: Group | undefined, count: number): void {
    const g = group ?? this.groupByKey(key);
    const s = this.spectrum(g);
    for (const d of [0, 1] as const) {
      const lm = this.accLogMag![d];
      const an = this.accAngle![d];
      const sl = s.logMag[d];
      const sa = s.angle[d];
      for (let j = 0; j < lm.length; j++) {
        lm[j]! += count * sl[j]!;
        an[j]! += count * sa[j]!;
      }
    }
    const c = (this.included.get(key) ?? 0) + count;
    if (c === 0) this.included.delete(key);
    else this.included.set(key, c);
  }

  private groupByKey(key: string): Group {
    const [sigma, q] = key.split(':').map(Number);
    return { key, sigma: sigma!, q: q!, count: 0 };
  }

  /** The spectra of a group on the current grid (a few kept; recomputed when evicted). */
  private spectrum(g: Group): GroupSpectrum {
    let s = this.spectra.get(g.key);
    if (s) {
      this.spectra.delete(g.key);
      this.spectra.set(g.key, s);
      return s;
    }
    const { h, kLo, n } = this.grid!;
    const kHi = kLo + n - 1;
    const remove = discretiseLoss('remove', g.q, g.sigma, h, kLo, kHi);
    const add = g.q === 1 ? remove : discretiseLoss('add', g.q, g.sigma, h, kLo, kHi);
    const re = new Float64Array(n);
    const im = new Float64Array(n);
    place(remove, re, n);
    place(add, im, n);
    fft(re, im);
    // Separate the two real transforms: X_r = (Z_j + conj Z_-j)/2, X_a = (Z_j - conj Z_-j)/(2i).
    const logMag: [Float64Array, Float64Array] = [new Float64Array(n), new Float64Array(n)];
    const angle: [Float64Array, Float64Array] = [new Float64Array(n), new Float64Array(n)];
    for (let j = 0; j < n; j++) {
      const r = (n - j) & (n - 1);
      const xr = (re[j]! + re[r]!) / 2;
      const xi = (im[j]! - im[r]!) / 2;
      const yr = (im[j]! + im[r]!) / 2;
      const yi = -(re[j]! - re[r]!) / 2;
      // log|X| floored at -745 (exp underflows there anyway) so that sums never meet -Infinity.
      logMag[0][j] = Math.max(-745, 0.5 * Math.log(xr * xr + xi * xi));
      angle[0][j] = Math.atan2(xi, xr);
      logMag[1][j] = Math.max(-745, 0.5 * Math.log(yr * yr + yi * yi));
      angle[1][j] = Math.atan2(yi, yr);
    }
    s = {
      logMag, angle,
      shift: [remove.shift, add.shift],
      pInf: [remove.pInf, add.pInf],
      logMgf: [logMgfOf(remove, h), logMgfOf(add, h)],
    };
    this.spectra.set(g.key, s);
    this.tails.set(g.key, { shift: s.shift, pInf: s.pInf, logMgf: s.logMgf });
    while (this.spectra.size > 3) this.spectra.delete(this.spectra.keys().next().value!);
    return s;
  }
}

/** Rounds sigma down onto the geometric grid 2^(j / 2^k). */
export function roundSigmaDown(sigma: number, k: number): number {
  if (!(sigma > 0) || !Number.isFinite(sigma)) return sigma;
  const steps = 2 ** k;
  let j = Math.floor(Math.log2(sigma) * steps);
  while (2 ** (j / steps) > sigma) j--;
  return 2 ** (j / steps);
}

/** A discrete loss placed on the circular array (index k mod n). */
function place(d: DiscreteLoss, out: Float64Array, n: number): void {
  for (let i = 0; i < d.pmf.length; i++) {
    const k = d.k0 + i;
    out[((k % n) + n) % n]! += d.pmf[i]!;
  }
}

function logMgfOf(d: DiscreteLoss, h: number): number[] {
  return MGF_LAMBDAS.map((l) => {
    let peak = -Infinity;
    for (let i = 0; i < d.pmf.length; i++) if (d.pmf[i]! > 0) peak = Math.max(peak, l * ((d.k0 + i) * h + d.shift));
    let s = 0;
    for (let i = 0; i < d.pmf.length; i++) if (d.pmf[i]! > 0) s += d.pmf[i]! * Math.exp(l * ((d.k0 + i) * h + d.shift) - peak);
    return peak + Math.log(s);
  });
}

/**
 * A point above which the composed loss (scaled to `capacity` releases) has mass <= tail, by
 * Chernoff with the RDP moments (E_P[e^{(a-1) Y}] = e^{(a-1) RDP(a)}; the add direction's
 * moments are at most the remove direction's, Mironov et al. 2019), plus a margin of 1 for the
 * rounding.
 */
function chernoffTop(groups: Group[], T: number, capacity: number, tail: number): number {
  const scale = capacity / Math.max(1, T);
  let best = Infinity;
  for (const a of DEFAULT_ORDERS) {
    if (a > 256) break;
    let r = 0;
    for (const g of groups) r += g.count * rdpStep(g.q, g.sigma, a);
    best = Math.min(best, scale * r + Math.log(1 / tail) / (a - 1));
  }
  return Math.max(best, 1) + 1;
}

/**
 * The smallest x with delta(x) = sum_{t_j > x} p_j (1 - e^{x - t_j}) <= target, for the circular
 * pmf whose index j holds the value t = k h + shift, k = the representative of j in
 * [kLo, kLo + n). Negative values (transform noise) count as 0, which can only raise delta.
 */
function solveEpsilon(pmf: Float64Array, kLo: number, h: number, shift: number, target: number): number {
  if (!(target > 0)) return Infinity;
  const n = pmf.length;
  const base = ((kLo % n) + n) % n;
  let c1 = 0;
  let c2 = 0;
  for (let i = n - 1; i >= 0; i--) {
    const p = pmf[(base + i) % n]!;
    const t = (kLo + i) * h + shift;
    if (p > 0) {
      c1 += p;
      c2 += p * Math.exp(-t);
    }
    // delta just below t: the sums over t_j >= t
    const below = (kLo + i - 1) * h + shift;
    const d = c1 - Math.exp(below) * c2;
    if (d > target) return c2 > 0 ? Math.log((c1 - target) / c2) : t;
  }
  return (kLo - 1) * h + shift;
}

/** Epsilon of a list of segments by the PRV accountant (upper end of the certified interval). */
export function prvEpsilon(segments: readonly HistorySegment[], delta: number, opts?: PrvOptions): number {
  const a = new PrvAccountant(opts);
  for (const s of segments) a.step(s, s.count);
  return a.epsilon(delta);
}
