/**
 * The filter bank of a 2-D scattering transform (Bruna & Mallat 2013; Oyallon & Mallat 2015),
 * sampled on a square spatial grid so that the transform is a cascade of ordinary ONNX Convs:
 *
 *   psi_{j,l}(u) = g_{j,l}(u) (exp(i xi_j <e_l, u>) - kappa_{j,l})     Morlet wavelet
 *   phi_J(u)     = Gaussian of std sigma0 2^(J-1), normalised to sum 1  low-pass
 *
 * with e_l = (cos theta_l, sin theta_l), theta_l = pi l / L, xi_j = (3 pi / 4) 2^-j, and
 * g_{j,l} an anisotropic Gaussian envelope of std sigma_j = sigma0 2^j along e_l and
 * sigma_j / slant across it (slant 4 / L, so the envelope is elongated along the wave fronts),
 * normalised to sum 1. kappa is the envelope's mean of the carrier: subtracting it makes each
 * sampled wavelet have exactly zero mean, so constant images scatter to zero beyond order 0.
 * These are the parameters of the scattering networks used by Tramer & Boneh 2021 (J = 2,
 * L = 8, sigma0 = 0.8); the filters here are computed from the formulas above, in float64.
 *
 * Kernels are truncated to a square of radius ceil(3 sigma_max), which keeps every sampled
 * envelope value above e^-4.5 of its peak out of the kernel's border. Convolutions with them
 * are not periodised: the graph pads by reflection instead.
 *
 * Subsampled grids: a signal known every 2^r pixels (resolution r) is filtered with the
 * filter of scale j - r, because psi_j sampled every 2^r pixels is psi_{j-r} (sigma and 1/xi
 * both scale with 2^j; the envelope is renormalised on the grid). The same holds for phi.
 */
import { RpOnnxError } from '../src/errors.js';

/** Std (in pixels) of the finest wavelet's envelope along its wave vector. */
export const SCATTERING_SIGMA0 = 0.8;
/** Width of the truncated kernels in units of the largest envelope std. */
const TRUNCATION = 3;

export interface ScatteringSpec {
  /** Number of scales; features are subsampled by 2^J. */
  J: number;
  /** Orientations in [0, pi). */
  L: number;
}

/** One wavelet, sampled on a (2 radius + 1)^2 grid, row-major (row = y, column = x). */
export interface SampledWavelet {
  j: number;
  /** Orientation index l; the angle is pi l / L. */
  l: number;
  theta: number;
  /** Centre frequency, radians per pixel. */
  xi: number;
  sigma: number;
  radius: number;
  re: Float64Array;
  im: Float64Array;
}

export interface SampledLowPass {
  sigma: number;
  radius: number;
  data: Float64Array;
}

export interface ScatteringFilterBank {
  spec: ScatteringSpec;
  /** psi[j * L + l]. */
  psi: SampledWavelet[];
  /** phi[r]: the low-pass at resolution r (grid subsampled by 2^r), r = 0..J-1. */
  phi: SampledLowPass[];
}

export function checkScatteringSpec(spec: ScatteringSpec): void {
  if (!Number.isInteger(spec.J) || spec.J < 1 || spec.J > 4) throw new RpOnnxError(`scattering J must be an integer in [1, 4], got ${spec.J}`);
  if (!Number.isInteger(spec.L) || spec.L < 1 || spec.L > 16) throw new RpOnnxError(`scattering L must be an integer in [1, 16], got ${spec.L}`);
}

/** Scattering channels per input channel: 1 + J L + L^2 J (J - 1) / 2 (81 for J = 2, L = 8). */
export function scatteringChannels(spec: ScatteringSpec): number {
  return 1 + spec.J * spec.L + (spec.L * spec.L * spec.J * (spec.J - 1)) / 2;
}

/** Anisotropy of the envelope (ratio of its two stds), 4 / L as in the reference networks. */
export function scatteringSlant(L: number): number {
  return 4 / L;
}

export function waveletRadius(j: number, L: number): number {
  const sigma = SCATTERING_SIGMA0 * 2 ** j;
  return Math.ceil(TRUNCATION * Math.max(sigma, sigma / scatteringSlant(L)));
}

/** Samples the Morlet wavelet psi_{j,l}. */
export function sampleWavelet(j: number, l: number, L: number): SampledWavelet {
  const sigma = SCATTERING_SIGMA0 * 2 ** j;
  const slant = scatteringSlant(L);
  const theta = (Math.PI * l) / L;
  const xi = (3 * Math.PI) / 4 / 2 ** j;
  const radius = waveletRadius(j, L);
  const k = 2 * radius + 1;
  const [c, s] = [Math.cos(theta), Math.sin(theta)];
  const env = new Float64Array(k * k);
  const phase = new Float64Array(k * k);
  let total = 0;
  for (let y = -radius; y <= radius; y++) {
    for (let x = -radius; x <= radius; x++) {
      const along = c * x + s * y;
      const across = -s * x + c * y;
      const i = (y + radius) * k + (x + radius);
      env[i] = Math.exp(-(along * along + slant * slant * across * across) / (2 * sigma * sigma));
      phase[i] = xi * along;
      total += env[i]!;
    }
  }
  // kappa = sum g cos / sum g; the sine part vanishes because g is even and sin odd.
  let kappa = 0;
  for (let i = 0; i < env.length; i++) {
    env[i]! /= total;
    kappa += env[i]! * Math.cos(phase[i]!);
  }
  const re = new Float64Array(k * k);
  const im = new Float64Array(k * k);
  for (let i = 0; i < env.length; i++) {
    re[i] = env[i]! * (Math.cos(phase[i]!) - kappa);
    im[i] = env[i]! * Math.sin(phase[i]!);
  }
  return { j, l, theta, xi, sigma, radius, re, im };
}

/**
 * Samples the low-pass phi_J: an isotropic Gaussian of std sigma0 2^(J-1) pixels, summing to 1.
 * At `resolution` r (a grid subsampled by 2^r) the same filter has std sigma0 2^(J-1-r).
 */
export function sampleLowPass(J: number, resolution = 0): SampledLowPass {
  const sigma = SCATTERING_SIGMA0 * 2 ** (J - 1 - resolution);
  const radius = Math.ceil(TRUNCATION * sigma);
  const k = 2 * radius + 1;
  const data = new Float64Array(k * k);
  let total = 0;
  for (let y = -radius; y <= radius; y++) {
    for (let x = -radius; x <= radius; x++) {
      const v = Math.exp(-(x * x + y * y) / (2 * sigma * sigma));
      data[(y + radius) * k + (x + radius)] = v;
      total += v;
    }
  }
  for (let i = 0; i < data.length; i++) data[i]! /= total;
  return { sigma, radius, data };
}

export function scatteringFilterBank(spec: ScatteringSpec): ScatteringFilterBank {
  checkScatteringSpec(spec);
  const psi: SampledWavelet[] = [];
  for (let j = 0; j < spec.J; j++) for (let l = 0; l < spec.L; l++) psi.push(sampleWavelet(j, l, spec.L));
  return { spec, psi, phi: Array.from({ length: spec.J }, (_, r) => sampleLowPass(spec.J, r)) };
}
