/**
 * Running privacy ledger of a DP-SGD run: it tells a named accountant (src/privacy/accountants)
 * every release as the steps happen, so epsilon can be printed at any time and a step that would
 * exceed a budget can be refused before it runs. Its state is plain JSON, for checkpoints.
 *
 * Sampling, adjacency and what the accountant is told:
 * - poisson: each example joins each batch independently with probability q. Under add/remove-
 *   one adjacency every step is the Poisson-subsampled Gaussian mechanism (q, sigma_t).
 * - shuffle: fixed-size batches from a permutation per epoch. No subsampling amplification is
 *   claimed. Batches are disjoint, so an example is used once per epoch; under replace-one
 *   adjacency (the neighbour differs in one example's value) that example's clipped gradient can
 *   move its batch's sum by 2C, and the epoch is one Gaussian mechanism whose noise multiplier
 *   relative to that sensitivity is sigma_min / 2 (sigma_min: the smallest sigma of the epoch),
 *   composed without sampling (q = 1). Add/remove is not claimed for shuffling: removing an
 *   example shifts the batches that follow it.
 */
import { RpOnnxError } from '../../errors.js';
import { createAccountant, type AccountantName } from '../../privacy/accountants/registry.js';
import type { Accountant, AccountantState } from '../../privacy/accountants/accountant.js';

export type Sampling = 'poisson' | 'shuffle';
export type Adjacency = 'add-remove' | 'replace-one';

export interface LedgerOptions {
  accountant: AccountantName;
  sampling: Sampling;
  sampleRate: number;
  delta: number;
}

export interface LedgerState extends LedgerOptions {
  version: 1;
  steps: number;
  epochs: number;
  /** Shuffle sampling: smallest sigma of the epoch still open (null: none recorded). */
  openEpochMinSigma: number | null;
  history: AccountantState;
}

export class PrivacyLedger {
  readonly accountant: AccountantName;
  readonly sampling: Sampling;
  readonly sampleRate: number;
  readonly delta: number;
  readonly adjacency: Adjacency;
  steps = 0;
  epochs = 0;
  private readonly inner: Accountant;
  /** Smallest sigma in the current epoch (shuffle sampling). */
  private epochMinSigma = Infinity;

  constructor(opts: LedgerOptions) {
    if (opts.sampling !== 'poisson' && opts.sampling !== 'shuffle') throw new RpOnnxError(`sampling must be poisson or shuffle, got '${String(opts.sampling)}'`);
    if (!(opts.sampleRate > 0 && opts.sampleRate <= 1)) throw new RpOnnxError(`sample rate must be in (0, 1], got ${opts.sampleRate}`);
    if (!(opts.delta > 0 && opts.delta < 1)) throw new RpOnnxError(`delta must be in (0, 1), got ${opts.delta}`, { param: 'delta' });
    this.accountant = opts.accountant;
    this.sampling = opts.sampling;
    this.sampleRate = opts.sampleRate;
    this.delta = opts.delta;
    this.adjacency = opts.sampling === 'poisson' ? 'add-remove' : 'replace-one';
    this.inner = createAccountant(opts.accountant);
  }

  /** Records one training step at noise multiplier sigma. */
  record(sigma: number): void {
    if (!(sigma >= 0)) throw new RpOnnxError(`noise multiplier must be >= 0, got ${sigma}`);
    this.steps++;
    if (this.sampling === 'poisson') this.inner.step({ noiseMultiplier: sigma, sampleRate: this.sampleRate });
    else this.epochMinSigma = Math.min(this.epochMinSigma, sigma);
  }

  /** Epsilon after the steps so far plus, optionally, one more step at `nextSigma`: an upper bound. */
  epsilon(nextSigma?: number): number {
    if (this.sampling === 'poisson') {
      return nextSigma === undefined ? this.inner.epsilon(this.delta) : this.inner.epsilonAfter({ noiseMultiplier: nextSigma, sampleRate: this.sampleRate }, this.delta);
    }
    // The open epoch costs one Gaussian mechanism at its smallest sigma (halved: sensitivity 2C).
    const m = Math.min(this.epochMinSigma, nextSigma ?? Infinity);
    return Number.isFinite(m) ? this.inner.epsilonAfter({ noiseMultiplier: m / 2, sampleRate: 1 }, this.delta) : this.inner.epsilon(this.delta);
  }

  /** Closes an epoch (shuffle sampling: its one Gaussian mechanism is composed now). */
  endEpoch(): void {
    this.epochs++;
    if (this.sampling === 'shuffle' && Number.isFinite(this.epochMinSigma)) {
      this.inner.step({ noiseMultiplier: this.epochMinSigma / 2, sampleRate: 1 });
      this.epochMinSigma = Infinity;
    }
  }

  /** Accountant, sampling and adjacency, for privacy statements. */
  describe(): string {
    const sampling = this.sampling === 'poisson'
      ? `Poisson sampling at rate ${this.sampleRate}, add/remove-one adjacency (each step a subsampled Gaussian mechanism)`
      : 'shuffled fixed-size batches without subsampling amplification, replace-one adjacency (sensitivity 2C: each epoch one Gaussian mechanism with noise multiplier sigma_min / 2)';
    return `${this.inner.description}; ${sampling}`;
  }

  state(): LedgerState {
    return {
      version: 1, accountant: this.accountant, sampling: this.sampling, sampleRate: this.sampleRate, delta: this.delta,
      steps: this.steps, epochs: this.epochs,
      openEpochMinSigma: Number.isFinite(this.epochMinSigma) ? this.epochMinSigma : null,
      history: this.inner.state(),
    };
  }

  static restore(state: LedgerState): PrivacyLedger {
    if (state?.version !== 1) throw new RpOnnxError(`privacy ledger state version ${String(state?.version)} is not supported`);
    const l = new PrivacyLedger(state);
    l.inner.load(state.history);
    l.steps = state.steps;
    l.epochs = state.epochs;
    l.epochMinSigma = state.openEpochMinSigma ?? Infinity;
    return l;
  }
}
