/**
 * Atomic file output: write to a temporary name in the destination folder, fsync, rename.
 * A crash or Ctrl-C leaves either the old file or the complete new one, never a partial file.
 */
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { RpOnnxError } from './errors.js';

export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Writes all chunks to `target` atomically. */
export function writeFileAtomic(target: string, data: Uint8Array | string | readonly (Uint8Array | string)[]): void {
  const chunks = Array.isArray(data) ? (data as (Uint8Array | string)[]) : [data as Uint8Array | string];
  const tmp = tempPathFor(target);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w');
    for (const c of chunks) {
      const buf = typeof c === 'string' ? Buffer.from(c) : c;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, target);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    throw new RpOnnxError(`cannot write ${target}: ${err.code ?? err.message}`, { exitCode: 1, cause: e });
  }
}

/** Refuses to overwrite an existing file unless `force`, and never one of the given inputs. */
export function checkOutputPath(output: string, opts: { force?: boolean; inputs?: string[] } = {}): void {
  for (const i of opts.inputs ?? []) {
    if (resolve(i) === resolve(output)) {
      throw new RpOnnxError(`refusing to overwrite the input ${i}: choose another output with -o`);
    }
  }
  if (existsSync(output) && !opts.force) {
    throw new RpOnnxError(`${output} already exists: pass --force to overwrite it`);
  }
}
