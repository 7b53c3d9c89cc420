/**
 * `rp-onnx convert MODEL -o OUT`: re-save a model losslessly, inline or with its big
 * initializers in an external data file (and back inline).
 */
import type { Command } from 'commander';
import { relative } from 'node:path';
import { action, printJson, parseIntOption, UsageError } from './common.js';
import { convertModelFile } from '../src/graph/io.js';

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
    .action(action((model: string, o: Record<string, unknown>) => {
      const externalData = o.externalData === true;
      if (!externalData && o.location !== undefined) throw new UsageError('--location needs --external-data');
      if ((o.threshold as number) < 0) throw new UsageError(`--threshold must be at least 0 bytes, got ${String(o.threshold)}`);
      const r = convertModelFile(model, o.output as string, {
        externalData, threshold: o.threshold as number, location: o.location as string | undefined, force: o.force === true,
      });
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
