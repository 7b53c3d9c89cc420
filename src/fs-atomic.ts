/**
 * Atomic file output: write to a temporary name in the destination folder, fsync, rename.
 * A crash or Ctrl-C leaves either the old file or the complete new one, never a partial file.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync, type Stats } from 'node:fs';
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

export interface OutputCheck {
  /** Replace an existing output file. */
  force?: boolean;
  /** Files the command reads: never an output, --force or not. */
  inputs?: readonly string[];
  /** The flag that named the output, for messages (e.g. '-o', '--report'). */
  flag?: string;
}

/** The file's status, or undefined when nothing is there (also when a path component is a file). */
function statOf(p: string): Stats | undefined {
  try {
    return statSync(p, { throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** The same file: by path, or by device and inode where both exist (symlinks, hard links). */
/** Whether two paths name one file: the same path, or (through links or hard links) the same inode. */
export function sameFile(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  const sa = statOf(a), sb = statOf(b);
  return sa !== undefined && sb !== undefined && sa.dev === sb.dev && sa.ino === sb.ino;
}

/** Creates and removes a temporary file in `dir`: the only reliable writability test (root, read-only mounts, ACLs). */
function probeWritable(dir: string, shown: string, what: string): void {
  const probe = tempPathFor(join(dir, 'probe'));
  try {
    closeSync(openSync(probe, 'wx'));
    rmSync(probe, { force: true });
  } catch (e) {
    throw new RpOnnxError(`${what}: cannot write in ${shown} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * Validates an output file before any work, so a long run never fails at its end: its folder
 * exists, is a folder and is writable; the target is not a folder nor a special file; it is none
 * of the inputs; and it does not exist unless `force`. Call it first, before loading data.
 */
export function checkOutputPath(output: string, opts: OutputCheck = {}): void {
  const what = opts.flag ? `${opts.flag} ${output}` : output;
  if (output === '') throw new RpOnnxError(`${opts.flag ?? 'the output'}: empty file name`);
  for (const i of opts.inputs ?? []) {
    if (sameFile(i, output)) throw new RpOnnxError(`refusing to overwrite the input ${i}: choose another output${opts.flag ? ` with ${opts.flag}` : ''}`);
  }
  const parent = dirname(resolve(output));
  const shownParent = dirname(output);
  const folder = statOf(parent);
  if (!folder) throw new RpOnnxError(`${what}: the folder ${shownParent} does not exist (create it first)`);
  if (!folder.isDirectory()) throw new RpOnnxError(`${what}: ${shownParent} is not a folder`);
  const target = statOf(output);
  if (target?.isDirectory()) throw new RpOnnxError(`${what} is a folder: give a file name${opts.flag ? ` to ${opts.flag}` : ''}`);
  if (target && !target.isFile()) throw new RpOnnxError(`${what} is not a regular file; refusing to replace it`);
  if (target && !opts.force) throw new RpOnnxError(`${output} already exists: pass --force to overwrite it`);
  probeWritable(parent, shownParent, what);
}

/**
 * Validates an output folder and the files a command will write into it, before any work: the
 * folder is a folder (or can be created: its nearest existing ancestor is a writable folder),
 * and none of `files` exists there unless `force`. The folder itself is created by the caller
 * when it writes (mkdirSync recursive).
 */
export function checkOutputDir(dir: string, files: readonly string[], opts: Omit<OutputCheck, 'inputs'> & { inputs?: readonly string[] } = {}): void {
  const what = opts.flag ? `${opts.flag} ${dir}` : dir;
  const st = statOf(dir);
  if (st && !st.isDirectory()) throw new RpOnnxError(`${what} is not a folder`);
  if (st) {
    const existing = files.filter((f) => statOf(join(dir, f)) !== undefined);
    if (existing.length > 0 && !opts.force) {
      throw new RpOnnxError(`${what} already holds ${existing.join(', ')}: pass --force to overwrite, or choose another ${opts.flag ?? 'folder'}`);
    }
    for (const f of files) checkOutputPath(join(dir, f), { force: true, inputs: opts.inputs });
    return;
  }
  let ancestor = resolve(dir);
  while (!statOf(ancestor)) ancestor = dirname(ancestor);
  if (!statOf(ancestor)!.isDirectory()) throw new RpOnnxError(`${what}: ${ancestor} is not a folder`);
  probeWritable(ancestor, ancestor, what);
}
