/**
 * A real redis-server (Debian package redis-server) on a free loopback port for the job-queue
 * tests, no mock; plus CLI child processes whose stderr can be waited on.
 */
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ROOT } from './cli.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `rp-onnx ARGS` as a child process (stdout and stderr piped). */
export function cli(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'main.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Collects a child's stderr; resolves `waitFor(re)` when a line matches. */
export function watch(p: ChildProcess) {
  let text = '';
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  p.stderr!.setEncoding('utf8');
  p.stderr!.on('data', (d: string) => {
    text += d;
    for (const w of [...waiters]) {
      const m = text.match(w.re);
      if (m) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
    }
  });
  return {
    get text() { return text; },
    waitFor: (re: RegExp) => new Promise<RegExpMatchArray>((resolve) => {
      const m = text.match(re);
      if (m) resolve(m);
      else waiters.push({ re, resolve });
    }),
  };
}

export const exited = (p: ChildProcess) => new Promise<number | null>((r) => (p.exitCode !== null ? r(p.exitCode) : p.once('exit', (code) => r(code))));

/**
 * Starts redis-server on a free port in a fresh folder; returns its URL, the folder, and a list
 * of children that `t.after` kills (push your own CLI children onto it).
 */
export async function startRedis(t: TestContext, prefix = 'rp-queue-'): Promise<{ url: string; dir: string; children: ChildProcess[] }> {
  const redisServer = ['redis-server', '/usr/bin/redis-server'].find((c) => spawnSync('which', [c]).status === 0);
  assert.ok(redisServer, 'redis-server is needed for the job-queue test: install it with `apt-get install -y redis-server` (Debian package redis-server)');
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const children: ChildProcess[] = [];
  t.after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const port = await freePort();
  const redis = spawn(redisServer, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  children.push(redis);
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => 100, maxRetriesPerRequest: null });
  client.on('error', () => {});
  for (let i = 0; ; i++) {
    try {
      await client.connect().catch(() => {});
      if ((await client.ping()) === 'PONG') break;
    } catch {
      // not up yet
    }
    if (i > 100) assert.fail('redis-server did not come up');
    await new Promise((r) => setTimeout(r, 100));
  }
  client.disconnect();
  return { url: `redis://127.0.0.1:${port}`, dir, children };
}
