/**
 * The HTTP server on loopback: good and bad requests, a burst of 1,000 concurrent requests
 * (every good one answered with the logits of a direct session run, every bad one a 4xx), and
 * graceful shutdown of a spawned `rp-onnx serve` on SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildResNet } from '../models/resnet.js';
import { perturbModel } from '../src/passes/perturb.js';
import { saveModel } from '../src/graph/io.js';
import { createSession, ort } from '../src/runtime/session.js';
import { startServer, type RunningServer } from '../src/serve/server.js';
import { Random } from '../src/random.js';

const IMG = 16, PER = IMG * IMG, CLASSES = 10, POOL = 32;
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

interface Reply { status: number; body: { logits?: number[][]; probabilities?: number[][]; classes?: number[]; error?: string; [k: string]: unknown } }

function call(base: string, method: string, path: string, body?: string | Uint8Array, headers: Record<string, string> = {}, opts: { agent?: Agent | false } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, base);
    const req = request(url, { method, agent: opts.agent ?? agent, headers: { ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Reply['body'] });
        } catch {
          reject(new Error(`non-JSON reply ${res.statusCode}: ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
const postJson = (base: string, value: unknown) => call(base, 'POST', '/v1/predict', JSON.stringify(value), { 'Content-Type': 'application/json' });

/** A gamma-0 perturbed ResNet-8 (deterministic), a pool of examples and their direct logits. */
async function fixture() {
  const model = perturbModel(buildResNet('resnet8', { inChannels: 1, classes: CLASSES, imageSize: IMG, seed: 2 }), { gamma: 0, strategy: 'I', scale: 'absolute', toolVersion: 'test' }).model;
  const pool = new Float32Array(POOL * PER);
  new Random(1).fillNormal(pool);
  const s = await createSession(model, { threads: 1 });
  const direct = (await s.run({ input: new ort.Tensor('float32', pool, [POOL, 1, IMG, IMG]) })).logits!.data as Float32Array;
  await s.release();
  return { model, pool, direct };
}
const example = (pool: Float32Array, i: number) => pool.subarray(i * PER, (i + 1) * PER);
const nested = (x: Float32Array) => [Array.from({ length: IMG }, (_, r) => Array.from(x.subarray(r * IMG, (r + 1) * IMG)))];

function assertLogits(got: number[][] | undefined, ids: number[], direct: Float32Array, what: string): void {
  assert.ok(got, `${what}: logits`);
  assert.equal(got.length, ids.length, what);
  ids.forEach((id, r) => {
    for (let c = 0; c < CLASSES; c++) {
      // Batches of different sizes may round differently in the last bits.
      assert.ok(Math.abs(got[r]![c]! - direct[id * CLASSES + c]!) <= 1e-5, `${what}: example ${id} class ${c}: ${got[r]![c]} vs ${direct[id * CLASSES + c]}`);
    }
  });
}

test('serve: routes, good and bad requests, 1,000 concurrent requests micro-batched without loss', async () => {
  const { model, pool, direct } = await fixture();
  const server: RunningServer = await startServer({ model, port: 0, maxBatch: 64, maxBodyBytes: 200_000, threads: 1 });
  const base = server.url;
  try {
    assert.deepEqual((await call(base, 'GET', '/healthz')).body.status, 'ok');
    const info = await call(base, 'GET', '/v1/model');
    assert.equal(info.status, 200);
    assert.deepEqual(info.body['exampleShape'], [1, IMG, IMG]);
    const pert = info.body['perturbation'] as { strategy: string; blocks: { gamma: number }[] };
    assert.equal(pert.strategy, 'I');
    assert.equal(pert.blocks.length, 3);

    // JSON: nested without shape (one example), flat with shape (two examples).
    const one = await postJson(base, { inputs: nested(example(pool, 3)) });
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assertLogits(one.body.logits, [3], direct, 'nested');
    const probs = one.body.probabilities![0]!;
    assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    assert.equal(one.body.classes![0], probs.indexOf(Math.max(...probs)));
    const two = await postJson(base, { inputs: [...example(pool, 4), ...example(pool, 5)], shape: [2, 1, IMG, IMG] });
    assertLogits(two.body.logits, [4, 5], direct, 'flat with shape');
    // Binary: shape in the header, and in the query.
    const bytes = (ids: number[]) => new Uint8Array(Float32Array.from(ids.flatMap((i) => Array.from(example(pool, i)))).buffer);
    const bin = await call(base, 'POST', '/v1/predict', bytes([6, 7, 8]), { 'Content-Type': 'application/octet-stream', 'X-Shape': `3,1,${IMG},${IMG}` });
    assertLogits(bin.body.logits, [6, 7, 8], direct, 'binary header');
    const binq = await call(base, 'POST', `/v1/predict?shape=1,1,${IMG},${IMG}`, bytes([9]), { 'Content-Type': 'application/octet-stream' });
    assertLogits(binq.body.logits, [9], direct, 'binary query');

    const bad: [string, () => Promise<Reply>, number][] = [
      ['wrong shape', () => postJson(base, { inputs: Array(PER * 2).fill(0), shape: [1, 2, IMG, IMG] }), 400],
      ['shape/value mismatch', () => postJson(base, { inputs: Array(10).fill(0), shape: [1, 1, IMG, IMG] }), 400],
      ['string value', () => postJson(base, { inputs: [...Array(PER - 1).fill(0), 'x'], shape: [1, 1, IMG, IMG] }), 400],
      ['null value', () => postJson(base, { inputs: [...Array(PER - 1).fill(0), null], shape: [1, 1, IMG, IMG] }), 400],
      ['Infinity (1e999)', () => call(base, 'POST', '/v1/predict', `{"inputs": [${Array(PER - 1).fill(0).join(',')},1e999], "shape": [1,1,${IMG},${IMG}]}`, { 'Content-Type': 'application/json' }), 400],
      ['float32 overflow', () => postJson(base, { inputs: [...Array(PER - 1).fill(0), 1e300], shape: [1, 1, IMG, IMG] }), 400],
      ['NaN token', () => call(base, 'POST', '/v1/predict', '{"inputs": [NaN]}', { 'Content-Type': 'application/json' }), 400],
      ['malformed JSON', () => call(base, 'POST', '/v1/predict', '{"inputs": [1, 2', { 'Content-Type': 'application/json' }), 400],
      ['not an object', () => postJson(base, [1, 2, 3]), 400],
      ['missing inputs', () => postJson(base, { shape: [1] }), 400],
      ['ragged', () => postJson(base, { inputs: [[[1, 2], [3]]] }), 400],
      ['empty', () => postJson(base, { inputs: [] }), 400],
      ['binary without shape', () => call(base, 'POST', '/v1/predict', bytes([1]), { 'Content-Type': 'application/octet-stream' }), 400],
      ['binary wrong length', () => call(base, 'POST', '/v1/predict', bytes([1]).subarray(0, 100), { 'Content-Type': 'application/octet-stream', 'X-Shape': `1,1,${IMG},${IMG}` }), 400],
      ['binary NaN', () => call(base, 'POST', '/v1/predict', new Uint8Array(new Float32Array(PER).fill(NaN).buffer), { 'Content-Type': 'application/octet-stream', 'X-Shape': `1,1,${IMG},${IMG}` }), 400],
      ['oversized body', () => postJson(base, { inputs: Array(60_000).fill(0.123456) }), 413],
      ['unsupported type', () => call(base, 'POST', '/v1/predict', 'x', { 'Content-Type': 'text/plain' }), 415],
      ['unknown route', () => call(base, 'GET', '/v2/nothing'), 404],
      ['wrong method', () => call(base, 'GET', '/v1/predict'), 405],
    ];
    for (const [what, send, status] of bad) {
      const r = await send();
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(typeof r.body.error, 'string', what);
    }

    // The burst: 1,000 requests at once, 1 in 10 bad.
    const rng = new Random(5);
    const before = server.stats();
    const burst = Array.from({ length: 1000 }, (_, k) => {
      if (k % 10 === 9) {
        return postJson(base, { inputs: [1, 2, 'three'] }).then((r) => ({ k, ids: null as number[] | null, r }));
      }
      const ids = Array.from({ length: 1 + rng.int(3) }, () => rng.int(POOL));
      const flat = ids.flatMap((i) => Array.from(example(pool, i)));
      return postJson(base, { inputs: flat, shape: [ids.length, 1, IMG, IMG] }).then((r) => ({ k, ids, r }));
    });
    const replies = await Promise.all(burst);
    let good = 0;
    for (const { k, ids, r } of replies) {
      if (ids === null) {
        assert.equal(r.status, 400, `request ${k}`);
        continue;
      }
      assert.equal(r.status, 200, `request ${k}: ${JSON.stringify(r.body).slice(0, 200)}`);
      assertLogits(r.body.logits, ids, direct, `request ${k}`);
      good++;
    }
    assert.equal(good, 900);
    const after = server.stats();
    assert.equal(after.requests - before.requests, 900);
    assert.ok(after.runs - before.runs < 900 / 2, `micro-batching: ${after.runs - before.runs} runs for 900 requests`);
    assert.ok(after.largestBatch > 1);
    assert.equal((await call(base, 'GET', '/healthz')).status, 200, 'still serving after the burst');
  } finally {
    await server.close();
    agent.destroy();
  }
});

test('serve: SIGTERM finishes in-flight requests and exits 0', async () => {
  const { model, pool, direct } = await fixture();
  const dir = mkdtempSync(join(tmpdir(), 'rp-serve-'));
  const path = join(dir, 'model.onnx');
  saveModel(model, path);
  const child = spawn(process.execPath, ['--import', 'tsx', join('cli', 'main.ts'), 'serve', path, '--port', '0', '--threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const base = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`server exited early (${code}): ${stderr}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const noAgent = { agent: false as const };
    const inFlight = Array.from({ length: 20 }, (_, i) =>
      call(base, 'POST', '/v1/predict', JSON.stringify({ inputs: Array.from(example(pool, i)), shape: [1, 1, IMG, IMG] }), { 'Content-Type': 'application/json' }, noAgent));
    // Let the requests reach the server, then ask it to stop.
    await new Promise((r) => setTimeout(r, 30));
    child.kill('SIGTERM');
    const replies = await Promise.allSettled(inFlight);
    // Every request the server accepted is answered in full; connections still waiting in the
    // kernel's backlog when the listening socket closed are refused (reset), never half-answered.
    let answered = 0;
    replies.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        assert.equal(r.value.status, 200);
        assertLogits(r.value.body.logits, [i], direct, `in-flight request ${i}`);
        answered++;
      } else {
        assert.match(String(r.reason), /ECONNRESET|ECONNREFUSED/);
      }
    });
    assert.ok(answered > 0, `some in-flight requests answered (${stderr})`);
    assert.equal(await exited, 0, stderr);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
