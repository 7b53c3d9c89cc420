/**
 * Preload for measuring a perturbed graph without the cost of drawing its noise: every fill of
 * the runtime's generator becomes a no-op (the noise buffers keep whatever they held). Never
 * for anything but timing.
 * Run: node --import tsx --import ./bench/no-noise.ts bench/train-step-worker.ts 1 15
 *      node --import tsx --import ./bench/no-noise.ts bench/perturb-latency.ts --child 1 30
 */
import { ZigguratNormal } from '../src/runtime/ziggurat.js';

ZigguratNormal.prototype.fill = function fill(): void {};
ZigguratNormal.prototype.fillAsync = function fillAsync(): Promise<void> {
  return Promise.resolve();
};
