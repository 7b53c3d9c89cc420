/**
 * `npm run bench [-- --quick] [--only train-step|perturb-latency|dp-step] [--json]`: every benchmark, each printing the ratios
 * it measured side by side in this one run.
 */
import { printResult, type BenchResult } from './result.js';
import { benchTrainStep } from './train-step.js';
import { benchPerturbLatency } from './perturb-latency.js';
import { benchDpStep } from './dp-step.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const json = args.includes('--json');

const benches: Record<string, () => Promise<BenchResult>> = {
  'train-step': () => benchTrainStep(quick),
  'perturb-latency': () => benchPerturbLatency(),
  // The experiment dp-sgd recipe's logical batch in its physical runs, against our plain step.
  'dp-step': () => benchDpStep({ threads: 1, rounds: quick ? 3 : 5, batch: 2048, physical: 512 }),
};

const results: BenchResult[] = [];
for (const [name, run] of Object.entries(benches)) {
  if (only && only !== name) continue;
  process.stderr.write(`running ${name}...\n`);
  const r = await run();
  results.push(r);
  if (!json) printResult(r);
}
if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
