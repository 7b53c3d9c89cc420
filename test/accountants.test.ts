/** The accountant interface and registry: names, merged history, state round trips. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACCOUNTANT_NAMES, createAccountant, loadAccountant } from '../src/privacy/accountants/registry.js';
import { epsilon as rdpEpsilon } from '../src/privacy/rdp.js';

test('registry: every name creates its accountant; unknown names are one-line errors', () => {
  for (const name of ACCOUNTANT_NAMES) assert.equal(createAccountant(name).name, name);
  assert.throws(() => createAccountant('moments'), /unknown accountant 'moments': use one of/);
});

test('history is kept as merged segments, and load() restores it exactly', () => {
  for (const name of ACCOUNTANT_NAMES) {
    const a = createAccountant(name);
    for (let t = 0; t < 300; t++) a.step({ noiseMultiplier: t % 3 === 0 ? 1.1 : 1.3, sampleRate: 0.01 });
    a.step({ noiseMultiplier: 2, sampleRate: 1 }, 4);
    assert.equal(a.steps, 304);
    assert.deepEqual(a.history, [
      { noiseMultiplier: 1.1, sampleRate: 0.01, count: 100 },
      { noiseMultiplier: 1.3, sampleRate: 0.01, count: 200 },
      { noiseMultiplier: 2, sampleRate: 1, count: 4 },
    ]);
    const saved = JSON.parse(JSON.stringify(a.state()));
    const b = loadAccountant(saved);
    assert.equal(b.name, name);
    assert.equal(b.steps, 304);
    assert.equal(b.epsilon(1e-5), a.epsilon(1e-5));
    assert.throws(() => createAccountant(name).load({ ...saved, accountant: 'other' }), /is for 'other'/);
  }
});

test('bad releases and deltas are one-line errors', () => {
  const a = createAccountant('rdp');
  assert.throws(() => a.step({ noiseMultiplier: -1, sampleRate: 0.1 }), /noise multiplier must be >= 0/);
  assert.throws(() => a.step({ noiseMultiplier: 1, sampleRate: 1.5 }), /sample rate must be in \[0, 1\]/);
  assert.throws(() => a.step({ noiseMultiplier: 1, sampleRate: 0.1 }, 1.5), /non-negative integer/);
  assert.throws(() => a.epsilon(0), /delta must be in \(0, 1\)/);
});

test('the RDP accountant composes as the segment function of src/privacy/rdp.ts', () => {
  const a = createAccountant('rdp');
  a.step({ noiseMultiplier: 1.5, sampleRate: 0.04 }, 2250);
  assert.ok(Math.abs(a.epsilon(1e-5) - 7.32911117143) < 1e-8);
  assert.equal(a.epsilon(1e-5), rdpEpsilon([{ sampleRate: 0.04, noiseMultiplier: 1.5, steps: 2250 }], 1e-5));
});
