/**
 * ONNX external data: tensors whose bytes live in a side file, located relative to the model's
 * folder by the tensor's external_data entries (location, offset, length). Locations that are
 * absolute or escape the model's folder are refused: a model file must not make us read or
 * write elsewhere on disk.
 */
import { closeSync, openSync, readSync, fstatSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { onnx, type ModelProto, type TensorProto } from './onnx.js';
import { writeFileAtomic } from '../fs-atomic.js';
import { RpOnnxError } from '../errors.js';

const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;

export interface ExternalDataOptions {
  /** Tensors with at least this many bytes go external (default 1024). */
  threshold?: number;
  /** File name of the data file beside the model (default `<model file>.data`). */
  location?: string;
}

/** Validates a location and returns its absolute path inside `baseDir`. */
export function resolveExternalLocation(location: string, baseDir: string, modelPath: string): string {
  if (!location) throw new RpOnnxError(`${modelPath}: a tensor has external data with no location`);
  if (isAbsolute(location) || /^[a-zA-Z]:[\\/]/.test(location) || location.startsWith('\\')) {
    throw new RpOnnxError(`${modelPath}: external data location '${location}' is absolute; only paths inside the model's folder are allowed`);
  }
  const full = resolve(baseDir, normalize(location));
  const rel = relative(resolve(baseDir), full);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || rel.split(sep).includes('..')) {
    throw new RpOnnxError(`${modelPath}: external data location '${location}' escapes the model's folder`);
  }
  return full;
}

function entries(t: TensorProto): Map<string, string> {
  return new Map(t.externalData.map((e) => [e.key ?? '', e.value ?? '']));
}

function allTensors(proto: ModelProto): TensorProto[] {
  const out: TensorProto[] = [];
  const visitGraph = (g: onnx.IGraphProto | null | undefined) => {
    if (!g) return;
    for (const t of g.initializer ?? []) out.push(t as TensorProto);
    for (const s of g.sparseInitializer ?? []) {
      if (s.values) out.push(s.values as TensorProto);
      if (s.indices) out.push(s.indices as TensorProto);
    }
    for (const n of g.node ?? []) {
      for (const a of n.attribute ?? []) {
        if (a.t) out.push(a.t as TensorProto);
        for (const t of a.tensors ?? []) out.push(t as TensorProto);
        visitGraph(a.g);
        for (const sg of a.graphs ?? []) visitGraph(sg);
      }
    }
  };
  visitGraph(proto.graph);
  for (const ti of proto.trainingInfo ?? []) {
    visitGraph(ti.initialization);
    visitGraph(ti.algorithm);
  }
  return out;
}

/** Reads every external tensor's bytes into raw_data and marks it inline. */
export function loadExternalData(proto: ModelProto, modelPath: string): void {
  const baseDir = dirname(resolve(modelPath));
  const fds = new Map<string, number>();
  try {
    for (const t of allTensors(proto)) {
      if (t.dataLocation !== EXTERNAL) continue;
      const e = entries(t);
      const file = resolveExternalLocation(e.get('location') ?? '', baseDir, modelPath);
      let fd = fds.get(file);
      if (fd === undefined) {
        try {
          fd = openSync(file, 'r');
        } catch {
          throw new RpOnnxError(`${modelPath}: external data file '${e.get('location')}' for tensor '${t.name}' not found`);
        }
        fds.set(file, fd);
      }
      const size = fstatSync(fd).size;
      const offset = Number(e.get('offset') ?? '0');
      const length = e.has('length') ? Number(e.get('length')) : size - offset;
      if (!Number.isFinite(offset) || !Number.isFinite(length) || offset < 0 || length < 0 || offset + length > size) {
        throw new RpOnnxError(`${modelPath}: external data of tensor '${t.name}' (offset ${offset}, length ${length}) lies outside '${e.get('location')}' (${size} bytes)`);
      }
      const buf = Buffer.alloc(length);
      let got = 0;
      while (got < length) {
        const n = readSync(fd, buf, got, length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      t.rawData = buf;
      t.externalData = [];
      t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
    }
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
}

/**
 * Writes `proto` to `path` with initializers of at least `threshold` bytes moved to one data
 * file beside it (aligned to 4 KiB so the runtime can map it). Does not modify `proto`.
 */
export function saveWithExternalData(proto: ModelProto, path: string, opts: ExternalDataOptions = {}): void {
  const threshold = opts.threshold ?? 1024;
  const location = opts.location ?? `${basename(path)}.data`;
  resolveExternalLocation(location, dirname(resolve(path)), path);
  const copy = onnx.ModelProto.decode(onnx.ModelProto.encode(proto).finish());
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of allTensors(copy)) {
    const raw = t.rawData;
    if (t.dataLocation === EXTERNAL || !raw || raw.length < threshold) continue;
    const pad = (4096 - (offset % 4096)) % 4096;
    if (pad) chunks.push(new Uint8Array(pad));
    offset += pad;
    chunks.push(raw);
    t.externalData = [
      onnx.StringStringEntryProto.create({ key: 'location', value: location }),
      onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
      onnx.StringStringEntryProto.create({ key: 'length', value: String(raw.length) }),
    ];
    t.dataLocation = EXTERNAL;
    t.rawData = new Uint8Array(0);
    offset += raw.length;
  }
  writeFileAtomic(join(dirname(resolve(path)), location), chunks);
  writeFileAtomic(path, onnx.ModelProto.encode(copy).finish());
}
