/** `rp-onnx strip`: remove residual perturbation, restoring the original computation. */
import type { Command } from 'commander';
import { action, printJson } from './common.js';
import { Flags } from './flags.js';
import { loadModel, saveModel } from '../src/graph/io.js';
import { checkOutputPath } from '../src/fs-atomic.js';
import { stripPerturbation } from '../src/passes/strip.js';

export function register(program: Command): void {
  program
    .command('strip')
    .description('remove the noise nodes and metadata that perturb inserted (the result computes what the original model did)')
    .argument('<model>', 'ONNX model written by rp-onnx perturb')
    .requiredOption('-o, --output <file>', 'output file')
    .option('--force', 'overwrite an existing output file')
    .option('--json', 'print JSON on stdout')
    .action(action((modelPath: string, _o: unknown, command: Command) => {
      const f = new Flags(command);
      const o = { output: f.path('output', { required: true }), force: f.bool('force'), json: f.bool('json') };
      checkOutputPath(o.output, { force: o.force, inputs: [modelPath], flag: '-o' });
      const r = stripPerturbation(loadModel(modelPath));
      saveModel(r.model, o.output);
      if (o.json) {
        printJson({ input: modelPath, output: o.output, blocks: r.blocks.map((b) => b.add), removedNodes: r.removedNodes });
        return;
      }
      process.stdout.write(`wrote ${o.output}: noise removed from ${r.blocks.length} residual blocks (${r.removedNodes} nodes)\n`);
    }));
}
