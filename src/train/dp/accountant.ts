/**
 * Running privacy ledger of a DP-SGD run: it composes every step's (q, sigma_t) in RDP as the
 * steps happen, so epsilon can be printed at any time and a step that would exceed a budget can
 * be refused before it runs.
 *
 * Sampling and what the accountant is told:
 * - poisson: each example joins each batch independently with probability q: the subsampled
 *   Gaussian RDP of Mironov et al. applies exactly.
 * - shuffle: fixed-size batches from a permutation per epoch. Subsampling amplification is not
 *   proven for this scheme with our accountant, so we do not claim it: each example is used once
 *   per epoch, batches are disjoint (parallel composition), and an epoch costs one unamplified
 *   Gaussian mechanism at the smallest sigma used in that epoch: RDP(a) = a / (2 sigma_min^2).
 */
import { DEFAULT_ORDERS, rdpStep, rdpToDp } from '../../privacy/rdp.js';

export type Sampling = 'poisson' | 'shuffle';

export class PrivacyLedger {
  private readonly rdp: number[];
  private readonly cache = new Map<string, number[]>();
  steps = 0;
  /** Smallest sigma in the current epoch (shuffle sampling). */
  private epochMinSigma = Infinity;

  constructor(readonly sampling: Sampling, readonly sampleRate: number, readonly delta: number, readonly orders: readonly number[] = DEFAULT_ORDERS) {
    this.rdp = orders.map(() => 0);
  }

  private stepRdp(q: number, sigma: number): number[] {
    const key = `${q}:${sigma}`;
    let r = this.cache.get(key);
    if (!r) {
      r = this.orders.map((a) => rdpStep(q, sigma, a));
      this.cache.set(key, r);
    }
    return r;
  }

  /** Epsilon after the steps so far plus, optionally, one more step at `nextSigma`. */
  epsilon(nextSigma?: number): number {
    const total = [...this.rdp];
    const add = (r: number[]) => r.forEach((v, k) => { total[k]! += v; });
    if (this.sampling === 'poisson') {
      if (nextSigma !== undefined) add(this.stepRdp(this.sampleRate, nextSigma));
    } else {
      // The open epoch costs one Gaussian mechanism at its smallest sigma.
      const m = Math.min(this.epochMinSigma, nextSigma ?? Infinity);
      if (Number.isFinite(m)) add(this.stepRdp(1, m));
    }
    return rdpToDp(total, this.delta, this.orders).epsilon;
  }

  /** Records one step at noise multiplier sigma. */
  record(sigma: number): void {
    this.steps++;
    if (this.sampling === 'poisson') {
      const s = this.stepRdp(this.sampleRate, sigma);
      for (let k = 0; k < this.rdp.length; k++) this.rdp[k]! += s[k]!;
    } else {
      this.epochMinSigma = Math.min(this.epochMinSigma, sigma);
    }
  }

  /** Closes an epoch (shuffle sampling: its one Gaussian mechanism is composed now). */
  endEpoch(): void {
    if (this.sampling === 'shuffle' && Number.isFinite(this.epochMinSigma)) {
      const s = this.stepRdp(1, this.epochMinSigma);
      for (let k = 0; k < this.rdp.length; k++) this.rdp[k]! += s[k]!;
      this.epochMinSigma = Infinity;
    }
  }
}
