/** `rp-onnx serve`: HTTP inference server for a (noisy) model, micro-batched, graceful on SIGTERM. */
import type { Command } from 'commander';
import { action, parseIntOption } from './common.js';
import { RpOnnxError } from '../src/errors.js';
import { startServer } from '../src/serve/server.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../src/runtime/session.js';

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve a model over HTTP: POST /v1/predict, GET /v1/model, GET /healthz; noise freshly keyed from the OS CSPRNG for every run')
    .argument('<model>', 'ONNX model (perturbed or not) with one input of fixed example shape')
    .option('--port <port>', 'TCP port (0: any free port)', parseIntOption('--port'), 8080)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--samples <k>', 'stochastic passes averaged per request', parseIntOption('--samples'), 1)
    .option('--max-batch <n>', 'most examples per session run (micro-batching)', parseIntOption('--max-batch'), 64)
    .option('--max-body-bytes <n>', 'largest request body accepted (413 above)', parseIntOption('--max-body-bytes'), 16 * 1024 * 1024)
    .option('--execution-provider <ep>', `onnxruntime execution provider: ${EXECUTION_PROVIDERS.join(' | ')}`, 'cpu')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', parseIntOption('--threads'))
    .addHelpText('after', `
Example:
  rp-onnx serve resnet8.rp.onnx --port 8080 --samples 4
  curl -s localhost:8080/v1/predict -H 'Content-Type: application/json' -d '{"inputs": [...], "shape": [1, 1, 28, 28]}'`)
    .action(action(async (modelPath: string, o: {
      port: number; host: string; samples: number; maxBatch: number; maxBodyBytes: number; executionProvider: string; threads?: number;
    }) => {
      if (!EXECUTION_PROVIDERS.includes(o.executionProvider as ExecutionProvider)) {
        throw new RpOnnxError(`--execution-provider must be one of ${EXECUTION_PROVIDERS.join(', ')}, got '${o.executionProvider}'`);
      }
      const server = await startServer({
        model: modelPath, port: o.port, host: o.host, samples: o.samples, maxBatch: o.maxBatch, maxBodyBytes: o.maxBodyBytes,
        executionProvider: o.executionProvider as ExecutionProvider, threads: o.threads,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(`listening on ${server.url}\n`);
      const stop = (signal: string) => {
        process.stderr.write(`${signal}: finishing in-flight requests\n`);
        server.close().then(() => process.exit(0), () => process.exit(1));
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    }));
}
