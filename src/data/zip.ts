/**
 * A minimal ZIP reader, enough for NumPy .npz files: the central directory (found through the
 * end-of-central-directory record, with ZIP64 records and extra fields, which numpy.savez writes),
 * entries stored (method 0) or deflated (method 8, via zlib's raw inflate), CRC-32 checked.
 * Sizes are taken from the central directory, because writers that stream (numpy included) put
 * placeholders in the local headers.
 */
import * as zlib from 'node:zlib';
import { RpOnnxError } from '../errors.js';

export interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc: number;
  readonly localHeaderOffset: number;
  readonly flags: number;
}

/** Largest entry read: what one Buffer can hold. */
const MAX_ENTRY_BYTES = 2 ** 31 - 1;

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

export class ZipArchive {
  private readonly view: DataView;
  readonly entries = new Map<string, ZipEntry>();

  constructor(private readonly bytes: Uint8Array, readonly path: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.readCentralDirectory();
  }

  private fail(why: string): never {
    throw new RpOnnxError(`${this.path} is not a valid zip/npz file (${why}); re-create it with numpy.savez`);
  }
  private u16(at: number): number {
    if (at + 2 > this.bytes.length) this.fail('truncated');
    return this.view.getUint16(at, true);
  }
  private u32(at: number): number {
    if (at + 4 > this.bytes.length) this.fail('truncated');
    return this.view.getUint32(at, true);
  }
  private u64(at: number): number {
    if (at + 8 > this.bytes.length) this.fail('truncated');
    const v = this.view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail('size too large');
    return Number(v);
  }

  private readCentralDirectory(): void {
    const b = this.bytes;
    let eocd = -1;
    // The EOCD record is 22 bytes plus a comment of at most 65535 bytes, at the very end.
    for (let at = b.length - 22; at >= Math.max(0, b.length - 22 - 0xffff); at--) {
      if (this.view.getUint32(at, true) === SIG_EOCD) { eocd = at; break; }
    }
    if (eocd < 0) this.fail('no end-of-central-directory record; the file is truncated or not a zip');
    let total = this.u16(eocd + 10);
    let cdSize = this.u32(eocd + 12);
    let cdOffset = this.u32(eocd + 16);
    if (total === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || this.u32(loc) !== SIG_ZIP64_LOCATOR) this.fail('ZIP64 locator missing');
      const z = this.u64(loc + 8);
      if (this.u32(z) !== SIG_ZIP64_EOCD) this.fail('ZIP64 end record missing');
      total = this.u64(z + 32);
      cdSize = this.u64(z + 40);
      cdOffset = this.u64(z + 48);
    }
    if (cdOffset + cdSize > b.length) this.fail('central directory lies past the end; the file is truncated');
    let at = cdOffset;
    for (let i = 0; i < total; i++) {
      if (this.u32(at) !== SIG_CENTRAL) this.fail(`bad central directory entry ${i}`);
      const flags = this.u16(at + 8);
      const method = this.u16(at + 10);
      const crc = this.u32(at + 16);
      let compressedSize = this.u32(at + 20);
      let size = this.u32(at + 24);
      const nameLen = this.u16(at + 28);
      const extraLen = this.u16(at + 30);
      const commentLen = this.u16(at + 32);
      let localHeaderOffset = this.u32(at + 42);
      if (at + 46 + nameLen > b.length) this.fail('truncated');
      const name = new TextDecoder().decode(b.subarray(at + 46, at + 46 + nameLen));
      // ZIP64 extended information: 64-bit values for exactly the fields saturated above, in order.
      for (let e = at + 46 + nameLen; e + 4 <= at + 46 + nameLen + extraLen;) {
        const id = this.u16(e);
        const len = this.u16(e + 2);
        if (id === 0x0001) {
          let p = e + 4;
          if (size === 0xffffffff) { size = this.u64(p); p += 8; }
          if (compressedSize === 0xffffffff) { compressedSize = this.u64(p); p += 8; }
          if (localHeaderOffset === 0xffffffff) { localHeaderOffset = this.u64(p); p += 8; }
        }
        e += 4 + len;
      }
      this.entries.set(name, { name, method, compressedSize, size, crc, localHeaderOffset, flags });
      at += 46 + nameLen + extraLen + commentLen;
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  /** The uncompressed bytes of entry `name`. */
  read(name: string): Uint8Array {
    const e = this.entries.get(name);
    if (!e) throw new RpOnnxError(`${this.path} has no entry '${name}' (it has: ${this.names().join(', ')})`);
    if (e.flags & 1) this.fail(`entry '${name}' is encrypted`);
    const h = e.localHeaderOffset;
    if (this.u32(h) !== SIG_LOCAL) this.fail(`bad local header for '${name}'`);
    const start = h + 30 + this.u16(h + 26) + this.u16(h + 28);
    if (start + e.compressedSize > this.bytes.length) {
      throw new RpOnnxError(`${this.path} is truncated: entry '${name}' runs past the end of the file; re-create it`);
    }
    if (e.size > MAX_ENTRY_BYTES) this.fail(`entry '${name}' declares ${e.size} bytes, more than can be loaded (${MAX_ENTRY_BYTES})`);
    const raw = this.bytes.subarray(start, start + e.compressedSize);
    let out: Uint8Array;
    if (e.method === 0) out = raw;
    else if (e.method === 8) {
      try {
        // Bounded by the size the directory declares (+1 to tell a longer stream apart).
        out = zlib.inflateRawSync(raw, { maxOutputLength: e.size + 1 });
      } catch (err) {
        if (err instanceof RangeError) this.fail(`entry '${name}' inflates to more than the ${e.size} bytes the directory declares`);
        throw new RpOnnxError(`${this.path}: entry '${name}' does not inflate (${(err as Error).message}); the file is corrupt`);
      }
    } else this.fail(`entry '${name}' uses compression method ${e.method}; only stored (0) and deflate (8) are supported`);
    if (out.length !== e.size) this.fail(`entry '${name}' has ${out.length} bytes, the directory says ${e.size}`);
    // zlib.crc32 exists from Node 20.15; older Nodes skip the check.
    const crc32 = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
    if (crc32 && crc32(out) >>> 0 !== e.crc) {
      throw new RpOnnxError(`${this.path}: entry '${name}' fails its CRC-32 check; the file is corrupt`);
    }
    return out;
  }
}
