import { test } from 'node:test';
import assert from 'node:assert/strict';
import { epsilon, calibrateNoise, rdpStep, composeRdp, rdpToDp, logAByQuadrature, DEFAULT_ORDERS } from '../src/privacy/rdp.js';
import { logErfc } from '../src/privacy/special.js';

test('Opacus published value: sigma 1.5, q 0.04, 2250 steps, delta 1e-5 -> eps 7.32911117143', () => {
  const eps = epsilon([{ sampleRate: 0.04, noiseMultiplier: 1.5, steps: 2250 }], 1e-5);
  assert.ok(Math.abs(eps - 7.32911117143) < 1e-8, `eps ${eps}`);
});

test('Opacus published value: eps 8, q 0.04, 90 epochs -> sigma 1.416', () => {
  const sigma = calibrateNoise(8, 0.04, Math.ceil(90 / 0.04), 1e-5);
  assert.ok(Math.abs(sigma - 1.416) < 0.01, `sigma ${sigma}`);
  // Calibration returns a sigma whose epsilon does not exceed the target.
  assert.ok(epsilon([{ sampleRate: 0.04, noiseMultiplier: sigma, steps: 2250 }], 1e-5) <= 8);
});

test('without subsampling RDP is the Gaussian closed form alpha / (2 sigma^2)', () => {
  for (const a of [1.5, 2, 3.7, 10, 32]) assert.ok(Math.abs(rdpStep(1, 2, a) - a / 8) < 1e-12);
});

test('integer-order formula agrees with the fractional series near integers', () => {
  for (const [q, s] of [[0.01, 1.1], [0.1, 0.8], [0.3, 2]] as const) {
    for (const a of [2, 3, 5, 8]) {
      const exact = rdpStep(q, s, a);
      const near = rdpStep(q, s, a + 1e-9);
      assert.ok(Math.abs(exact - near) <= 1e-6 * Math.max(1e-12, exact), `q ${q} s ${s} a ${a}: ${exact} vs ${near}`);
    }
  }
});

test('order-2 RDP matches the closed form log(1 + q^2 (e^{1/sigma^2} - 1))', () => {
  for (const [q, s] of [[0.01, 1], [0.2, 1.5], [0.5, 0.7]] as const) {
    const closed = Math.log(1 + q * q * (Math.exp(1 / (s * s)) - 1));
    assert.ok(Math.abs(rdpStep(q, s, 2) - closed) < 1e-12 * Math.max(1, closed));
  }
});

test('conversion: a single order gives the closed-form bound', () => {
  const r = composeRdp([{ sampleRate: 1, noiseMultiplier: 3, steps: 10 }], [4]);
  const expected = r[0]! + Math.log(3 / 4) - (Math.log(1e-5) + Math.log(4)) / 3;
  assert.ok(Math.abs(rdpToDp(r, 1e-5, [4]).epsilon - expected) < 1e-12);
});

test('epsilon grows with steps and sample rate and falls with sigma', () => {
  const e = (q: number, s: number, t: number) => epsilon([{ sampleRate: q, noiseMultiplier: s, steps: t }], 1e-5);
  assert.ok(e(0.01, 1, 1000) < e(0.01, 1, 2000));
  assert.ok(e(0.01, 1, 1000) < e(0.02, 1, 1000));
  assert.ok(e(0.01, 1, 1000) > e(0.01, 1.5, 1000));
});

test('composition over schedule segments adds RDP', () => {
  const a = composeRdp([{ sampleRate: 0.01, noiseMultiplier: 1.2, steps: 300 }, { sampleRate: 0.01, noiseMultiplier: 0.9, steps: 200 }]);
  const b1 = composeRdp([{ sampleRate: 0.01, noiseMultiplier: 1.2, steps: 300 }]);
  const b2 = composeRdp([{ sampleRate: 0.01, noiseMultiplier: 0.9, steps: 200 }]);
  DEFAULT_ORDERS.forEach((_, k) => assert.ok(Math.abs(a[k]! - b1[k]! - b2[k]!) <= 1e-9 * Math.abs(a[k]!)));
});

test('log erfc is accurate where erfc underflows (asymptotic series)', () => {
  for (const x of [10, 30, 100]) {
    // erfc(x) ~ exp(-x^2)/(x sqrt(pi)) * (1 - 1/(2x^2) + 3/(4x^4))
    const approx = -x * x - Math.log(x * Math.sqrt(Math.PI)) + Math.log(1 - 1 / (2 * x * x) + 3 / (4 * x ** 4));
    assert.ok(Math.abs(logErfc(x) - approx) < 1e-5, `x=${x}`);
  }
  assert.ok(Math.abs(Math.exp(logErfc(0.5)) - 0.4795001221869535) < 1e-14);
  assert.ok(Math.abs(Math.exp(logErfc(-1)) - 1.8427007929497148) < 1e-14);
});

test('near q = 1/2 with large sigma (the fractional series converges only polynomially there): fractional orders agree with the exact integer expansion', () => {
  for (const q of [0.49, 0.5, 0.51]) {
    for (const s of [15, 30, 100]) {
      for (const a of [2, 3, 5]) {
        const exact = rdpStep(q, s, a);
        for (const near of [a - 1e-9, a + 1e-9]) {
          const r = rdpStep(q, s, near);
          assert.ok(Math.abs(r - exact) <= 1e-6 * exact, `q ${q} sigma ${s} order ${near}: ${r} vs ${exact}`);
        }
      }
      // Order 2 in closed form: log(1 + q^2 (e^{1/sigma^2} - 1)).
      const closed = Math.log(1 + q * q * Math.expm1(1 / (s * s)));
      assert.ok(Math.abs(rdpStep(q, s, 2 + 1e-9) - closed) < 1e-6 * closed);
      // RDP is non-decreasing in the order, across the fractional and integer orders.
      let last = 0;
      for (const a of DEFAULT_ORDERS.filter((o) => o <= 20)) {
        const r = rdpStep(q, s, a);
        assert.ok(r >= last * (1 - 1e-9), `q ${q} sigma ${s}: RDP(${a}) = ${r} < ${last}`);
        last = r;
      }
    }
  }
});

test('the quadrature agrees with the fractional series where the series converges (two methods)', () => {
  for (const [q, s] of [[0.01, 1], [0.04, 1.5], [0.2, 0.8]] as const) {
    for (const a of [1.5, 2.7, 6.3, 10.9]) {
      const series = rdpStep(q, s, a);
      const quad = logAByQuadrature(q, s, a) / (a - 1);
      // The series stops at terms below e^-30 (absolute, on A ~ 1): ~1e-9 relative on small RDP.
      assert.ok(Math.abs(series - quad) <= 1e-8 * series, `q ${q} sigma ${s} order ${a}: ${series} vs ${quad}`);
    }
  }
});

test('at q = 1 every order is the Gaussian closed form alpha / (2 sigma^2), for any sigma', () => {
  for (const s of [0.3, 1, 15, 100]) for (const a of [1.1, 2, 7.5, 63, 1024]) assert.ok(Math.abs(rdpStep(1, s, a) - a / (2 * s * s)) <= 1e-14 * a / (2 * s * s));
});

test('sigma 0 releases without noise: epsilon is Infinity and no order is named', () => {
  const r = rdpToDp(composeRdp([{ sampleRate: 0.01, noiseMultiplier: 0, steps: 10 }]), 1e-5);
  assert.equal(r.epsilon, Infinity);
  assert.equal(r.order, null);
});

test('calibration for small epsilon at q = 0.5 (was: "fractional series did not converge")', () => {
  const sigma = calibrateNoise(0.1, 0.5, 10, 1e-5);
  const eps = epsilon([{ sampleRate: 0.5, noiseMultiplier: sigma, steps: 10 }], 1e-5);
  assert.ok(eps <= 0.1 && eps > 0.09, `sigma ${sigma} eps ${eps}`);
  // No subsampling amplification can beat the q = 1 closed form with the same sigma.
  assert.ok(epsilon([{ sampleRate: 1, noiseMultiplier: sigma, steps: 10 }], 1e-5) > eps);
});
