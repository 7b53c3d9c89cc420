/** `rp-onnx account`: epsilon of DP-SGD, or the noise multiplier for a target epsilon (RDP accountant). */
import type { Command } from 'commander';
import { action, printJson, parseIntOption, parseNumberOption } from './common.js';
import { epsilon, calibrateNoise, composeRdp, rdpToDp } from '../src/privacy/rdp.js';
import { RpOnnxError } from '../src/errors.js';

export function register(program: Command): void {
  program
    .command('account')
    .description('privacy accounting for DP-SGD with Poisson sampling: RDP of the subsampled Gaussian (Mironov et al. 2019), improved RDP->(eps, delta) conversion')
    .option('--noise-multiplier <sigma>', 'noise std / clipping norm', parseNumberOption('--noise-multiplier'))
    .option('--target-epsilon <eps>', 'instead of --noise-multiplier: print the smallest sigma reaching this epsilon', parseNumberOption('--target-epsilon'))
    .requiredOption('--sample-rate <q>', 'Poisson sampling rate (batch size / dataset size)', parseNumberOption('--sample-rate'))
    .option('--steps <t>', 'number of steps', parseIntOption('--steps'))
    .option('--epochs <e>', 'number of epochs (steps = ceil(epochs / sample rate))', parseNumberOption('--epochs'))
    .requiredOption('--delta <d>', 'target delta (commonly below 1/N)', parseNumberOption('--delta'))
    .option('--json', 'print JSON')
    .addHelpText('after', `
Examples:
  rp-onnx account --noise-multiplier 1.5 --sample-rate 0.04 --steps 2250 --delta 1e-5   # eps 7.329
  rp-onnx account --target-epsilon 8 --sample-rate 0.04 --epochs 90 --delta 1e-5        # sigma 1.416`)
    .action(action((o: { noiseMultiplier?: number; targetEpsilon?: number; sampleRate: number; steps?: number; epochs?: number; delta: number; json?: boolean }) => {
      if ((o.noiseMultiplier === undefined) === (o.targetEpsilon === undefined)) {
        throw new RpOnnxError('give exactly one of --noise-multiplier and --target-epsilon');
      }
      if ((o.steps === undefined) === (o.epochs === undefined)) throw new RpOnnxError('give exactly one of --steps and --epochs');
      if (!(o.sampleRate > 0 && o.sampleRate <= 1)) throw new RpOnnxError(`--sample-rate must be in (0, 1], got ${o.sampleRate}`);
      const steps = o.steps ?? Math.ceil(o.epochs! / o.sampleRate);
      if (o.targetEpsilon !== undefined) {
        const sigma = calibrateNoise(o.targetEpsilon, o.sampleRate, steps, o.delta);
        const eps = epsilon([{ sampleRate: o.sampleRate, noiseMultiplier: sigma, steps }], o.delta);
        if (o.json) printJson({ noiseMultiplier: sigma, epsilon: eps, targetEpsilon: o.targetEpsilon, sampleRate: o.sampleRate, steps, delta: o.delta, accountant: 'rdp' });
        else process.stdout.write(`noise multiplier ${sigma.toFixed(4)} (epsilon ${eps.toFixed(4)} <= ${o.targetEpsilon} at delta ${o.delta}, q ${o.sampleRate}, ${steps} steps)\n`);
        return;
      }
      const seg = [{ sampleRate: o.sampleRate, noiseMultiplier: o.noiseMultiplier!, steps }];
      const { epsilon: eps, order } = rdpToDp(composeRdp(seg), o.delta);
      if (o.json) printJson({ epsilon: eps, order, noiseMultiplier: o.noiseMultiplier, sampleRate: o.sampleRate, steps, delta: o.delta, accountant: 'rdp' });
      else if (order === null) process.stdout.write(`epsilon Infinity at delta ${o.delta}: no RDP order bounds it (sigma ${o.noiseMultiplier}${o.noiseMultiplier === 0 ? ': no noise, no privacy' : ''}; q ${o.sampleRate}, ${steps} steps)\n`);
      else process.stdout.write(`epsilon ${eps.toFixed(4)} at delta ${o.delta} (best RDP order ${order}; sigma ${o.noiseMultiplier}, q ${o.sampleRate}, ${steps} steps)\n`);
    }));
}
