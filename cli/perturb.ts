/** `rp-onnx perturb`: residual perturbation, Gaussian noise at every residual block of an ONNX model. */
import type { Command } from 'commander';
import { basename, dirname, join } from 'node:path';
import { action, printJson, parseIntOption, UsageError } from './common.js';
import { Flags } from './flags.js';
import { toolVersion } from './tool-version.js';
import { loadModel, saveModel } from '../src/graph/io.js';
import { checkOutputPath } from '../src/fs-atomic.js';
import { withFlags } from '../src/errors.js';
import { perturbModel, NOISE_SCALES, STRATEGIES, type NoiseScale, type Strategy } from '../src/passes/perturb.js';

/** `model.onnx` -> `model.rp.onnx`, beside the input. */
export function defaultPerturbedPath(model: string): string {
  const base = basename(model).replace(/\.onnx$/i, '');
  return join(dirname(model), `${base}.rp.onnx`);
}

/** The flag that sets each parameter of perturbModel, for its errors. */
const PERTURB_FLAGS = { gamma: '--gamma', strategy: '--strategy', scale: '--scale', blocks: '--blocks', seed: '--seed', force: '--force' };

function parseGamma(v: string): number[] {
  const parts = v.split(',').map((s) => s.trim());
  const values = parts.map(Number);
  if (parts.some((p) => p === '') || values.some((x) => !Number.isFinite(x) || x < 0)) {
    throw new UsageError(`--gamma expects a number >= 0 or a comma list of them (one per block), got '${v}'`);
  }
  return values;
}

interface PerturbFlags {
  gamma: number[];
  output?: string;
  strategy: Strategy;
  scale: NoiseScale;
  /** Block indices or Add node names. */
  blocks?: (number | string)[];
  seed?: number;
  force: boolean;
  json: boolean;
}

function perturbFlags(f: Flags): PerturbFlags {
  const gamma = f.string('gamma', { required: true });
  return {
    gamma: parseGamma(gamma),
    output: f.path('output'),
    strategy: f.choice('strategy', STRATEGIES, { required: true }),
    scale: f.choice('scale', NOISE_SCALES, { required: true }),
    blocks: f.list('blocks')?.map((s) => (/^\d+$/.test(s) ? Number(s) : s)),
    seed: f.int('seed'),
    force: f.bool('force'),
    json: f.bool('json'),
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}

export function register(program: Command): void {
  program
    .command('perturb')
    .description('inject Gaussian noise at every residual block (residual perturbation, Tao et al.): out = x + F(x) + gamma * n (I) or + gamma * x * n (II)')
    .argument('<model>', 'ONNX model with residual connections')
    .requiredOption('--gamma <g>', 'noise level: one value, or a comma list with one value per selected block')
    .option('-o, --output <file>', 'output file (default: <model>.rp.onnx beside the input)')
    .option('--strategy <s>', 'I: additive noise gamma*n; II: multiplicative gamma*x*n', 'I')
    .option('--scale <kind>', 'absolute: gamma as given; std: gamma times the per-example std of the block output F(x)', 'absolute')
    .option('--blocks <list>', 'comma list of block indices or Add node names (default: all residual blocks)')
    .option('--seed <n>', 'write seed attributes (reproducible noise; plain onnxruntime then repeats it in every run of every process)', parseIntOption('--seed'))
    .option('--force', 'overwrite an existing output, and perturb an already perturbed model')
    .option('--json', 'print JSON on stdout')
    .addHelpText('after', `
Examples:
  rp-onnx perturb resnet8.onnx --gamma 0.1                       # writes resnet8.rp.onnx
  rp-onnx perturb resnet8.onnx --gamma 0.1,0.2,0.4 --strategy II -o noisy.onnx
Noise is fresh for every example and run. rp-onnx predict/serve give every session new seeds from the OS;
plain onnxruntime, without --seed, draws the same noise in every session created in one process.`)
    .action(action((modelPath: string, _o: unknown, command: Command) => {
      const o = perturbFlags(new Flags(command));
      const output = o.output ?? defaultPerturbedPath(modelPath);
      checkOutputPath(output, { force: o.force, inputs: [modelPath], flag: '-o' });
      const input = loadModel(modelPath);
      const { model, blocks: done } = withFlags(PERTURB_FLAGS, () => perturbModel(input, {
        gamma: o.gamma.length === 1 ? o.gamma[0]! : o.gamma, strategy: o.strategy, scale: o.scale,
        blocks: o.blocks, seed: o.seed, force: o.force, toolVersion: toolVersion(),
      }));
      saveModel(model, output);
      const summary = {
        input: modelPath, output, strategy: o.strategy, scale: o.scale, seed: o.seed ?? null,
        blocks: done.map((b) => ({ index: b.index, add: b.add, skipKind: b.skipKind, gamma: b.gamma, noiseNode: b.noiseNode, insertedNodes: b.nodes.length })),
      };
      if (o.json) {
        printJson(summary);
        return;
      }
      const rows = [['BLOCK', 'ADD', 'SKIP', 'GAMMA', 'NOISE NODE'],
        ...done.map((b) => [String(b.index), b.add, b.skipKind, String(b.gamma), b.noiseNode])];
      process.stdout.write(`${table(rows)}\n`);
      process.stdout.write(`wrote ${output}: ${done.length} residual blocks perturbed (strategy ${o.strategy}, ${o.scale} scale${o.seed !== undefined ? `, seed ${o.seed}` : ''})\n`);
    }));
}
