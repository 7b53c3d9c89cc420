/**
 * The PRV accountant against references that are not this code: Opacus's published value, the
 * value of DESIGN.md (microsoft/prv_accountant), the exact T-fold Gaussian mechanism at q = 1
 * (Balle & Wang 2018), and RDP as an upper bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrvAccountant } from '../src/privacy/accountants/prv.js';
import { epsilon as rdpEpsilon } from '../src/privacy/rdp.js';
import { gaussianEpsilon } from './helpers/gaussian-mechanism.js';

const bounds = (steps: [number, number, number][], delta = 1e-5) => {
  const a = new PrvAccountant();
  for (const [sigma, q, count] of steps) a.step({ noiseMultiplier: sigma, sampleRate: q }, count);
  return a.bounds(delta);
};

test('Opacus published value: sigma 1.5, q 0.04, 2250 steps, delta 1e-5 -> PRV 6.7774 (RDP 7.3291)', () => {
  const b = bounds([[1.5, 0.04, 2250]]);
  assert.ok(b.epsError <= 0.01);
  assert.ok(b.lower <= 6.7774 && Math.abs(b.upper - 6.7774) < 0.01, JSON.stringify(b));
  assert.ok(b.upper < 7.3291);
});

test('DESIGN.md value: sigma 1, q 0.01, 10^4 steps, delta 1e-5 -> PRV 6.188 inside the certified interval', () => {
  const b = bounds([[1, 0.01, 10_000]]);
  assert.ok(b.lower <= 6.188 && 6.188 <= b.upper && b.upper - b.lower <= 0.03, JSON.stringify(b));
});

test('q = 1: the T-fold Gaussian mechanism is the Gaussian with s = sigma / sqrt(T) (closed form), inside the interval', () => {
  for (const [sigma, T] of [[2, 100], [0.8, 10], [5, 1000], [30, 1]] as const) {
    const exact = gaussianEpsilon(sigma / Math.sqrt(T), 1e-5);
    const b = bounds([[sigma, 1, T]]);
    assert.ok(b.lower <= exact && exact <= b.upper && b.upper - exact <= 0.02, `sigma ${sigma} T ${T}: exact ${exact}, ${JSON.stringify(b)}`);
  }
});

test('heterogeneous composition at q = 1: two sigmas compose to one Gaussian with 1/s^2 = T1/sigma1^2 + T2/sigma2^2', () => {
  const exact = gaussianEpsilon(1 / Math.sqrt(40 / 1.5 ** 2 + 25 / 0.9 ** 2), 1e-6);
  const b = bounds([[1.5, 1, 40], [0.9, 1, 25]], 1e-6);
  assert.ok(b.lower <= exact && exact <= b.upper && b.upper - exact <= 0.02, `exact ${exact}, ${JSON.stringify(b)}`);
});

test('a schedule of 1000 distinct sigmas: grouped conservatively (never below the exact value), within 3%', () => {
  const a = new PrvAccountant();
  let inv = 0;
  for (let t = 0; t < 1000; t++) {
    const sigma = 30 - (15 * t) / 999;
    a.step({ noiseMultiplier: sigma, sampleRate: 1 });
    inv += 1 / (sigma * sigma);
  }
  const exact = gaussianEpsilon(1 / Math.sqrt(inv), 1e-5);
  const eps = a.epsilon(1e-5);
  assert.ok(eps >= exact && eps <= exact * 1.03, `exact ${exact}, prv ${eps}`);
});

test('PRV <= RDP across a grid of sample rates, noise and steps (RDP is a looser upper bound)', () => {
  for (const q of [0.005, 0.05, 0.3]) {
    for (const sigma of [0.7, 1.5, 4]) {
      for (const T of [10, 500]) {
        const prv = bounds([[sigma, q, T]]).upper;
        const rdp = rdpEpsilon([{ sampleRate: q, noiseMultiplier: sigma, steps: T }], 1e-5);
        assert.ok(prv <= rdp, `q ${q} sigma ${sigma} T ${T}: PRV ${prv} > RDP ${rdp}`);
      }
    }
  }
});

test('no noise is epsilon Infinity; no release is epsilon 0; epsilon grows with the steps', () => {
  assert.equal(bounds([[0, 0.01, 10]]).upper, Infinity);
  assert.equal(new PrvAccountant().epsilon(1e-5), 0);
  const a = new PrvAccountant();
  let last = 0;
  for (const T of [1, 10, 100]) {
    a.step({ noiseMultiplier: 1, sampleRate: 0.02 }, T);
    const e = a.epsilon(1e-5);
    assert.ok(e > last);
    last = e;
  }
});
