/**
 * `npm run bench [-- --quick] [--only train-step|perturb-latency|dp-step|peak-rss] [--json]`: every benchmark, each printing
 * the ratios it measured side by side in this one run, then every goal of issue #13 as one row
 * (measured, goal, pass/FAIL) and the load average before and after.
 */
import { loadavg } from 'node:os';
import { printGoals, printResult, type BenchResult } from './result.js';
import { benchTrainStep } from './train-step.js';
import { benchPerturbLatency } from './perturb-latency.js';
import { benchDpStep } from './dp-step.js';
import { benchPeakRss } from './peak-rss.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const json = args.includes('--json');

const benches: Record<string, () => Promise<BenchResult>> = {
  'train-step': () => benchTrainStep(quick),
  'perturb-latency': () => benchPerturbLatency(),
  // The experiment dp-sgd recipe's logical batch in its physical runs, against our plain step.
  'dp-step': () => benchDpStep({ threads: 1, rounds: quick ? 3 : 5, batch: 2048, physical: 512 }),
  'peak-rss': () => benchPeakRss(),
};
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const loadBefore = load();

const results: BenchResult[] = [];
for (const [name, run] of Object.entries(benches)) {
  if (only && only !== name) continue;
  process.stderr.write(`running ${name}...\n`);
  const r = await run();
  results.push(r);
  if (!json) printResult(r);
}
const goals = results.flatMap((r) => r.goals ?? []);
const machine = `load average (1, 5, 15 min) ${loadBefore} before, ${load()} after`;
if (json) process.stdout.write(`${JSON.stringify({ machine, results }, null, 2)}\n`);
else {
  printGoals(goals);
  process.stdout.write(`${machine}\n`);
}
