/** `rp-onnx account`: epsilon of DP-SGD by the PRV and RDP accountants, or the noise multiplier for a target epsilon. */
import type { Command } from 'commander';
import { action, printJson, parseIntOption, parseNumberOption, UsageError } from './common.js';
import { Flags } from './flags.js';
import { PrvAccountant } from '../src/privacy/accountants/prv.js';
import { RdpAccountant } from '../src/privacy/accountants/rdp.js';
import { ACCOUNTANT_NAMES, DEFAULT_ACCOUNTANT, type AccountantName } from '../src/privacy/accountants/registry.js';
import { PrivacyLedger, type Sampling } from '../src/train/dp/accountant.js';
import { planNoise } from '../src/train/dp/plan.js';
import type { DpOptions } from '../src/train/dp/dp-sgd.js';

const SAMPLINGS: readonly Sampling[] = ['poisson', 'shuffle'];

interface AccountFlags {
  noiseMultiplier?: number;
  targetEpsilon?: number;
  sampleRate: number;
  steps?: number;
  epochs?: number;
  delta: number;
  accountant: AccountantName;
  sampling: Sampling;
  json: boolean;
}

/** `account`'s flags, checked: exactly one of sigma and target, of steps and epochs. */
function accountFlags(f: Flags): AccountFlags {
  const o: AccountFlags = {
    noiseMultiplier: f.number('noiseMultiplier', { min: 0 }),
    targetEpsilon: f.number('targetEpsilon', { above: 0 }),
    sampleRate: f.number('sampleRate', { above: 0, max: 1, required: true }),
    steps: f.int('steps', { min: 1, says: '>= 1' }),
    epochs: f.number('epochs', { above: 0 }),
    delta: f.number('delta', { above: 0, below: 1, required: true }),
    accountant: f.choice('accountant', ACCOUNTANT_NAMES, { required: true, how: 'one of' }),
    sampling: f.choice('sampling', SAMPLINGS, { required: true }),
    json: f.bool('json'),
  };
  if ((o.noiseMultiplier === undefined) === (o.targetEpsilon === undefined)) throw new UsageError('give exactly one of --noise-multiplier and --target-epsilon');
  if ((o.steps === undefined) === (o.epochs === undefined)) throw new UsageError('give exactly one of --steps and --epochs');
  return o;
}

export function register(program: Command): void {
  program
    .command('account')
    .description('privacy accounting for DP-SGD: epsilon by the PRV accountant (certified upper bound) and by RDP, or the noise multiplier for a target epsilon')
    .option('--noise-multiplier <sigma>', 'noise std / clipping norm', parseNumberOption('--noise-multiplier'))
    .option('--target-epsilon <eps>', 'instead of --noise-multiplier: print the smallest sigma whose epsilon (by --accountant) is at most this', parseNumberOption('--target-epsilon'))
    .requiredOption('--sample-rate <q>', 'batch size / dataset size (Poisson: the probability each example joins a batch)', parseNumberOption('--sample-rate'))
    .option('--steps <t>', 'number of steps', parseIntOption('--steps'))
    .option('--epochs <e>', 'number of epochs (steps = ceil(epochs * steps per epoch); an epoch is round(1/q) steps for poisson, ceil(1/q) for shuffle)', parseNumberOption('--epochs'))
    .requiredOption('--delta <d>', 'target delta (well below 1/N)', parseNumberOption('--delta'))
    .option('--accountant <name>', `accountant of the answer (JSON "epsilon") and of --target-epsilon: ${ACCOUNTANT_NAMES.join(' | ')}; prv (the default) reports the upper end of its certified interval`, DEFAULT_ACCOUNTANT)
    .option('--sampling <s>', 'poisson (add/remove-one adjacency) | shuffle (replace-one: each epoch one Gaussian mechanism at sigma/2, no amplification)', 'poisson')
    .option('--json', 'print JSON')
    .addHelpText('after', `
Both accountants bound the same mechanism, as the training loop accounts it:
  poisson  each step the Poisson-subsampled Gaussian mechanism, add/remove-one adjacency.
  shuffle  fixed-size batches of a per-epoch permutation: no amplification is claimed; under
           replace-one adjacency (sensitivity 2C) each epoch is one Gaussian mechanism with
           noise multiplier sigma/2.
  prv  PRV accountant (Gopi, Lee, Wutschitz 2021): the upper end of a certified interval
       (epsilon error <= 0.01, delta error delta/1000), both directions of add/remove. Default.
  rdp  RDP (Mironov et al. 2019) with the conversion of Balle et al. 2020: a looser upper bound.
Without --json both epsilons are printed; --accountant picks the one that --target-epsilon
calibrates and that JSON reports as "epsilon".

Examples:
  rp-onnx account --noise-multiplier 1.5 --sample-rate 0.04 --steps 2250 --delta 1e-5   # PRV 6.78, RDP 7.329
  rp-onnx account --target-epsilon 8 --sample-rate 0.04 --epochs 90 --delta 1e-5 --accountant rdp   # sigma 1.416`)
    .action(action((_o: unknown, command: Command) => {
      const o = accountFlags(new Flags(command));
      const { accountant, sampling } = o;
      const stepsPerEpoch = sampling === 'poisson' ? Math.max(1, Math.round(1 / o.sampleRate)) : Math.ceil(1 / o.sampleRate - 1e-9);
      const steps = o.steps ?? Math.ceil(o.epochs! * stepsPerEpoch - 1e-9);
      const plan = { sampleRate: o.sampleRate, stepsPerEpoch, totalSteps: steps };
      const sigma = o.noiseMultiplier ?? planNoise(dpOptions(o, accountant, sampling), plan).start;
      const r = accountBoth(sigma, sampling, plan, o.delta);
      const primary = accountant === 'prv' ? r.prv.epsilon : r.rdp.epsilon;
      const ledger = new PrivacyLedger({ accountant, sampling, sampleRate: o.sampleRate, delta: o.delta });
      if (o.json) {
        // JSON has no Infinity: an unbounded epsilon (sigma 0) is the string "Infinity".
        const inf = (x: number | null) => (x === Infinity ? 'Infinity' : x);
        printJson({
          epsilon: inf(primary), accountant, noiseMultiplier: sigma, targetEpsilon: o.targetEpsilon ?? null,
          sampling, adjacency: ledger.adjacency, sampleRate: o.sampleRate, steps, stepsPerEpoch, delta: o.delta,
          prv: { ...r.prv, epsilon: inf(r.prv.epsilon), lower: inf(r.prv.lower), estimate: inf(r.prv.estimate) },
          rdp: { ...r.rdp, epsilon: inf(r.rdp.epsilon) }, statement: ledger.describe(),
        });
        return;
      }
      const where = `at delta ${o.delta} after ${steps} steps (${sampling === 'poisson' ? `Poisson sampling q ${o.sampleRate}, add/remove-one adjacency` : `shuffled batches, ${stepsPerEpoch} steps per epoch, replace-one adjacency`})`;
      const lines: string[] = [];
      if (o.targetEpsilon !== undefined) lines.push(`noise multiplier ${sigma.toFixed(4)}: the smallest (to 0.01 in epsilon) with ${accountant.toUpperCase()} epsilon <= ${o.targetEpsilon}`);
      if (sigma === 0) lines.push(`epsilon Infinity ${where}: sigma 0 adds no noise, no privacy`);
      else {
        lines.push(`epsilon ${where}, sigma ${sigma}:`);
        lines.push(`  PRV ${fmt(r.prv.epsilon)}  (certified interval [${fmt(r.prv.lower)}, ${fmt(r.prv.epsilon)}], estimate ${fmt(r.prv.estimate)})${accountant === 'prv' ? '  <- --accountant' : ''}`);
        lines.push(`  RDP ${fmt(r.rdp.epsilon)}  (best order ${r.rdp.order ?? 'none'})${accountant === 'rdp' ? '  <- --accountant' : ''}`);
      }
      process.stdout.write(lines.join('\n') + '\n');
    }));
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : String(x));

function dpOptions(o: AccountFlags, accountant: AccountantName, sampling: Sampling): DpOptions {
  return {
    maxGradNorm: 1, delta: o.delta, targetEpsilon: o.targetEpsilon, noiseSchedule: 'constant', noiseEndRatio: 1,
    sampling, clip: 'constant', clipQuantile: 0.5, clipLearningRate: 0.2, noise: 'gaussian', secureRng: true, accountant,
  };
}

/** Both accountants on the releases the training loop would make at a constant sigma. */
function accountBoth(sigma: number, sampling: Sampling, plan: { sampleRate: number; stepsPerEpoch: number; totalSteps: number }, delta: number) {
  const prv = new PrvAccountant();
  const rdp = new RdpAccountant();
  for (const a of [prv, rdp]) {
    if (sampling === 'poisson') a.step({ noiseMultiplier: sigma, sampleRate: plan.sampleRate }, plan.totalSteps);
    else a.step({ noiseMultiplier: sigma / 2, sampleRate: 1 }, Math.ceil(plan.totalSteps / plan.stepsPerEpoch));
  }
  const b = prv.bounds(delta);
  const r = rdp.epsilonAndOrder(delta);
  return {
    prv: { epsilon: b.upper, lower: b.lower, estimate: b.estimate, epsError: b.epsError, deltaError: b.deltaError },
    rdp: { epsilon: r.epsilon, order: r.order },
  };
}
