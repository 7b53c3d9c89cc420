/**
 * Reading untrusted input files (models, their external data, datasets). Only regular files are
 * read: a FIFO would block the process forever on open or read, a device (/dev/zero) would read
 * without end. Files are opened non-blocking and checked with fstat on the open descriptor, so
 * what is checked is what is read. Every failure is one RpOnnxError line naming the file.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { RpOnnxError } from './errors.js';

/** What a non-regular file is, in words, for error messages. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

export interface OpenedFile {
  fd: number;
  size: number;
}

/**
 * Opens `path` for reading when it is a regular file (symbolic links are followed; callers that
 * must stay inside a folder resolve real paths first). `what` names the expected content, e.g.
 * 'an ONNX model file', for the message when it is something else.
 */
export function openRegularFile(path: string, what: string): OpenedFile {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer forever.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') throw new RpOnnxError(`${path}: no such file`, { cause: e });
    if (err.code === 'EACCES' || err.code === 'EPERM') throw new RpOnnxError(`cannot read ${path}: permission denied`, { cause: e });
    if (err.code === 'ELOOP') throw new RpOnnxError(`cannot read ${path}: too many levels of symbolic links`, { cause: e });
    throw new RpOnnxError(`cannot read ${path}: ${err.code ?? err.message}`, { cause: e });
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new RpOnnxError(`${path} is ${kindOf(st)}, not ${what}`);
  }
  return { fd, size: st.size };
}

/** Reads `length` bytes at `position` of an open file; fewer when the file shrank meanwhile. */
export function readAt(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}

/**
 * The whole of a regular file. Files over `maxBytes` (default: what one Buffer can hold) are
 * refused before anything is allocated; `tooLarge` words that refusal.
 */
export function readRegularFile(path: string, what: string, opts: { maxBytes?: number; tooLarge?: string } = {}): Buffer {
  const { fd, size } = openRegularFile(path, what);
  try {
    const max = opts.maxBytes ?? 2 ** 31 - 1;
    if (size > max) throw new RpOnnxError(opts.tooLarge ?? `${path} is ${size} bytes, more than the ${max} bytes allowed for ${what}`);
    return readAt(fd, size, 0);
  } finally {
    closeSync(fd);
  }
}
