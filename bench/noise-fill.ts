/**
 * The runtime's Gaussian generator alone: ns per value of the C addon (when built) and of the
 * TypeScript loop, best of 10 fills of 2.8M values (what one perturbed ResNet-8 training step at
 * batch 128 draws).
 * Run: node --import tsx bench/noise-fill.ts
 */
import { ZigguratNormal, noiseBackend } from '../src/runtime/ziggurat.js';

const out = new Float32Array(2_800_000);
const fills: [string, (g: ZigguratNormal) => void][] = [['typescript', (g) => g.fillPortable(out)]];
if (noiseBackend === 'native') fills.unshift(['native', (g) => g.fill(out)]);
for (const [name, fill] of fills) {
  const g = new ZigguratNormal(1);
  for (let r = 0; r < 3; r++) fill(g);
  let best = Infinity;
  for (let r = 0; r < 10; r++) {
    const t0 = performance.now();
    fill(g);
    best = Math.min(best, performance.now() - t0);
  }
  console.log(`${name.padEnd(10)} ${((best * 1e6) / out.length).toFixed(2)} ns per value (${best.toFixed(2)} ms for ${out.length} values)`);
}
