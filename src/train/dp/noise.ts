/**
 * Noise families for the noisy aggregate. Only Gaussian noise is covered by our accountant
 * (RDP of the subsampled Gaussian); Laplace and Student-t are offered for the encoding
 * experiments of Nasr et al. and are reported without an epsilon (see privacyStatement).
 * All draws come from the `Random` passed in: `Random.secure()` in anything that ships.
 */
import type { Random } from '../../random.js';
import { RpOnnxError } from '../../errors.js';

export type NoiseFamily = 'gaussian' | 'laplace' | 'student-t';

/**
 * Adds noise of standard deviation-like `scale` to every coordinate of `out`:
 * gaussian N(0, scale^2); laplace with scale b = scale / sqrt(2) (so its std is `scale`);
 * student-t with `dof` degrees of freedom scaled to std `scale` (dof > 2).
 */
export function addNoise(out: Float32Array, scale: number, family: NoiseFamily, rng: Random, dof = 5): void {
  if (scale === 0) return;
  switch (family) {
    case 'gaussian':
      for (let i = 0; i < out.length; i++) out[i]! += scale * rng.normal();
      return;
    case 'laplace': {
      const b = scale / Math.SQRT2;
      for (let i = 0; i < out.length; i++) {
        const u = rng.uniform() - 0.5;
        out[i]! -= b * Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
      }
      return;
    }
    case 'student-t': {
      if (!(dof > 2)) throw new RpOnnxError('student-t noise needs more than 2 degrees of freedom');
      const norm = scale / Math.sqrt(dof / (dof - 2));
      for (let i = 0; i < out.length; i++) {
        // t = Z / sqrt(V / dof), V ~ chi^2(dof) as a sum of squared normals (dof integer)
        let v = 0;
        for (let k = 0; k < dof; k++) {
          const z = rng.normal();
          v += z * z;
        }
        out[i]! += norm * (rng.normal() / Math.sqrt(v / dof));
      }
      return;
    }
    default:
      throw new RpOnnxError(`noise must be gaussian, laplace or student-t, got '${String(family)}'`, { param: 'noise' });
  }
}
