/**
 * The accountant interface: an object that is told every release of a (subsampled) Gaussian
 * mechanism and answers, at any time, the epsilon spent at a delta. Modelled on Opacus's
 * `accountants/accountant.py`: `step` records, `epsilon` answers, `state`/`load` carry the
 * accountant through checkpoints. Every accountant here keeps the same history (merged segments
 * of equal noise multiplier and sample rate; composition is commutative, so equal releases are
 * counted together wherever they occur), so its state is small and a loaded accountant answers
 * exactly what the saved one did.
 */
import { RpOnnxError } from '../../errors.js';

/** One release of the Gaussian mechanism on a Poisson sample of rate `sampleRate` (1: no sampling). */
export interface GaussianRelease {
  /** Noise standard deviation / sensitivity. */
  noiseMultiplier: number;
  sampleRate: number;
}

/** `count` releases at the same parameters. */
export interface HistorySegment extends GaussianRelease {
  count: number;
}

/** Plain JSON, for checkpoints and metadata. */
export interface AccountantState {
  accountant: string;
  history: HistorySegment[];
}

export interface Accountant {
  /** Registry name ('prv', 'rdp'). */
  readonly name: string;
  /** What the accountant computes, for privacy statements. */
  readonly description: string;
  /** Records `count` releases (default 1). */
  step(release: GaussianRelease, count?: number): void;
  /** Epsilon spent by the releases so far at `delta`: an upper bound (Infinity when unbounded). */
  epsilon(delta: number): number;
  /** Epsilon after one more release, without recording it (budget checks before a step). */
  epsilonAfter(release: GaussianRelease, delta: number): number;
  /** Total number of releases recorded. */
  readonly steps: number;
  readonly history: readonly HistorySegment[];
  state(): AccountantState;
  /** Replaces the history with a saved one. */
  load(state: AccountantState): void;
}

export function validateRelease(r: GaussianRelease, count: number): void {
  if (!(r.sampleRate >= 0 && r.sampleRate <= 1)) throw new RpOnnxError(`sample rate must be in [0, 1], got ${r.sampleRate}`);
  if (!(r.noiseMultiplier >= 0) || Number.isNaN(r.noiseMultiplier)) throw new RpOnnxError(`noise multiplier must be >= 0, got ${r.noiseMultiplier}`);
  if (!(Number.isInteger(count) && count >= 0)) throw new RpOnnxError(`release count must be a non-negative integer, got ${count}`);
}

export function validateDelta(delta: number): void {
  if (!(delta > 0 && delta < 1)) throw new RpOnnxError(`delta must be in (0, 1), got ${delta}`);
}

/**
 * The history shared by all accountants. Subclasses see every change through `changed()`
 * (to drop caches) and compute epsilon from `history`.
 */
export abstract class HistoryAccountant implements Accountant {
  abstract readonly name: string;
  abstract readonly description: string;
  private readonly segments: HistorySegment[] = [];
  private readonly index = new Map<string, number>();
  steps = 0;

  get history(): readonly HistorySegment[] {
    return this.segments;
  }

  step(release: GaussianRelease, count = 1): void {
    validateRelease(release, count);
    if (count === 0) return;
    const key = `${release.noiseMultiplier}:${release.sampleRate}`;
    const k = this.index.get(key);
    if (k !== undefined) this.segments[k]!.count += count;
    else {
      this.index.set(key, this.segments.length);
      this.segments.push({ noiseMultiplier: release.noiseMultiplier, sampleRate: release.sampleRate, count });
    }
    this.steps += count;
    this.changed();
  }

  abstract epsilon(delta: number): number;

  epsilonAfter(release: GaussianRelease, delta: number): number {
    this.step(release);
    try {
      return this.epsilon(delta);
    } finally {
      this.unstep(release);
    }
  }

  /** Takes back one release recorded by step(). */
  private unstep(release: GaussianRelease): void {
    const key = `${release.noiseMultiplier}:${release.sampleRate}`;
    const k = this.index.get(key)!;
    const seg = this.segments[k]!;
    seg.count--;
    this.steps--;
    if (seg.count === 0) {
      this.segments.splice(k, 1);
      this.index.clear();
      this.segments.forEach((s, i) => this.index.set(`${s.noiseMultiplier}:${s.sampleRate}`, i));
    }
    this.changed();
  }

  state(): AccountantState {
    return { accountant: this.name, history: this.segments.map((s) => ({ ...s })) };
  }

  load(state: AccountantState): void {
    if (state.accountant !== this.name) throw new RpOnnxError(`accountant state is for '${state.accountant}', not '${this.name}'`);
    if (!Array.isArray(state.history)) throw new RpOnnxError('accountant state has no history');
    this.segments.length = 0;
    this.index.clear();
    this.steps = 0;
    for (const s of state.history) this.step({ noiseMultiplier: s.noiseMultiplier, sampleRate: s.sampleRate }, s.count);
    this.changed();
  }

  /** Called after every change of the history. */
  protected changed(): void {}
}
