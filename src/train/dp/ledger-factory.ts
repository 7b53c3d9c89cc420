/**
 * The one place the DP loop constructs its privacy ledger and plans its noise (the accounting
 * itself lives in accountant.ts, plan.ts and src/privacy/). Everything the loop needs from the
 * accounting goes through `RunLedger`, so switching the ledger's constructor, or its
 * state()/restore(), touches this file only.
 *
 * A RunLedger also keeps the run's step history (sigma per step, run-length encoded, and the
 * epoch ends): checkpoints store it and a resumed run replays it into a fresh ledger, which
 * gives exactly the state of an uninterrupted run, and the privacy metadata records it, so
 * epsilon can be recomputed from the model file alone.
 */
import { PrivacyLedger, type Adjacency, type Sampling } from './accountant.js';
import { planNoise } from './plan.js';
import type { NoiseSchedule } from './noise-schedule.js';
import type { AccountantName } from '../../privacy/accountants/registry.js';
import type { DpOptions } from './dp-sgd.js';
import { RpOnnxError } from '../../errors.js';

/** One entry per run of equal-sigma steps; 'end' closes an epoch. */
export type LedgerEvent = { sigma: number; steps: number } | 'end';

export interface LedgerSettings {
  accountant: AccountantName;
  sampling: Sampling;
  sampleRate: number;
  delta: number;
}

export class RunLedger {
  private ledger: PrivacyLedger;
  private readonly history: LedgerEvent[] = [];
  /** The accountant that computes epsilon (the one asked for). */
  readonly accountant: AccountantName;

  constructor(readonly settings: LedgerSettings) {
    this.ledger = new PrivacyLedger(settings);
    this.accountant = settings.accountant;
  }

  /** Adjacency the guarantee holds for: add/remove-one under Poisson sampling, replace-one under shuffling. */
  get adjacency(): Adjacency {
    return this.ledger.adjacency;
  }

  get steps(): number {
    return this.ledger.steps;
  }

  record(sigma: number): void {
    this.ledger.record(sigma);
    const last = this.history.at(-1);
    if (last !== undefined && last !== 'end' && last.sigma === sigma) last.steps++;
    else this.history.push({ sigma, steps: 1 });
  }

  epsilon(nextSigma?: number): number {
    return this.ledger.epsilon(nextSigma);
  }

  endEpoch(): void {
    this.ledger.endEpoch();
    this.history.push('end');
  }

  /** Plain JSON for checkpoints and metadata. */
  state(): LedgerEvent[] {
    return this.history.map((e) => (e === 'end' ? e : { ...e }));
  }

  /** A ledger of these settings that has seen `events` (a checkpoint's history). */
  static restore(settings: LedgerSettings, events: unknown): RunLedger {
    const l = new RunLedger(settings);
    if (!Array.isArray(events)) throw new RpOnnxError('checkpoint: the privacy ledger state is missing');
    for (const e of events) {
      if (e === 'end') l.endEpoch();
      else if (e && typeof e === 'object' && Number.isFinite((e as { sigma: number }).sigma) && Number.isInteger((e as { steps: number }).steps)) {
        for (let k = 0; k < (e as { steps: number }).steps; k++) l.record((e as { sigma: number }).sigma);
      } else throw new RpOnnxError('checkpoint: the privacy ledger state is corrupt');
    }
    return l;
  }

  /** Accountant, sampling and adjacency, for statements. */
  describe(): string {
    return this.ledger.describe();
  }
}

/** The noise schedule of a run that takes `totalSteps` steps of `stepsPerEpoch` per epoch. */
export function planRunNoise(dp: DpOptions, plan: { sampleRate: number; stepsPerEpoch: number; totalSteps: number }): NoiseSchedule {
  return planNoise(dp, plan);
}
