/**
 * HTTP inference server over onnxruntime-node (node:http, no framework).
 *
 *   POST /v1/predict   JSON {"inputs": [[...]], "shape": [...]} or a float32 body
 *                      (application/octet-stream, shape in X-Shape or ?shape=)
 *                      -> {"logits": [[...]], "probabilities": [[...]], "classes": [...]}
 *   GET  /healthz      -> {"status": "ok"}
 *   GET  /v1/model     -> inputs, outputs, example shape, perturbation summary, serving options,
 *                         and only the metadata keys the operator chose to expose
 *
 * Bad requests get a 4xx JSON error and the server keeps serving. Requests are micro-batched
 * (src/serve/batcher.ts) into one session whose noise seeds come fresh from the OS, so a
 * restarted server never repeats its noise.
 *
 * Slow or hostile clients are bounded: headers must arrive within headersTimeoutMs, the whole
 * request within requestTimeoutMs (408 and the connection closed), an idle keep-alive connection
 * is closed after keepAliveTimeoutMs, and connections beyond maxConnections are refused.
 *
 * close() drains: it stops accepting connections, keeps reading the ones already open, answers
 * every request received on them (queued micro-batches included), then closes the idle
 * connections; whatever is still open after drainTimeoutMs is cut.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Server as NetServer, type AddressInfo, type Socket } from 'node:net';
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
  /** Headers must be complete this long after a request starts (default 30 s), else 408. */
  headersTimeoutMs?: number;
  /** The whole request, body included, must arrive within this (default 60 s), else 408. */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this (default 5 s). */
  keepAliveTimeoutMs?: number;
  /** Open connections at most; more are refused (default 256). */
  maxConnections?: number;
  /** close() cuts connections still open after this (default 10 s). */
  drainTimeoutMs?: number;
  /**
   * Keys of the model's metadata_props that GET /v1/model shows (default none: the training
   * record names data paths and accuracies, which clients need not see).
   */
  exposeMetadata?: readonly string[];
  /** Where to log one line per event (default: nowhere). */
  log?: (line: string) => void;
}

/** The limits a server runs with, as resolved from ServeOptions (and printed by serve --json). */
export interface ServingLimits {
  samples: number;
  maxBatch: number;
  maxBodyBytes: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
  drainTimeoutMs: number;
  exposeMetadata: string[];
}

export interface RunningServer {
  port: number;
  host: string;
  url: string;
  limits: ServingLimits;
  /** Requests, examples and session runs so far. */
  stats(): BatcherStats;
  /** Stops accepting, answers every request received, closes the connections, releases the session. */
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY = 16 * 1024 * 1024;
/**
 * While draining, the server waits until no request has started for this long before it closes
 * idle keep-alive connections: bytes of a request already written by a client may still be on
 * their way through the socket.
 */
const DRAIN_QUIET_MS = 50;

function positiveInt(flag: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RpOnnxError(`${flag} must be a positive integer, got ${v}`);
  return v;
}
function positiveMs(flag: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new RpOnnxError(`${flag} must be a positive number of seconds, got ${v / 1000}`);
  return Math.max(1, Math.round(v));
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
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...extraHeaders });
  res.end(text);
}

/** A raw response for the socket-level errors node:http reports before any request object exists. */
function rawReply(status: number, reason: string, error: string): string {
  const text = JSON.stringify({ error });
  return `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
}

/** Reads the body, refusing more than `limit` bytes with 413; rejects if the client goes away. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(413, `the body has ${declared} bytes; the limit is ${limit} (--max-body-bytes)`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      reject(e);
    };
    req.on('data', (c: Buffer) => {
      if (settled) return;
      size += c.length;
      if (size > limit) {
        fail(new HttpError(413, `the body exceeds the limit of ${limit} bytes (--max-body-bytes)`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks));
    });
    req.on('error', fail);
    // A request timeout or a vanished client destroys the socket: 'end' never comes.
    req.on('close', () => fail(new HttpError(408, 'the connection closed before the body was complete')));
  });
}

/** The path of a request target; a target that is no URL at all ('http://[') is a 400. */
function parseTarget(target: string | undefined): URL {
  try {
    return new URL(target ?? '/', 'http://localhost');
  } catch {
    throw new HttpError(400, `malformed request target '${String(target).slice(0, 100)}'`);
  }
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const limits: ServingLimits = {
    samples: positiveInt('--samples', opts.samples ?? 1),
    maxBatch: positiveInt('--max-batch', opts.maxBatch ?? 64),
    maxBodyBytes: positiveInt('--max-body-bytes', opts.maxBodyBytes ?? DEFAULT_MAX_BODY),
    headersTimeoutMs: positiveMs('--header-timeout', opts.headersTimeoutMs ?? 30_000),
    requestTimeoutMs: positiveMs('--request-timeout', opts.requestTimeoutMs ?? 60_000),
    keepAliveTimeoutMs: positiveMs('--keep-alive-timeout', opts.keepAliveTimeoutMs ?? 5_000),
    maxConnections: positiveInt('--max-connections', opts.maxConnections ?? 256),
    drainTimeoutMs: positiveMs('--drain-timeout', opts.drainTimeoutMs ?? 10_000),
    exposeMetadata: [...(opts.exposeMetadata ?? [])],
  };
  const { samples, maxBatch, maxBodyBytes } = limits;
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new RpOnnxError(`--header-timeout (${limits.headersTimeoutMs / 1000} s) must not exceed --request-timeout (${limits.requestTimeoutMs / 1000} s)`);
  }
  const port = opts.port ?? 8080;
  if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) throw new RpOnnxError(`port must be an integer in 0..65535, got ${port}`, { param: 'port' });
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? (() => {});
  const model = typeof opts.model === 'string' ? loadModel(opts.model) : opts.model;
  const source = typeof opts.model === 'string' ? opts.model : 'the model';
  const metadata = model.metadata();
  const unknownKeys = limits.exposeMetadata.filter((k) => !metadata.has(k));
  if (unknownKeys.length > 0) {
    throw new RpOnnxError(`--expose-metadata: ${source} has no metadata key ${unknownKeys.map((k) => `'${k}'`).join(', ')} (it has: ${[...metadata.keys()].join(', ') || 'none'})`);
  }

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
  // What any client may see: the interface, the perturbation (clients should know the model is
  // noisy and how much) and the serving limits; training metadata only where the operator opted in.
  const description = {
    inputs: session.inputs,
    outputs: session.outputs,
    exampleShape: example,
    perturbation: perturbation && {
      strategy: perturbation.strategy, scale: perturbation.scale,
      blocks: perturbation.blocks.map((b) => ({ gamma: b.gamma, strategy: b.strategy, scale: b.scale })),
    },
    ...(limits.exposeMetadata.length > 0 ? { metadata: Object.fromEntries(limits.exposeMetadata.map((k) => [k, metadata.get(k)])) } : {}),
    serving: { samples, maxBatch, maxBodyBytes, executionProvider: session.executionProvider, noise: session.seeds.length > 0 ? 'fresh seeds from the OS for this process' : 'none' },
  };

  let closing = false;
  let inFlight = 0;
  let lastRequestAt = 0;
  /** Requests in progress per connection: while draining, a connection's last one says Connection: close. */
  const active = new Map<Socket, number>();

  const reply = (req: IncomingMessage, res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    // Pipelined requests behind this one were received too: keep the connection for them.
    if (closing && (active.get(req.socket) ?? 0) <= 1) headers = { ...headers, Connection: 'close' };
    send(res, status, body, headers);
  };

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
    reply(req, res, 200, {
      logits: rows,
      probabilities: softmaxRows(logits, examples.count, classes),
      classes: Array.from(argmaxRows(logits, examples.count, classes)),
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = parseTarget(req.url);
    const route = `${req.method} ${url.pathname}`;
    switch (url.pathname) {
      case '/healthz':
        if (req.method !== 'GET') throw new HttpError(405, 'use GET /healthz');
        reply(req, res, closing ? 503 : 200, { status: closing ? 'shutting down' : 'ok', pending: batcher.pending });
        return;
      case '/v1/model':
        if (req.method !== 'GET') throw new HttpError(405, 'use GET /v1/model');
        reply(req, res, 200, description);
        return;
      case '/v1/predict':
        if (req.method !== 'POST') throw new HttpError(405, 'use POST /v1/predict');
        await predictRoute(req, res, url);
        return;
      default:
        throw new HttpError(404, `no route ${route}: use POST /v1/predict, GET /v1/model or GET /healthz`);
    }
  }

  const server = createServer({
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // node:http checks the two timeouts on this period (default 30 s, which would let a slow
    // client hold a connection for up to twice the timeout).
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
  }, (req, res) => {
    inFlight++;
    lastRequestAt = Date.now();
    const socket = req.socket;
    active.set(socket, (active.get(socket) ?? 0) + 1);
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      const left = (active.get(socket) ?? 1) - 1;
      if (left > 0) active.set(socket, left);
      else active.delete(socket);
      inFlight--;
    };
    handle(req, res)
      .catch((e: unknown) => {
        if (e instanceof HttpError) {
          // A 413 or 408 leaves the rest of the body unread: close the connection after answering.
          reply(req, res, e.status, { error: e.message }, e.status === 413 || e.status === 408 ? { Connection: 'close' } : {});
        } else {
          log(`error: ${e instanceof Error ? e.message : String(e)}`);
          reply(req, res, 500, { error: e instanceof Error ? e.message : 'internal error' });
        }
      })
      .finally(finish);
  });
  server.maxConnections = limits.maxConnections;
  server.on('drop', () => log(`refused a connection: ${limits.maxConnections} open (--max-connections)`));
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, reason, text] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout', 'the request did not arrive in time (--header-timeout, --request-timeout)']
      : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large', 'the request headers are too large']
        : [400, 'Bad Request', 'malformed request'];
    socket.end(rawReply(status, reason, text));
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
      const deadline = Date.now() + limits.drainTimeoutMs;
      // Stop accepting. node:http's own close() would also drop the idle keep-alive connections
      // at once, resetting requests that a client has written but this process not yet read.
      const stopped = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
      const cut = setTimeout(() => {
        log(`drain timeout: cutting ${active.size} connection(s) with requests still in progress`);
        server.closeAllConnections();
      }, limits.drainTimeoutMs);
      // Answer everything received, queued micro-batches included, until no request has
      // started for a moment; then close the connections that are idle.
      while (Date.now() < deadline) {
        await batcher.idle();
        await new Promise((r) => setTimeout(r, DRAIN_QUIET_MS / 2));
        if (inFlight === 0 && batcher.pending === 0 && Date.now() - lastRequestAt >= DRAIN_QUIET_MS) break;
      }
      server.closeIdleConnections();
      // Connections left (a client still sending headers) end with their timeouts or the cut.
      await stopped;
      clearTimeout(cut);
      // Clears node:http's timeout checker; the listening socket is already closed.
      server.close();
      await session.release();
      log('server stopped');
    })();
    return closed;
  };
  return { port: actual, host, url: `http://${shownHost}:${actual}`, limits, stats: () => ({ ...batcher.stats }), close };
}
