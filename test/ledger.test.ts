/** The privacy ledger: accountants by name, adjacency by sampling, budget look-ahead, resume from state. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrivacyLedger, type LedgerState } from '../src/train/dp/accountant.js';
import { gaussianEpsilon } from './helpers/gaussian-mechanism.js';

test('shuffle sampling: replace-one adjacency, each epoch one Gaussian mechanism at sigma_min / 2 (closed forms)', () => {
  for (const accountant of ['prv', 'rdp'] as const) {
    const ledger = new PrivacyLedger({ accountant, sampling: 'shuffle', sampleRate: 0.1, delta: 1e-5 });
    assert.equal(ledger.adjacency, 'replace-one');
    assert.match(ledger.describe(), /replace-one/);
    for (let e = 0; e < 3; e++) {
      for (let t = 0; t < 10; t++) ledger.record(t === 4 ? 3 : 4);
      ledger.endEpoch();
    }
    // Three Gaussian mechanisms of noise multiplier 3/2: one of noise 1.5 / sqrt(3).
    const exact = gaussianEpsilon(1.5 / Math.sqrt(3), 1e-5);
    const eps = ledger.epsilon();
    if (accountant === 'prv') assert.ok(eps >= exact && eps <= exact + 0.02, `prv ${eps} vs exact ${exact}`);
    else {
      // RDP of the Gaussian: 3 alpha / (2 * 1.5^2), converted at the best order (Balle et al. 2020).
      let best = Infinity;
      for (let a = 1.01; a < 200; a += 0.01) best = Math.min(best, (3 * a) / (2 * 2.25) + Math.log((a - 1) / a) - (Math.log(1e-5) + Math.log(a)) / (a - 1));
      assert.ok(eps >= exact && Math.abs(eps - best) < 0.01, `rdp ${eps} vs closed form ${best}`);
    }
  }
});

test('poisson sampling: add/remove adjacency; epsilon(next) is the epsilon after recording next', () => {
  for (const accountant of ['prv', 'rdp'] as const) {
    const ledger = new PrivacyLedger({ accountant, sampling: 'poisson', sampleRate: 0.02, delta: 1e-5 });
    assert.equal(ledger.adjacency, 'add-remove');
    assert.match(ledger.describe(), /Poisson sampling at rate 0.02, add\/remove-one/);
    for (let t = 0; t < 50; t++) ledger.record(1.2 - t * 0.002);
    const before = ledger.epsilon();
    const predicted = ledger.epsilon(0.9);
    assert.equal(ledger.epsilon(), before, 'a look-ahead records nothing');
    ledger.record(0.9);
    assert.ok(Math.abs(ledger.epsilon() - predicted) < 1e-12, `${accountant}: ${ledger.epsilon()} vs ${predicted}`);
    assert.ok(predicted > before);
  }
  const none = new PrivacyLedger({ accountant: 'prv', sampling: 'poisson', sampleRate: 0.02, delta: 1e-5 });
  none.record(0);
  assert.equal(none.epsilon(), Infinity);
});

test('resume from state (JSON round trip) spends exactly what the uninterrupted run spends', () => {
  for (const accountant of ['prv', 'rdp'] as const) {
    for (const sampling of ['poisson', 'shuffle'] as const) {
      const opts = { accountant, sampling, sampleRate: 0.05, delta: 1e-6 };
      const sigma = (t: number) => 2 - t / 100;
      const run = (ledger: PrivacyLedger, from: number, to: number) => {
        for (let t = from; t < to; t++) {
          ledger.record(sigma(t));
          if ((t + 1) % 20 === 0) ledger.endEpoch();
        }
      };
      const whole = new PrivacyLedger(opts);
      run(whole, 0, 80);
      const first = new PrivacyLedger(opts);
      run(first, 0, 30); // stops mid-epoch
      const saved = JSON.parse(JSON.stringify(first.state())) as LedgerState;
      const resumed = PrivacyLedger.restore(saved);
      run(resumed, 30, 80);
      assert.equal(resumed.steps, 80);
      assert.equal(resumed.epochs, 4);
      assert.equal(resumed.epsilon(), whole.epsilon(), `${accountant} ${sampling}`);
    }
  }
  assert.throws(() => PrivacyLedger.restore({ version: 2 } as unknown as LedgerState), /version 2 is not supported/);
  assert.throws(() => new PrivacyLedger({ accountant: 'moments' as 'prv', sampling: 'poisson', sampleRate: 0.1, delta: 1e-5 }), /unknown accountant/);
});
