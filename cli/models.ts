/** `rp-onnx models list|create`: the built-in ResNets as ONNX files with fresh weights. */
import type { Command } from 'commander';
import { statSync } from 'node:fs';
import { action, printJson, parseIntOption } from './common.js';
import { Flags } from './flags.js';
import { saveModel } from '../src/graph/io.js';
import { checkOutputPath } from '../src/fs-atomic.js';
import { BUILTIN_MODELS, findModel, countParameters, NORM_KINDS, type ModelOptions } from '../models/index.js';

const fmt = (n: number) => n.toLocaleString('en-US');

export function register(program: Command): void {
  const models = program.command('models').description('built-in models (CIFAR-style ResNet-8/20/32/56/110, ImageNet-style ResNet-18, the tanh CNN dp-cnn of DP-SGD papers)');

  models
    .command('list')
    .description('list the built-in models with their parameter counts for default options')
    .option('--json', 'print JSON on stdout')
    .action(action((_o: unknown, command: Command) => {
      const json = new Flags(command).bool('json');
      const rows = BUILTIN_MODELS.map((m) => {
        const opts = m.resolve();
        const p = m.parameters();
        return {
          name: m.name, depth: m.depth, style: m.style, description: m.description,
          input: ['N', opts.inChannels, opts.imageSize, opts.imageSize], classes: opts.classes,
          parameters: p.trainable, buffers: p.buffers,
        };
      });
      if (json) {
        printJson(rows);
        return;
      }
      const table = [['NAME', 'DEPTH', 'STYLE', 'INPUT', 'CLASSES', 'PARAMETERS'],
        ...rows.map((r) => [r.name, String(r.depth), r.style, `[${r.input.join(', ')}]`, String(r.classes), fmt(r.parameters)])];
      const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
      for (const row of table) process.stdout.write(`${row.map((cell, c) => (c === 5 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd()}\n`);
      process.stdout.write('parameters: trainable weights, biases and normalisation scale/shift (not BatchNorm running statistics), norm=batch for ResNets\n');
    }));

  models
    .command('create')
    .description('write a built-in model with freshly initialised weights (He-normal convolutions in ResNets, PyTorch defaults in dp-cnn) to an ONNX file')
    .argument('<name>', `model: ${BUILTIN_MODELS.map((m) => m.name).join(', ')}`)
    .requiredOption('-o, --output <file>', 'ONNX file to write')
    .option('--in-channels <c>', 'input channels (default 3; 1 for dp-cnn and MNIST/Fashion-MNIST)', parseIntOption('--in-channels'))
    .option('--classes <k>', 'output classes (default 10; 1000 for resnet18)', parseIntOption('--classes'))
    .option('--image-size <s>', 'input height and width (default 32; 224 for resnet18, 28 for dp-cnn)', parseIntOption('--image-size'))
    .option('--norm <kind>', 'ResNets: normalisation after each convolution: batch (default) | group | none (none gives convolutions biases); dp-cnn has none')
    .option('--groups <g>', 'groups of GroupNorm with --norm group (must divide every stage width)', parseIntOption('--groups'))
    .option('--seed <n>', 'seed of the weight initialisation', parseIntOption('--seed'), 0)
    .option('--force', 'overwrite an existing output file')
    .option('--json', 'print a JSON summary on stdout')
    .action(action((name: string, _o: unknown, command: Command) => {
      const f = new Flags(command);
      const entry = findModel(name);
      const output = f.path('output', { required: true });
      const json = f.bool('json');
      const opts: ModelOptions = {
        inChannels: f.int('inChannels', { min: 1 }),
        classes: f.int('classes', { min: 1 }),
        imageSize: f.int('imageSize', { min: 1 }),
        norm: f.choice('norm', NORM_KINDS),
        groups: f.int('groups', { min: 1 }),
        seed: f.int('seed', { required: true }),
      };
      checkOutputPath(output, { force: f.bool('force'), flag: '-o' });
      const resolved = entry.resolve(opts);
      const model = entry.build(resolved);
      saveModel(model, output);
      const p = countParameters(model);
      const summary = {
        output, model: entry.name, options: resolved,
        inputShape: ['N', resolved.inChannels, resolved.imageSize, resolved.imageSize], outputShape: ['N', resolved.classes],
        parameters: p.trainable, buffers: p.buffers, nodes: model.graph.nodes.length,
        opset: model.opset(), irVersion: model.irVersion, bytes: statSync(output).size,
      };
      if (json) {
        printJson(summary);
        return;
      }
      process.stdout.write(`wrote ${output}: ${entry.name}, ${fmt(p.trainable)} parameters, input [${summary.inputShape.join(', ')}], `
        + `${resolved.classes} classes, norm ${resolved.norm}, seed ${resolved.seed}\n`);
    }));
}
