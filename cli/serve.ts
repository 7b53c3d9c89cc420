/** `rp-onnx serve`: HTTP inference server for a (noisy) model, micro-batched, graceful on SIGTERM. */
import type { Command } from 'commander';
import { action, parseIntOption, parseNumberOption } from './common.js';
import { Flags } from './flags.js';
import { startServer } from '../src/serve/server.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../src/runtime/session.js';

interface ServeFlags {
  port: number; host: string; samples: number; maxBatch: number; maxBodyBytes: number; executionProvider: ExecutionProvider; threads?: number;
  headerTimeout: number; requestTimeout: number; keepAliveTimeout: number; maxConnections: number; drainTimeout: number;
  exposeMetadata: string[]; json: boolean;
}

/** `serve`'s flags, in the ranges and words of startServer's own checks (which library callers get). */
function serveFlags(f: Flags): ServeFlags {
  const seconds = (key: string) => f.number(key, { above: 0, says: 'a positive number of seconds', required: true });
  return {
    port: f.int('port', { min: 0, max: 65535, says: 'an integer in 0..65535', required: true }), host: f.string('host', { required: true }),
    samples: f.int('samples', { min: 1, required: true }), maxBatch: f.int('maxBatch', { min: 1, required: true }),
    maxBodyBytes: f.int('maxBodyBytes', { min: 1, required: true }),
    executionProvider: f.choice('executionProvider', EXECUTION_PROVIDERS, { required: true, how: 'one of' }), threads: f.int('threads', { min: 1 }),
    headerTimeout: seconds('headerTimeout'), requestTimeout: seconds('requestTimeout'), keepAliveTimeout: seconds('keepAliveTimeout'),
    maxConnections: f.int('maxConnections', { min: 1, required: true }), drainTimeout: seconds('drainTimeout'),
    exposeMetadata: f.list('exposeMetadata') ?? [], json: f.bool('json'),
  };
}

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
    .option('--header-timeout <s>', 'seconds a client has to send its request headers (408 and closed after)', parseNumberOption('--header-timeout'), 30)
    .option('--request-timeout <s>', 'seconds a client has to send the whole request, body included', parseNumberOption('--request-timeout'), 60)
    .option('--keep-alive-timeout <s>', 'seconds an idle keep-alive connection stays open', parseNumberOption('--keep-alive-timeout'), 5)
    .option('--max-connections <n>', 'open connections at most (more are refused)', parseIntOption('--max-connections'), 256)
    .option('--drain-timeout <s>', 'on SIGTERM/SIGINT: seconds to answer the requests received before connections are cut', parseNumberOption('--drain-timeout'), 10)
    .option('--expose-metadata <keys>', 'comma list of metadata_props keys GET /v1/model shows (default: none; e.g. rp-onnx.training names the data and accuracy)')
    .option('--execution-provider <ep>', `onnxruntime execution provider: ${EXECUTION_PROVIDERS.join(' | ')}`, 'cpu')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', parseIntOption('--threads'))
    .option('--json', 'print one JSON line on stdout once listening: url, port, host, model, options')
    .addHelpText('after', `
Example:
  rp-onnx serve resnet8.rp.onnx --port 8080 --samples 4
  curl -s localhost:8080/v1/predict -H 'Content-Type: application/json' -d '{"inputs": [...], "shape": [1, 1, 28, 28]}'
On SIGTERM or SIGINT the server stops accepting connections, answers every request it has received,
closes the idle connections and exits 0 (a second signal exits at once with 1).`)
    .action(action(async (modelPath: string, _o: unknown, command: Command) => {
      const o = serveFlags(new Flags(command));
      const { exposeMetadata } = o;
      const server = await startServer({
        model: modelPath, port: o.port, host: o.host, samples: o.samples, maxBatch: o.maxBatch, maxBodyBytes: o.maxBodyBytes,
        executionProvider: o.executionProvider, threads: o.threads,
        headersTimeoutMs: o.headerTimeout * 1000, requestTimeoutMs: o.requestTimeout * 1000, keepAliveTimeoutMs: o.keepAliveTimeout * 1000,
        maxConnections: o.maxConnections, drainTimeoutMs: o.drainTimeout * 1000, exposeMetadata,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      if (o.json) {
        const { samples, maxBatch, maxBodyBytes, headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs, maxConnections, drainTimeoutMs } = server.limits;
        process.stdout.write(`${JSON.stringify({
          event: 'listening', url: server.url, host: server.host, port: server.port, model: modelPath, pid: process.pid,
          options: {
            samples, maxBatch, maxBodyBytes, maxConnections, executionProvider: o.executionProvider, threads: o.threads ?? null,
            headerTimeout: headersTimeoutMs / 1000, requestTimeout: requestTimeoutMs / 1000, keepAliveTimeout: keepAliveTimeoutMs / 1000,
            drainTimeout: drainTimeoutMs / 1000, exposeMetadata,
          },
        })}\n`);
      } else {
        process.stdout.write(`listening on ${server.url}\n`);
      }
      let stopping = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (stopping) process.exit(1);
        stopping = true;
        process.stderr.write(`${signal}: answering the requests received, then exiting\n`);
        server.close().then(() => process.exit(0), () => process.exit(1));
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    }));
}
