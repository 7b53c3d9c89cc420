/**
 * Seed attributes for random ops (RandomNormalLike and friends). Both the perturb pass (which
 * writes seeds into a file when asked for reproducible noise) and the runtime (which reseeds
 * every session) draw them here, so the rules live once: onnxruntime reads the float32 attribute
 * as uint32, so seeds are integers below 2^24 (exact in float32), and no two ops of one model
 * may share a seed (they would draw identical noise).
 */
import type { Random } from './random.js';

/** Seeds are integers below this bound, so the float32 attribute holds them exactly. */
export const SEED_BOUND = 2 ** 24;

/** Draws seeds from `rng`, never the same one twice. */
export class DistinctSeeds {
  constructor(private readonly rng: Random, private readonly used = new Set<number>()) {}

  next(): number {
    let s = this.rng.int(SEED_BOUND);
    // 2^24 values: a redraw is rarely needed.
    while (this.used.has(s)) s = this.rng.int(SEED_BOUND);
    this.used.add(s);
    return s;
  }
}
