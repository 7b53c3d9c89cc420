/**
 * One variant of the training-step benchmark (bench/train-variants.ts, by index) in a process of
 * its own, as its PyTorch twin runs in its own (the protocol: bench/step-process.ts).
 * Run: node --import tsx bench/train-step-worker.ts INDEX serve|ROUNDS
 */
import { TRAIN_VARIANTS, stepRunner } from './train-variants.js';
import { serveSteps } from './step-process.js';

const v = TRAIN_VARIANTS[Number(process.argv[2])];
if (!v) {
  process.stderr.write(`train-step-worker: no variant ${process.argv[2]} (0-${TRAIN_VARIANTS.length - 1})\n`);
  process.exit(2);
}
const runner = await stepRunner(v);
await serveSteps(process.argv[3] ?? 'serve', v.label, runner.step);
await runner.release();
