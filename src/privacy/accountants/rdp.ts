/**
 * The RDP accountant (Mironov 2017; subsampled Gaussian of Mironov, Talwar, Zhang 2019): RDP
 * adds up over releases at every order, then the best order gives epsilon by the conversion of
 * Balle et al. 2020. A loose but simple bound, kept for comparison with PRV and the literature.
 */
import { HistoryAccountant, validateDelta } from './accountant.js';
import { DEFAULT_ORDERS, rdpStep, rdpToDp } from '../rdp.js';

export class RdpAccountant extends HistoryAccountant {
  readonly name = 'rdp';
  readonly description = 'RDP of the subsampled Gaussian (Mironov et al. 2019), conversion of Balle et al. 2020';
  private readonly perRelease = new Map<string, number[]>();
  private total: number[] | undefined;

  constructor(readonly orders: readonly number[] = DEFAULT_ORDERS) {
    super();
  }

  protected override changed(): void {
    this.total = undefined;
  }

  /** RDP of the history at each order. */
  rdp(): number[] {
    if (!this.total) {
      const total = this.orders.map(() => 0);
      for (const s of this.history) {
        const key = `${s.noiseMultiplier}:${s.sampleRate}`;
        let r = this.perRelease.get(key);
        if (!r) {
          r = this.orders.map((a) => rdpStep(s.sampleRate, s.noiseMultiplier, a));
          this.perRelease.set(key, r);
        }
        for (let k = 0; k < total.length; k++) total[k]! += s.count * r[k]!;
      }
      this.total = total;
    }
    return this.total;
  }

  epsilon(delta: number): number {
    validateDelta(delta);
    return rdpToDp(this.rdp(), delta, this.orders).epsilon;
  }

  /** Epsilon and the order that gives it (null when no order gives a finite bound). */
  epsilonAndOrder(delta: number): { epsilon: number; order: number | null } {
    validateDelta(delta);
    return rdpToDp(this.rdp(), delta, this.orders);
  }
}
