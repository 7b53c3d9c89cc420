/**
 * `rp-onnx convert MODEL -o OUT`: re-save a model losslessly, inline or with its big
 * initializers in an external data file (and back inline).
 */
import type { Command } from 'commander';
import { relative } from 'node:path';
import { action, printJson, parseIntOption, UsageError } from './common.js';
import { Flags } from './flags.js';
import { convertModelFile } from '../src/graph/io.js';

interface ConvertFlags { output: string; externalData: boolean; threshold: number; location?: string; force: boolean; json: boolean }

function convertFlags(f: Flags): ConvertFlags {
  const o = {
    output: f.path('output', { required: true }), externalData: f.bool('externalData'),
    threshold: f.int('threshold', { min: 0, says: 'at least 0 bytes', required: true }), location: f.path('location'),
    force: f.bool('force'), json: f.bool('json'),
  };
  if (!o.externalData && o.location !== undefined) throw new UsageError('--location needs --external-data');
  return o;
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('re-save an ONNX model losslessly, moving big initializers to an external data file or back inline')
    .argument('<model>', 'ONNX model to read (its external data is read from beside it)')
    .requiredOption('-o, --output <file>', 'ONNX file to write (never the input)')
    .option('--external-data', 'write initializers of at least --threshold bytes to a data file beside the output (default: everything inline)')
    .option('--threshold <bytes>', 'smallest initializer moved to the data file, with --external-data', parseIntOption('--threshold'), 1024)
    .option('--location <name>', 'data file name, relative to the output folder, with --external-data (default: <output file>.data)')
    .option('--force', 'overwrite an existing output (and data file)')
    .option('--json', 'print a JSON summary on stdout')
    .action(action((model: string, _o: unknown, command: Command) => {
      const o = convertFlags(new Flags(command));
      const r = convertModelFile(model, o.output, { externalData: o.externalData, threshold: o.threshold, location: o.location, force: o.force });
      if (o.json) {
        printJson({
          input: r.input, output: r.path, modelBytes: r.modelBytes,
          externalData: r.externalData && { dataFile: r.externalData.dataFile, location: r.externalData.location, tensors: r.externalData.tensors, bytes: r.externalData.bytes },
        });
        return;
      }
      const ext = r.externalData;
      const where = ext?.dataFile ? `, ${ext.tensors} tensors (${ext.bytes} bytes) in ${relative(process.cwd(), ext.dataFile) || ext.dataFile}` : ext ? ', no tensor reached the threshold' : ', all tensors inline';
      process.stdout.write(`wrote ${r.path} (${r.modelBytes} bytes${where})\n`);
    }));
}
