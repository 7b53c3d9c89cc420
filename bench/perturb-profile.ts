/**
 * Where a perturbed model's extra inference latency goes (developer script, not in `npm run bench`):
 * ResNet-18 64x64, batch 32, 2 threads, interleaved rounds of
 * - original;
 * - perturbed as rp-onnx runs it (noise generated before each run);
 * - the externalized graph fed noise buffers filled once (the graph's extra nodes only, no
 *   generation), with and without `simplifyNoiseTerms` (what the runtime runs, and before it);
 * - noise generation alone (the fills a run needs, no onnxruntime).
 * Run: [ROUNDS=30] [STRATEGY=I|II] [SCALE=absolute|std] node --import tsx bench/perturb-profile.ts
 */
import { buildResNet } from '../models/resnet.js';
import { perturbModel, type NoiseScale, type Strategy } from '../src/passes/perturb.js';
import { externalizeNoise, simplifyNoiseTerms } from '../src/passes/externalize-noise.js';
import { createSession, ort } from '../src/runtime/session.js';
import { ZigguratNormal } from '../src/runtime/ziggurat.js';
import { Random } from '../src/random.js';
import { median } from './result.js';

const BATCH = 32, SIZE = 64, THREADS = 2;
const rounds = Number(process.env.ROUNDS ?? 30);
const strategy = (process.env.STRATEGY ?? 'I') as Strategy;
const scale = (process.env.SCALE ?? 'absolute') as NoiseScale;
const original = buildResNet('resnet18', { classes: 10, imageSize: SIZE, seed: 1 });
const perturbed = perturbModel(original, { gamma: 0.1, strategy, scale, toolVersion: 'bench' }).model;
const ext = perturbed.clone();
const spec = externalizeNoise(ext.graph, ext.opset('')).noise;
const plainExt = ext.clone();
simplifyNoiseTerms(ext.graph, spec);
const x = new Float32Array(BATCH * 3 * SIZE * SIZE);
new Random(0).fillNormal(x);
const feeds = { input: new ort.Tensor('float32', x, [BATCH, 3, SIZE, SIZE]) };
const gen = new ZigguratNormal(1);
const fixed: Record<string, ort.Tensor> = {};
const bufs = spec.map((s) => {
  const dims = s.shape.map((d) => (typeof d === 'number' ? d : BATCH));
  const b = new Float32Array(dims.reduce((a, c) => a * c, 1));
  gen.fill(b, s.mean, s.scale);
  fixed[s.input] = new ort.Tensor('float32', b, dims);
  return b;
});
console.log(`${spec.length} noise inputs, ${bufs.reduce((a, b) => a + b.length, 0)} values per run`);
const orig = await createSession(original, { threads: THREADS });
const pert = await createSession(perturbed, { threads: THREADS });
// Externalized graph fed fixed buffers: its noise inputs are ordinary inputs here.
const pertFixed = await createSession(ext, { threads: THREADS, feedNoise: false });
const pertUnsimplified = await createSession(plainExt, { threads: THREADS, feedNoise: false });
const fixedFeeds = { ...feeds, ...fixed };
const variants: [string, () => Promise<unknown>][] = [
  ['original', () => orig.run(feeds)],
  ['perturbed, rp-onnx', () => pert.run(feeds)],
  ['perturbed graph, fixed noise buffers', () => pertFixed.run(fixedFeeds)],
  ['same, without simplifyNoiseTerms', () => pertUnsimplified.run(fixedFeeds)],
  ['noise generation only', async () => { for (const [k, b] of bufs.entries()) { gen.reseed(); gen.fill(b, spec[k]!.mean, spec[k]!.scale); } }],
];
const times = variants.map(() => [] as number[]);
for (const [, f] of variants) for (let i = 0; i < 3; i++) await f();
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < variants.length; k++) {
    const j = (r + k) % variants.length;
    const t0 = performance.now();
    await variants[j]![1]();
    times[j]!.push(performance.now() - t0);
  }
}
const base = median(times[0]!);
for (const [k, [name]] of variants.entries()) console.log(`${name.padEnd(40)} median ${median(times[k]!).toFixed(2)} ms  ratio ${(median(times[k]!) / base).toFixed(3)}`);
