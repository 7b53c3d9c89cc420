/**
 * DP-SGD's clipping formula, written once: an example's gradient g is scaled by
 *
 *   clipFactor(||g||, C) = min(1, C / (||g|| + CLIP_EPSILON))
 *
 * so its L2 norm after scaling is at most C (strictly below C when it was clipped, never above:
 * the sensitivity the accountant assumes). The epsilon only keeps a zero gradient from dividing
 * by zero; 1e-6 is Opacus's. Three places apply it: the training graph (the Div/Add/Min nodes of
 * `perExampleOutputs`, which read CLIP_EPSILON), the TypeScript clipping of top-k encoded
 * gradients in DP-SGD, and the DP step of the gradient-leakage attacks. Lowest layer, so the
 * graph pass and everything above it can share it.
 */

/** Added to the norm before dividing: a zero gradient gets factor 1, not NaN. */
export const CLIP_EPSILON = 1e-6;

/** The factor that clips a gradient of L2 norm `norm` to at most `maxNorm` (C > 0). */
export function clipFactor(norm: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (norm + CLIP_EPSILON));
}
