/** `redis://[user:password@]host:port[/db]` -> connection options (no network here). */
import { RpOnnxError } from '../errors.js';

export interface RedisConnection {
  host: string;
  port: number;
  db?: number;
  username?: string;
  password?: string;
}

export function parseRedisUrl(url: string, flag = '--queue'): RedisConnection {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RpOnnxError(`${flag} ${url}: not a URL; use redis://HOST:PORT`);
  }
  if (u.protocol !== 'redis:') throw new RpOnnxError(`${flag} ${url}: only redis://HOST:PORT queues are supported`);
  const port = u.port === '' ? 6379 : Number(u.port);
  if (!u.hostname) throw new RpOnnxError(`${flag} ${url}: no host; use redis://HOST:PORT`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
  if (db !== undefined && !(Number.isInteger(db) && db >= 0)) throw new RpOnnxError(`${flag} ${url}: the database after the slash must be a number`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''), port,
    ...(db !== undefined ? { db } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}
