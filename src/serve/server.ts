/**
 * HTTP inference server over onnxruntime-node (node:http, no framework).
 *
 *   POST /v1/predict   JSON {"inputs": [[...]], "shape": [...]} or a float32 body
 *                      (application/octet-stream, shape in X-Shape or ?shape=)
 *                      -> {"logits": [[...]], "probabilities": [[...]], "classes": [...]}
 *   GET  /healthz      -> {"status": "ok"}
 *   GET  /v1/model     -> inputs, outputs, shapes, perturbation metadata, serving options
 *
 * Bad requests get a 4xx JSON error and the server keeps serving. Requests are micro-batched
 * (src/serve/batcher.ts) into one session whose noise seeds come fresh from the OS, so a
 * restarted server never repeats its noise. close() stops accepting connections, answers what
 * is in flight, then releases the session.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Model } from '../graph/ir.js';
import { loadModel } from '../graph/io.js';
import { RpOnnxError } from '../errors.js';
import { readPerturbation } from '../passes/perturb.js';
import { createSession, type ExecutionProvider } from '../runtime/session.js';
import { LogitsRunner, argmaxRows } from '../runtime/predict.js';
import type { NoiseSeed } from '../runtime/noise-seeding.js';
import { MicroBatcher, type BatcherStats } from './batcher.js';
import { HttpError, parseBinaryExamples, parseJsonExamples, type Examples } from './request.js';

export interface ServeOptions {
  /** A loaded model or the path of an ONNX file. */
  model: Model | string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Stochastic passes averaged per request. Default 1. */
  samples?: number;
  /** Most examples per session run. Default 64. */
  maxBatch?: number;
  /** Largest accepted request body. Default 16 MiB. */
  maxBodyBytes?: number;
  executionProvider?: ExecutionProvider;
  threads?: number;
  /** Default 'secure' (fresh OS entropy); a number only for reproducible experiments. */
  noiseSeed?: NoiseSeed;
  /** Where to log one line per event (default: nowhere). */
  log?: (line: string) => void;
}

export interface RunningServer {
  port: number;
  host: string;
  url: string;
  /** Requests, examples and session runs so far. */
  stats(): BatcherStats;
  /** Stops accepting, answers in-flight requests, releases the session. */
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY = 16 * 1024 * 1024;
/** After close(), connections still open this long are cut. */
const CLOSE_GRACE_MS = 10_000;

function positiveInt(flag: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RpOnnxError(`${flag} must be a positive integer, got ${v}`);
  return v;
}

function softmaxRows(logits: Float32Array, rows: number, classes: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * classes, (r + 1) * classes);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    const e = Array.from(row, (v) => {
      const x = Math.exp(v - max);
      sum += x;
      return x;
    });
    out.push(e.map((x) => x / sum));
  }
  return out;
}

function send(res: ServerResponse, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...extraHeaders });
  res.end(text);
}

/** Reads the body, refusing more than `limit` bytes with 413. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(413, `the body has ${declared} bytes; the limit is ${limit} (--max-body-bytes)`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) {
        failed = true;
        reject(new HttpError(413, `the body exceeds the limit of ${limit} bytes (--max-body-bytes)`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      if (!failed) {
        failed = true;
        reject(e);
      }
    });
  });
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const samples = positiveInt('--samples', opts.samples ?? 1);
  const maxBatch = positiveInt('--max-batch', opts.maxBatch ?? 64);
  const maxBodyBytes = positiveInt('--max-body-bytes', opts.maxBodyBytes ?? DEFAULT_MAX_BODY);
  const port = opts.port ?? 8080;
  if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) throw new RpOnnxError(`--port must be an integer in 0..65535, got ${port}`);
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? (() => {});
  const model = typeof opts.model === 'string' ? loadModel(opts.model) : opts.model;
  const source = typeof opts.model === 'string' ? opts.model : 'the model';

  const session = await createSession(model, { executionProvider: opts.executionProvider, threads: opts.threads, noiseSeed: opts.noiseSeed ?? 'secure' });
  const declared = session.inputs[0]?.shape ?? null;
  const rest = declared?.slice(1) ?? null;
  if (!rest || !rest.every((d): d is number => typeof d === 'number')) {
    await session.release();
    throw new RpOnnxError(`${source}: serve needs a model with one input whose non-batch dimensions are fixed numbers (input shape ${declared ? `[${declared.map((d) => d ?? '?').join(', ')}]` : 'unknown'})`);
  }
  const example: number[] = rest as number[];
  let runner: LogitsRunner;
  try {
    runner = new LogitsRunner(session, example, source);
  } catch (e) {
    await session.release();
    throw e;
  }
  const batcher = new MicroBatcher(runner, maxBatch, samples);
  const perturbation = readPerturbation(model);
  const description = {
    inputs: session.inputs,
    outputs: session.outputs,
    exampleShape: example,
    perturbation: perturbation && {
      strategy: perturbation.strategy, scale: perturbation.scale,
      blocks: perturbation.blocks.map((b) => ({ add: b.add, gamma: b.gamma, strategy: b.strategy, scale: b.scale, noiseNode: b.noiseNode })),
    },
    metadata: Object.fromEntries(model.metadata()),
    serving: { samples, maxBatch, maxBodyBytes, executionProvider: session.executionProvider, noise: session.seeds.length > 0 ? 'fresh seeds from the OS for this process' : 'none' },
  };

  let closing = false;
  let inFlight = 0;

  async function predictRoute(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const type = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json' && type !== 'application/octet-stream') {
      throw new HttpError(415, `unsupported Content-Type '${type}': send application/json or application/octet-stream`);
    }
    const body = await readBody(req, maxBodyBytes);
    const examples: Examples = type === 'application/json'
      ? parseJsonExamples(body.toString('utf8'), example)
      : parseBinaryExamples(body, (req.headers['x-shape'] as string | undefined) ?? url.searchParams.get('shape') ?? undefined, example);
    const logits = await batcher.submit(examples.data, examples.count);
    const classes = batcher.classes;
    const rows: number[][] = [];
    for (let r = 0; r < examples.count; r++) rows.push(Array.from(logits.subarray(r * classes, (r + 1) * classes)));
    send(res, 200, {
      logits: rows,
      probabilities: softmaxRows(logits, examples.count, classes),
      classes: Array.from(argmaxRows(logits, examples.count, classes)),
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = `${req.method} ${url.pathname}`;
    // While closing, requests on connections already accepted are still answered, each
    // connection's last (Connection: close); the listening socket takes no new ones.
    if (closing) res.setHeader('Connection', 'close');
    switch (url.pathname) {
      case '/healthz':
        if (req.method !== 'GET') throw new HttpError(405, 'use GET /healthz');
        send(res, closing ? 503 : 200, { status: closing ? 'shutting down' : 'ok', pending: batcher.pending });
        return;
      case '/v1/model':
        if (req.method !== 'GET') throw new HttpError(405, 'use GET /v1/model');
        send(res, 200, description);
        return;
      case '/v1/predict':
        if (req.method !== 'POST') throw new HttpError(405, 'use POST /v1/predict');
        await predictRoute(req, res, url);
        return;
      default:
        throw new HttpError(404, `no route ${route}: use POST /v1/predict, GET /v1/model or GET /healthz`);
    }
  }

  const server = createServer((req, res) => {
    inFlight++;
    handle(req, res)
      .catch((e: unknown) => {
        if (e instanceof HttpError) {
          // A 413 leaves the rest of the body unread: close the connection after answering.
          send(res, e.status, { error: e.message }, e.status === 413 ? { Connection: 'close' } : {});
        } else {
          log(`error: ${e instanceof Error ? e.message : String(e)}`);
          send(res, 500, { error: e instanceof Error ? e.message : 'internal error' });
        }
      })
      .finally(() => {
        inFlight--;
      });
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n{"error":"malformed request"}');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new RpOnnxError(
      e.code === 'EADDRINUSE' ? `--port ${port}: the address ${host}:${port} is already in use; choose another port`
        : `cannot listen on ${host}:${port}: ${e.code ?? e.message}`, { exitCode: 1, cause: e })));
    server.listen(port, host, () => resolve());
  }).catch(async (e: unknown) => {
    await session.release();
    throw e;
  });
  const actual = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  log(`listening on http://${shownHost}:${actual}`);

  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    if (closed) return closed;
    closing = true;
    closed = (async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      const grace = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
      // Answer everything already accepted (a request whose bytes are still arriving gets a
      // moment to start), then drop the idle keep-alive connections.
      do {
        await batcher.idle();
        await new Promise((r) => setTimeout(r, 20));
      } while (inFlight > 0 || batcher.pending > 0);
      server.closeIdleConnections();
      await stopped;
      clearTimeout(grace);
      await session.release();
      log('server stopped');
    })();
    return closed;
  };
  return { port: actual, host, url: `http://${shownHost}:${actual}`, stats: () => ({ ...batcher.stats }), close };
}
