/**
 * The scattering filter bank against closed forms (the low-pass sums to 1, wavelets have zero
 * mean and peak at their centre frequency), and the ONNX scattering graph against a separate
 * float64 loop over the definition (reflection padding, true convolutions, subsampled grids),
 * against the closed-form scattering of a constant image, and for translation covariance.
 * Also: the filters are not parameters (only the linear layer trains).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildScatterNet, scatterNetGeometry, findModel } from '../models/index.js';
import { scatteringFilterBank, scatteringChannels, sampleWavelet, sampleLowPass, type ScatteringFilterBank } from '../models/scattering-filters.js';
import { createSession, ort } from '../src/runtime/session.js';
import { Trainer } from '../src/train/trainer.js';
import { tensorToFloat32 } from '../src/graph/tensor.js';
import { Random } from '../src/random.js';

const SPEC = { J: 2, L: 8 };

test('the low-pass filters sum to 1 and the Morlet wavelets have zero mean', () => {
  const bank = scatteringFilterBank(SPEC);
  assert.equal(bank.psi.length, 16);
  for (const phi of bank.phi) {
    const sum = phi.data.reduce((a, v) => a + v, 0);
    assert.ok(Math.abs(sum - 1) < 1e-12, `phi sums to ${sum}`);
    assert.ok(phi.data.every((v) => v > 0));
  }
  for (const w of bank.psi) {
    const re = w.re.reduce((a, v) => a + v, 0);
    const im = w.im.reduce((a, v) => a + v, 0);
    assert.ok(Math.abs(re) < 1e-12 && Math.abs(im) < 1e-12, `psi(${w.j},${w.l}) mean ${re} + ${im}i`);
  }
  assert.equal(scatteringChannels(SPEC), 81);
  assert.deepEqual(scatterNetGeometry(1, 28), { channels: 81, size: 7 });
});

/** |DFT| of a centred kernel at frequency (wx, wy) (radians per pixel), by the direct sum. */
function spectrum(re: Float64Array, im: Float64Array, radius: number, wx: number, wy: number): number {
  const k = 2 * radius + 1;
  let sr = 0;
  let si = 0;
  for (let y = -radius; y <= radius; y++) {
    for (let x = -radius; x <= radius; x++) {
      const i = (y + radius) * k + (x + radius);
      const a = -(wx * x + wy * y);
      sr += re[i]! * Math.cos(a) - im[i]! * Math.sin(a);
      si += re[i]! * Math.sin(a) + im[i]! * Math.cos(a);
    }
  }
  return Math.hypot(sr, si);
}

test('each wavelet peaks at its centre frequency (3 pi / 4) 2^-j in direction pi l / L; phi passes 0', () => {
  for (const [j, l] of [[0, 0], [0, 3], [1, 5], [1, 7]] as const) {
    const w = sampleWavelet(j, l, 8);
    const xi = (3 * Math.PI) / 4 / 2 ** j;
    const theta = (Math.PI * l) / 8;
    const [cx, cy] = [xi * Math.cos(theta), xi * Math.sin(theta)];
    const peak = spectrum(w.re, w.im, w.radius, cx, cy);
    // The Gaussian envelope's transform is exp(-sigma^2 w^2 / 2) around the centre frequency: the
    // centre beats points 0.4 rad away in 8 directions (the zero-mean term only adds a tiny slope).
    for (let d = 0; d < 8; d++) {
      const a = (Math.PI * d) / 4;
      assert.ok(spectrum(w.re, w.im, w.radius, cx + 0.4 * Math.cos(a), cy + 0.4 * Math.sin(a)) < peak, `psi(${j},${l}) is not maximal at its centre (direction ${d})`);
    }
    assert.ok(Math.abs(peak - 1) < 0.2, `psi(${j},${l}) peak ${peak}`);
    assert.ok(spectrum(w.re, w.im, w.radius, 0, 0) < 1e-12);
    // Scale 1 is nearly analytic (nothing at minus the centre frequency); scale 0 is not, because
    // its band reaches past pi and aliases, as every sampled finest-scale Morlet does.
    if (j === 1) assert.ok(spectrum(w.re, w.im, w.radius, -cx, -cy) < 0.05 * peak);
  }
  const phi = sampleLowPass(2);
  assert.ok(Math.abs(spectrum(phi.data, new Float64Array(phi.data.length), phi.radius, 0, 0) - 1) < 1e-12);
});

// ---- an independent float64 scattering, by loops over the definition ----

const reflect = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);

/** (u * f) sampled every `stride` pixels: out(p) = sum_d f(d) u(stride p - d), u reflected at the borders. */
function convolve(u: Float64Array, n: number, f: Float64Array, radius: number, stride: number): { data: Float64Array; n: number } {
  const m = Math.ceil(n / stride);
  const k = 2 * radius + 1;
  const out = new Float64Array(m * m);
  for (let p = 0; p < m; p++) {
    for (let q = 0; q < m; q++) {
      let s = 0;
      for (let dy = -radius; dy <= radius; dy++) {
        for (let dx = -radius; dx <= radius; dx++) {
          s += f[(dy + radius) * k + (dx + radius)]! * u[reflect(stride * p - dy, n) * n + reflect(stride * q - dx, n)]!;
        }
      }
      out[p * m + q] = s;
    }
  }
  return { data: out, n: m };
}

function modulusOf(u: Float64Array, n: number, j: number, l: number, stride: number, bank: ScatteringFilterBank): { data: Float64Array; n: number } {
  const w = bank.psi[j * 8 + l]!;
  const re = convolve(u, n, w.re, w.radius, stride);
  const im = convolve(u, n, w.im, w.radius, stride);
  return { data: re.data.map((v, i) => Math.hypot(v, im.data[i]!)), n: re.n };
}

/** The 81 x 7 x 7 scattering of one 28 x 28 image, in the model's channel order. */
function referenceScattering(x: Float64Array, n: number): Float64Array[] {
  const bank = scatteringFilterBank(SPEC);
  const [phi0, phi1] = bank.phi as [typeof bank.phi[0], typeof bank.phi[0]];
  const out: Float64Array[] = [convolve(x, n, phi0.data, phi0.radius, 4).data];
  const u0 = Array.from({ length: 8 }, (_, l) => modulusOf(x, n, 0, l, 1, bank));
  for (const u of u0) out.push(convolve(u.data, u.n, phi0.data, phi0.radius, 4).data);
  for (let l = 0; l < 8; l++) {
    const u = modulusOf(x, n, 1, l, 2, bank);
    out.push(convolve(u.data, u.n, phi1.data, phi1.radius, 2).data);
  }
  // Second order: psi_1 applied to a full-resolution signal is the scale-1 wavelet, stride 2.
  for (const u of u0) {
    for (let l2 = 0; l2 < 8; l2++) {
      const v = modulusOf(u.data, u.n, 1, l2, 2, bank);
      out.push(convolve(v.data, v.n, phi1.data, phi1.radius, 2).data);
    }
  }
  return out;
}

async function runFeatures(images: Float32Array, count: number, size = 28): Promise<Float32Array> {
  const s = await createSession(buildScatterNet({ imageSize: size }, 'features'), { threads: 1 });
  const r = await s.run({ input: new ort.Tensor('float32', images, [count, 1, size, size]) });
  await s.release();
  return r.scattering!.data as Float32Array;
}

test('the ONNX scattering matches a float64 loop over the definition on one image', async () => {
  const rng = new Random(7);
  // A smooth blob plus pixel noise, in [0, 1] like Fashion-MNIST.
  const x = new Float64Array(784);
  for (let i = 0; i < 28; i++) for (let j = 0; j < 28; j++) x[i * 28 + j] = Math.min(1, Math.max(0, Math.exp(-((i - 12) ** 2 + (j - 16) ** 2) / 40) + 0.2 * rng.uniform()));
  const expected = referenceScattering(x, 28);
  assert.equal(expected.length, 81);
  const got = await runFeatures(Float32Array.from(x), 1);
  assert.equal(got.length, 81 * 49);
  let worst = 0;
  for (let c = 0; c < 81; c++) {
    const scale = Math.max(...expected[c]!.map(Math.abs), 1e-3);
    for (let i = 0; i < 49; i++) worst = Math.max(worst, Math.abs(got[c * 49 + i]! - expected[c]![i]!) / scale);
  }
  assert.ok(worst < 1e-4, `largest relative difference ${worst}`);
});

test('a constant image scatters to the constant (order 0) and to zero (orders 1 and 2)', async () => {
  const c = 0.7;
  const got = await runFeatures(new Float32Array(784).fill(c), 1);
  for (let i = 0; i < 49; i++) assert.ok(Math.abs(got[i]! - c) < 1e-6, `S0 ${got[i]}`);
  for (let i = 49; i < got.length; i++) assert.ok(Math.abs(got[i]!) < 1e-5, `S1/S2 value ${got[i]} at ${i}`);
});

test('shifting the image by 2^J pixels shifts every scattering channel by one sample', async () => {
  const size = 56;
  const a = new Float32Array(size * size);
  const b = new Float32Array(size * size);
  const rng = new Random(3);
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) {
      const v = rng.uniform();
      a[(24 + i) * size + 24 + j] = v;
      b[(28 + i) * size + 28 + j] = v;
    }
  }
  const both = new Float32Array(2 * size * size);
  both.set(a, 0);
  both.set(b, size * size);
  const out = await runFeatures(both, 2, size);
  const m = size / 4;
  const per = 81 * m * m;
  let energy = 0;
  for (let c = 0; c < 81; c++) {
    for (let p = 0; p + 1 < m; p++) {
      for (let q = 0; q + 1 < m; q++) {
        const va = out[c * m * m + p * m + q]!;
        const vb = out[per + c * m * m + (p + 1) * m + (q + 1)]!;
        assert.ok(Math.abs(va - vb) < 1e-6, `channel ${c} (${p}, ${q}): ${va} vs ${vb}`);
        energy += va * va;
      }
    }
  }
  assert.ok(energy > 1e-3, 'the pattern scatters to something');
});

test('scatternet-linear: only the linear layer is a parameter, and full = head(features)', async () => {
  const entry = findModel('scatternet-linear');
  assert.deepEqual(entry.parameters(), { trainable: 81 * 49 * 10 + 10, buffers: 0, tensors: 2 });
  const full = entry.build({ seed: 1 });
  assert.deepEqual([...full.graph.initializers.keys()].sort(), ['fc.bias', 'fc.weight']);
  const trainer = await Trainer.create(full, { optimizer: 'sgd', threads: 1 });
  assert.deepEqual(trainer.training.params.map((p) => p.name).sort(), ['fc.bias', 'fc.weight']);
  const head = buildScatterNet({ seed: 1 }, 'head');
  for (const name of ['fc.weight', 'fc.bias']) {
    assert.deepEqual(tensorToFloat32(head.graph.initializers.get(name)!), tensorToFloat32(full.graph.initializers.get(name)!));
  }
  const rng = new Random(5);
  const x = Float32Array.from({ length: 3 * 784 }, () => rng.uniform());
  const features = await runFeatures(x, 3);
  const sf = await createSession(full, { threads: 1 });
  const sh = await createSession(head, { threads: 1 });
  const a = (await sf.run({ input: new ort.Tensor('float32', x, [3, 1, 28, 28]) })).logits!.data as Float32Array;
  const b = (await sh.run({ scattering: new ort.Tensor('float32', features, [3, 81, 7, 7]) })).logits!.data as Float32Array;
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5);
  await sf.release();
  await sh.release();
});

test('scatternet-linear refuses batch normalisation and groups that do not divide 81', () => {
  const entry = findModel('scatternet-linear');
  assert.throws(() => entry.build({ norm: 'batch' }), /norm batch/);
  assert.throws(() => entry.build({ groups: 10 }), /groups 10 must divide the 81/);
  assert.throws(() => entry.build({ imageSize: 12 }), /too small/);
});
