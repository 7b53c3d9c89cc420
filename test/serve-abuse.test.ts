/**
 * The server against hostile and unlucky clients, over raw TCP so every byte is ours: malformed
 * requests (4xx, never 500), slow and silent clients (closed by the timeouts), the connection
 * limit, what GET /v1/model reveals, and SIGTERM with 500 requests in flight on 50 keep-alive
 * connections (every one answered with the logits of a direct session run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildResNet } from '../models/resnet.js';
import { perturbModel } from '../src/passes/perturb.js';
import { saveModel } from '../src/graph/io.js';
import { createSession, ort } from '../src/runtime/session.js';
import { startServer } from '../src/serve/server.js';
import { Random } from '../src/random.js';

const IMG = 8, PER = IMG * IMG, CLASSES = 10, POOL = 16;

async function fixture() {
  const model = perturbModel(buildResNet('resnet8', { inChannels: 1, classes: CLASSES, imageSize: IMG, seed: 3 }), { gamma: 0, strategy: 'I', scale: 'absolute', toolVersion: 'test' }).model;
  model.setMetadata('rp-onnx.training', JSON.stringify({ data: '/secret/patients', examples: 1234, finalTestAccuracy: 0.91 }));
  const pool = new Float32Array(POOL * PER);
  new Random(7).fillNormal(pool);
  const s = await createSession(model, { threads: 1 });
  const direct = (await s.run({ input: new ort.Tensor('float32', pool, [POOL, 1, IMG, IMG]) })).logits!.data as Float32Array;
  await s.release();
  return { model, pool, direct };
}

interface RawResponse { status: number; headers: Record<string, string>; body: string }

/** A raw connection that collects every HTTP response the server sends, in order. */
class RawClient {
  readonly socket: Socket;
  readonly responses: RawResponse[] = [];
  private buf = Buffer.alloc(0);
  readonly closed: Promise<{ at: number; error: string | null }>;
  readonly opened = Date.now();
  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    let error: string | null = null;
    this.socket.on('error', (e: NodeJS.ErrnoException) => { error = e.code ?? e.message; });
    this.socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.parse();
    });
    this.closed = new Promise((resolve) => this.socket.on('close', () => resolve({ at: Date.now(), error })));
  }
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }
  private parse(): void {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      if (this.buf.length < end + 4 + length) return;
      const body = this.buf.subarray(end + 4, end + 4 + length).toString('utf8');
      this.buf = this.buf.subarray(end + 4 + length);
      this.responses.push({ status: Number(head[0]!.split(' ')[1]), headers, body });
    }
  }
  /** Resolves once `n` responses have arrived (or rejects when the connection closes first). */
  async waitFor(n: number, timeoutMs = 10_000): Promise<RawResponse[]> {
    const until = Date.now() + timeoutMs;
    while (this.responses.length < n) {
      if (this.socket.destroyed || Date.now() > until) throw new Error(`got ${this.responses.length} of ${n} responses`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.responses;
  }
}

const post = (body: string) => `POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('serve abuse: malformed requests get 4xx (never 500) and the server keeps serving', async () => {
  const { model, pool, direct } = await fixture();
  const server = await startServer({ model, port: 0, threads: 1 });
  try {
    const cases: [string, string, number][] = [
      ['JSON nested 100,000 deep', post(`{"inputs": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`), 400],
      ['JSON nested one level too deep', post(`{"inputs": [[[[[${Array(PER).fill(0).join(',')}]]]]]}`), 400],
      ['request target http://[', 'GET http://[ HTTP/1.1\r\nHost: x\r\n\r\n', 400],
      ['request target http://[ on predict', 'POST http://[/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}', 400],
      ['garbage request line', 'HELLO\r\n\r\n', 400],
      ['bad Content-Length', 'POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400],
      ['oversized headers', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ];
    for (const [what, raw, status] of cases) {
      const c = new RawClient(server.port);
      await c.ready();
      c.socket.write(raw);
      const [r] = await c.waitFor(1);
      assert.equal(r!.status, status, `${what}: ${r!.body}`);
      assert.equal(typeof (JSON.parse(r!.body) as { error: unknown }).error, 'string', what);
      c.socket.destroy();
    }
    // Still serving, with the right answer.
    const c = new RawClient(server.port);
    await c.ready();
    c.socket.write(post(JSON.stringify({ inputs: Array.from(pool.subarray(0, PER)), shape: [1, 1, IMG, IMG] })));
    const [ok] = await c.waitFor(1);
    assert.equal(ok!.status, 200);
    const logits = (JSON.parse(ok!.body) as { logits: number[][] }).logits[0]!;
    for (let k = 0; k < CLASSES; k++) assert.ok(Math.abs(logits[k]! - direct[k]!) < 1e-5);
    c.socket.destroy();
  } finally {
    await server.close();
  }
});

test('serve abuse: GET /v1/model shows training metadata only for the keys the operator exposes', async () => {
  const { model } = await fixture();
  const get = async (port: number) => {
    const c = new RawClient(port);
    await c.ready();
    c.socket.write('GET /v1/model HTTP/1.1\r\nHost: x\r\n\r\n');
    const [r] = await c.waitFor(1);
    c.socket.destroy();
    return { status: r!.status, text: r!.body, body: JSON.parse(r!.body) as Record<string, unknown> };
  };
  const closed = await startServer({ model, port: 0, threads: 1 });
  try {
    const r = await get(closed.port);
    assert.equal(r.status, 200);
    assert.equal(r.body['metadata'], undefined);
    assert.doesNotMatch(r.text, /secret|patients|1234|0\.91|finalTestAccuracy/);
    const p = r.body['perturbation'] as { strategy: string; blocks: { gamma: number }[] };
    assert.equal(p.strategy, 'I');
    assert.deepEqual(p.blocks.map((b) => b.gamma), [0, 0, 0]);
    assert.deepEqual(r.body['exampleShape'], [1, IMG, IMG]);
  } finally {
    await closed.close();
  }
  const open = await startServer({ model, port: 0, threads: 1, exposeMetadata: ['rp-onnx.training'] });
  try {
    const r = await get(open.port);
    assert.deepEqual(Object.keys(r.body['metadata'] as object), ['rp-onnx.training']);
    assert.match(r.text, /secret\/patients/);
  } finally {
    await open.close();
  }
  await assert.rejects(startServer({ model, port: 0, threads: 1, exposeMetadata: ['no.such.key'] }), /--expose-metadata: .*no metadata key 'no.such.key'.*rp-onnx.training/);
});

test('serve abuse: silent, dribbling and slow-body clients are closed by the timeouts; idle keep-alive closed', async () => {
  const { model, pool } = await fixture();
  const server = await startServer({ model, port: 0, threads: 1, headersTimeoutMs: 300, requestTimeoutMs: 600, keepAliveTimeoutMs: 200 });
  try {
    const body = JSON.stringify({ inputs: Array.from(pool.subarray(0, PER)), shape: [1, 1, IMG, IMG] });
    // Silent: never sends a byte.
    const silent = new RawClient(server.port);
    await silent.ready();
    // Dribbling headers: one byte every 50 ms, forever.
    const dribble = new RawClient(server.port);
    await dribble.ready();
    const head = 'POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-Pad: ' + 'a'.repeat(1000);
    let i = 0;
    const dribbling = setInterval(() => { if (!dribble.socket.destroyed) dribble.socket.write(head[i++ % head.length]!); }, 50);
    // Slow body: headers at once, then one byte every 50 ms.
    const slow = new RawClient(server.port);
    await slow.ready();
    slow.socket.write(`POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    let j = 0;
    const trickle = setInterval(() => { if (!slow.socket.destroyed && j < body.length - 1) slow.socket.write(body[j++]!); }, 50);
    // Keep-alive: one request answered, then idle.
    const idle = new RawClient(server.port);
    await idle.ready();
    idle.socket.write(post(body));
    await idle.waitFor(1);
    const answeredAt = Date.now();


    const [s, d, b, k] = await Promise.all([silent.closed, dribble.closed, slow.closed, idle.closed]);
    clearInterval(dribbling);
    clearInterval(trickle);
    // Headers timeout 300 ms, checked every 75 ms; request timeout 600 ms; keep-alive 200 ms.
    const within = (what: string, ms: number, lo: number, hi: number) => assert.ok(ms >= lo && ms <= hi, `${what} closed after ${ms} ms, expected ${lo}..${hi}`);
    within('silent', s.at - silent.opened, 250, 5000);
    within('dribbling headers', d.at - dribble.opened, 250, 5000);
    within('slow body', b.at - slow.opened, 550, 5000);
    within('idle keep-alive', k.at - answeredAt, 150, 5000);
    for (const c of [silent, dribble, slow]) {
      if (c.responses.length > 0) assert.equal(c.responses[0]!.status, 408);
    }
    // Still serving.
    const after = new RawClient(server.port);
    await after.ready();
    after.socket.write(post(body));
    const [r] = await after.waitFor(1);
    assert.equal(r!.status, 200);
    after.socket.destroy();
  } finally {
    await server.close();
  }
});

test('serve abuse: SIGTERM with 500 requests on 50 keep-alive connections answers all 500, then exits 0', async () => {
  const { model, pool, direct } = await fixture();
  const dir = mkdtempSync(join(tmpdir(), 'rp-serve-abuse-'));
  const path = join(dir, 'model.onnx');
  saveModel(model, path);
  const child = spawn(process.execPath, ['--import', 'tsx', join('cli', 'main.ts'), 'serve', path, '--port', '0', '--threads', '1', '--max-batch', '1', '--samples', '8', '--drain-timeout', '120', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const started = await new Promise<Record<string, unknown>>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const nl = out.indexOf('\n');
        if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
      });
      child.once('exit', (code) => reject(new Error(`server exited early (${code}): ${stderr}`)));
    });
    // serve --json: one machine-readable line.
    assert.equal(started['event'], 'listening');
    assert.equal(started['model'], path);
    const port = started['port'] as number;
    assert.equal(started['url'], `http://127.0.0.1:${port}`);
    const options = started['options'] as Record<string, unknown>;
    assert.equal(options['headerTimeout'], 30);
    assert.equal(options['requestTimeout'], 60);
    assert.equal(options['drainTimeout'], 120);
    assert.equal(options['maxConnections'], 256);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    // 50 keep-alive connections, each already served once.
    const clients = Array.from({ length: 50 }, () => new RawClient(port));
    await Promise.all(clients.map((c) => c.ready()));
    const req = (id: number) => post(JSON.stringify({ inputs: Array.from(pool.subarray((id % POOL) * PER, (id % POOL + 1) * PER)), shape: [1, 1, IMG, IMG] }));
    clients.forEach((c, k) => c.socket.write(req(k)));
    await Promise.all(clients.map((c) => c.waitFor(1)));
    // 10 pipelined requests on each, written 30 ms before SIGTERM.
    clients.forEach((c, k) => c.socket.write(Array.from({ length: 10 }, (_, n) => req(k * 10 + n)).join('')));
    await sleep(30);
    const beforeSigterm = clients.reduce((a, c) => a + c.responses.length - 1, 0);
    child.kill('SIGTERM');
    const ends = await Promise.all(clients.map((c) => c.closed));
    let answered = 0;
    clients.forEach((c, k) => {
      assert.equal(c.responses.length, 11, `connection ${k}: ${c.responses.length - 1} of 10 answered (${ends[k]!.error ?? 'closed'}); ${stderr}`);
      c.responses.slice(1).forEach((r, n) => {
        assert.equal(r.status, 200, r.body);
        const id = (k * 10 + n) % POOL;
        const logits = (JSON.parse(r.body) as { logits: number[][] }).logits[0]!;
        for (let q = 0; q < CLASSES; q++) assert.ok(Math.abs(logits[q]! - direct[id * CLASSES + q]!) < 1e-5, `connection ${k} request ${n}`);
        answered++;
      });
      // The server closed each connection itself, cleanly.
      assert.equal(ends[k]!.error, null, `connection ${k}`);
    });
    assert.equal(answered, 500);
    assert.ok(beforeSigterm < 250, `most requests were still queued at SIGTERM (${beforeSigterm} answered before)`);
    assert.equal(await exited, 0, stderr);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('serve abuse: close() answers requests racing it on idle keep-alive connections, then closes them', async () => {
  const { model, pool, direct } = await fixture();
  const server = await startServer({ model, port: 0, threads: 1 });
  const body = (id: number) => post(JSON.stringify({ inputs: Array.from(pool.subarray(id * PER, (id + 1) * PER)), shape: [1, 1, IMG, IMG] }));
  const clients = Array.from({ length: 50 }, () => new RawClient(server.port));
  await Promise.all(clients.map((c) => c.ready()));
  clients.forEach((c, k) => c.socket.write(body(k % POOL)));
  await Promise.all(clients.map((c) => c.waitFor(1)));
  // Every connection is idle now. Shutdown starts while each client writes its next request.
  const closing = server.close();
  clients.forEach((c, k) => c.socket.write(body((k + 1) % POOL)));
  const ends = await Promise.all(clients.map((c) => c.closed));
  await closing;
  clients.forEach((c, k) => {
    assert.equal(c.responses.length, 2, `connection ${k}: ${ends[k]!.error ?? 'closed'} before the second answer`);
    const r = c.responses[1]!;
    assert.equal(r.status, 200);
    assert.equal(r.headers['connection'], 'close', 'the last answer says the connection closes');
    const logits = (JSON.parse(r.body) as { logits: number[][] }).logits[0]!;
    const id = (k + 1) % POOL;
    for (let q = 0; q < CLASSES; q++) assert.ok(Math.abs(logits[q]! - direct[id * CLASSES + q]!) < 1e-5);
  });
  // No longer listening.
  const late = new RawClient(server.port);
  assert.equal((await late.closed).error, 'ECONNREFUSED');
});

test('serve abuse: a client that never finishes its request cannot hold close() past the drain timeout', async () => {
  const { model } = await fixture();
  const server = await startServer({ model, port: 0, threads: 1, drainTimeoutMs: 300 });
  const stuck = new RawClient(server.port);
  await stuck.ready();
  stuck.socket.write('POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"inputs": [');
  await sleep(50);
  const started = Date.now();
  await server.close();
  const took = Date.now() - started;
  assert.ok(took >= 250 && took < 5000, `close() took ${took} ms with a drain timeout of 300 ms`);
  await stuck.closed;
});

test('serve abuse: connections beyond --max-connections are refused at once; served again below it', async () => {
  const { model, pool } = await fixture();
  const server = await startServer({ model, port: 0, threads: 1, maxConnections: 2 });
  try {
    const held = [new RawClient(server.port), new RawClient(server.port)];
    await Promise.all(held.map((c) => c.ready()));
    await sleep(50);
    const extra = new RawClient(server.port);
    const refused = await extra.closed;
    assert.equal(extra.responses.length, 0);
    assert.ok(refused.at - extra.opened < 3000, `refused after ${refused.at - extra.opened} ms`);
    held[0]!.socket.destroy();
    await held[0]!.closed;
    await sleep(50);
    const after = new RawClient(server.port);
    await after.ready();
    after.socket.write(post(JSON.stringify({ inputs: Array.from(pool.subarray(0, PER)), shape: [1, 1, IMG, IMG] })));
    const [r] = await after.waitFor(1);
    assert.equal(r!.status, 200);
    after.socket.destroy();
    held[1]!.socket.destroy();
  } finally {
    await server.close();
  }
});
