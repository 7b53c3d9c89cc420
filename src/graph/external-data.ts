/**
 * ONNX external data: tensors whose bytes live in a side file, located relative to the model's
 * folder by the tensor's external_data entries (location, offset, length). Locations that are
 * absolute or escape the model's folder are refused, by their text and, when reading, by their
 * real path (a symbolic link inside the folder may point anywhere): a model file must not make
 * us read or write elsewhere on disk. Only regular files are read.
 */
import { closeSync, mkdirSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, normalize, relative, resolve, sep } from 'node:path';
import { onnx, type ModelProto, type TensorProto } from './onnx.js';
import { writeFileAtomic } from '../fs-atomic.js';
import { RpOnnxError } from '../errors.js';
import { printable } from '../printable.js';
import { openRegularFile, readAt, type OpenedFile } from '../fs-read.js';
import { checkTensorData } from './tensor-data-check.js';

const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;

/** Tensors start at multiples of this in a data file, so runtimes can map them. */
export const EXTERNAL_ALIGNMENT = 4096;

export interface ExternalDataOptions {
  /** Initializers with at least this many bytes of raw data go external (default 1024). */
  threshold?: number;
  /** File name of the data file beside the model (default `<model file>.data`). */
  location?: string;
}

/** What a save with external data wrote. */
export interface ExternalDataResult {
  /** Absolute path of the data file, or null when no tensor reached the threshold. */
  dataFile: string | null;
  location: string;
  tensors: number;
  bytes: number;
}

/** Validates a location and returns its absolute path inside `baseDir`. */
export function resolveExternalLocation(location: string, baseDir: string, modelPath: string): string {
  if (!location) throw new RpOnnxError(`${modelPath}: a tensor has external data with no location`);
  if (isAbsolute(location) || /^[a-zA-Z]:[\\/]/.test(location) || location.startsWith('\\')) {
    throw new RpOnnxError(`${modelPath}: external data location '${printable(location)}' is absolute; only paths inside the model's folder are allowed`);
  }
  const full = resolve(baseDir, normalize(location));
  const rel = relative(resolve(baseDir), full);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || rel.split(sep).includes('..') || location.split(/[\\/]/).includes('..')) {
    throw new RpOnnxError(`${modelPath}: external data location '${printable(location)}' leaves the model's folder ('..' is refused); only paths inside it are allowed`);
  }
  return full;
}

function entries(t: TensorProto): Map<string, string> {
  return new Map(t.externalData.map((e) => [e.key ?? '', e.value ?? '']));
}

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === EXTERNAL;
}

type GraphLike = onnx.IGraphProto | null | undefined;

function visitGraphs(proto: ModelProto, visit: (g: onnx.IGraphProto) => void): void {
  const walk = (g: GraphLike) => {
    if (!g) return;
    visit(g);
    for (const n of g.node ?? []) for (const a of n.attribute ?? []) walkAttribute(a);
  };
  const walkAttribute = (a: onnx.IAttributeProto) => {
    walk(a.g);
    for (const sg of a.graphs ?? []) walk(sg);
  };
  walk(proto.graph);
  for (const ti of proto.trainingInfo ?? []) {
    walk(ti.initialization);
    walk(ti.algorithm);
  }
  // Function bodies are node lists, not graphs: visit them as a graph of nodes only.
  for (const f of proto.functions ?? []) walk({ node: f.node });
}

/** Every tensor of a model: initializers, sparse parts, node attributes, in all (sub)graphs and functions. */
export function allTensors(proto: ModelProto): TensorProto[] {
  const out: TensorProto[] = [];
  const sparse = (s: onnx.ISparseTensorProto | null | undefined) => {
    if (s?.values) out.push(s.values as TensorProto);
    if (s?.indices) out.push(s.indices as TensorProto);
  };
  visitGraphs(proto, (g) => {
    for (const t of g.initializer ?? []) out.push(t as TensorProto);
    for (const s of g.sparseInitializer ?? []) sparse(s);
    for (const n of g.node ?? []) {
      for (const a of n.attribute ?? []) {
        if (a.t) out.push(a.t as TensorProto);
        for (const t of a.tensors ?? []) out.push(t as TensorProto);
        sparse(a.sparseTensor);
        for (const s of a.sparseTensors ?? []) sparse(s);
      }
    }
  });
  return out;
}

/** Dense initializers of every graph: the tensors a save may move to the data file. */
function initializerTensors(proto: ModelProto): TensorProto[] {
  const out: TensorProto[] = [];
  visitGraphs(proto, (g) => {
    for (const t of g.initializer ?? []) out.push(t as TensorProto);
  });
  return out;
}

/** The data files a model's external tensors point at (absolute, validated). */
export function externalDataFiles(proto: ModelProto, modelPath: string): string[] {
  const baseDir = dirname(resolve(modelPath));
  const files = new Set<string>();
  for (const t of allTensors(proto)) {
    if (isExternal(t)) files.add(resolveExternalLocation(entries(t).get('location') ?? '', baseDir, modelPath));
  }
  return [...files];
}

function parseExtent(value: string | undefined, key: string, t: TensorProto, modelPath: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim())) {
    throw new RpOnnxError(`${modelPath}: external data of tensor '${printable(t.name)}' has ${key} '${value}', not a non-negative integer`);
  }
  return Number(value.trim());
}

/** True when `path` is `folder` itself or lies below it (both already real, absolute paths). */
function isInside(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

/**
 * Opens an external data file for reading. The location text was checked by
 * resolveExternalLocation; here the real path (symbolic links resolved) must lie inside the
 * model folder's real path too, and the file must be a regular file (a FIFO would block, a
 * device read without end).
 */
function openDataFile(file: string, realBase: string, location: string, t: TensorProto, modelPath: string): OpenedFile {
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    throw new RpOnnxError(`${modelPath}: external data file '${printable(location)}' for tensor '${printable(t.name)}' not found beside the model (${printable(file)})`);
  }
  if (!isInside(realBase, real)) {
    throw new RpOnnxError(`${modelPath}: external data location '${printable(location)}' of tensor '${printable(t.name)}' leads outside the model's folder through a symbolic link; only files inside it are allowed`);
  }
  try {
    return openRegularFile(real, 'a data file');
  } catch (e) {
    const why = e instanceof RpOnnxError ? e.message.replace(real, `'${printable(location)}'`) : String(e);
    throw new RpOnnxError(`${modelPath}: external data of tensor '${printable(t.name)}': ${why}`);
  }
}

/** Reads every external tensor's bytes into raw_data and marks it inline. */
export function loadExternalData(proto: ModelProto, modelPath: string): void {
  const baseDir = dirname(resolve(modelPath));
  const external = allTensors(proto).filter(isExternal);
  if (external.length === 0) return;
  let realBase: string;
  try {
    realBase = realpathSync(baseDir);
  } catch {
    throw new RpOnnxError(`${modelPath}: the model's folder ${baseDir} cannot be resolved to read its external data`);
  }
  const files = new Map<string, OpenedFile>();
  try {
    for (const t of external) {
      const e = entries(t);
      const location = e.get('location') ?? '';
      const file = resolveExternalLocation(location, baseDir, modelPath);
      let opened = files.get(file);
      if (opened === undefined) {
        opened = openDataFile(file, realBase, location, t, modelPath);
        files.set(file, opened);
      }
      const { fd, size } = opened;
      const offset = parseExtent(e.get('offset'), 'offset', t, modelPath) ?? 0;
      const length = parseExtent(e.get('length'), 'length', t, modelPath) ?? Math.max(0, size - offset);
      if (offset + length > size) {
        throw new RpOnnxError(`${modelPath}: external data of tensor '${printable(t.name)}' (offset ${offset}, length ${length}) lies outside '${printable(location)}' (${size} bytes)`);
      }
      const buf = readAt(fd, length, offset);
      if (buf.length !== length) {
        throw new RpOnnxError(`${modelPath}: external data file '${printable(location)}' of tensor '${printable(t.name)}' shrank while it was read`);
      }
      t.rawData = buf;
      // Inline now: the fields go back to absent, as in a model saved inline.
      t.externalData = [];
      Reflect.deleteProperty(t, 'dataLocation');
      // Without a length the tensor reads to the end of the file: that, too, must fit its dims.
      checkTensorData(t, modelPath);
    }
  } finally {
    for (const f of files.values()) closeSync(f.fd);
  }
}

/**
 * Writes `proto` to `path` with initializers of at least `threshold` bytes moved to one data
 * file beside it, each aligned to EXTERNAL_ALIGNMENT. Does not modify `proto`, whose tensors
 * must all be inline (load external data first).
 */
export function saveWithExternalData(proto: ModelProto, path: string, opts: ExternalDataOptions = {}): ExternalDataResult {
  const threshold = opts.threshold ?? 1024;
  if (!Number.isFinite(threshold) || threshold < 0) throw new RpOnnxError(`external data threshold must be a non-negative number of bytes, got ${threshold}`);
  const location = opts.location ?? `${basename(path)}.data`;
  const dataFile = resolveExternalLocation(location, dirname(resolve(path)), path);
  if (resolve(dataFile) === resolve(path)) throw new RpOnnxError(`external data location '${printable(location)}' is the model file itself: choose another --location`);
  const copy = onnx.ModelProto.decode(onnx.ModelProto.encode(proto).finish());
  const chunks: Uint8Array[] = [];
  let offset = 0;
  let tensors = 0;
  for (const t of initializerTensors(copy)) {
    if (isExternal(t)) throw new RpOnnxError(`${path}: tensor '${printable(t.name)}' still refers to external data; load the model with its data before saving`);
    const raw = t.rawData;
    if (!raw || raw.length === 0 || raw.length < threshold) continue;
    const pad = (EXTERNAL_ALIGNMENT - (offset % EXTERNAL_ALIGNMENT)) % EXTERNAL_ALIGNMENT;
    if (pad) chunks.push(new Uint8Array(pad));
    offset += pad;
    chunks.push(raw);
    t.externalData = [
      onnx.StringStringEntryProto.create({ key: 'location', value: location }),
      onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
      onnx.StringStringEntryProto.create({ key: 'length', value: String(raw.length) }),
    ];
    t.dataLocation = EXTERNAL;
    Reflect.deleteProperty(t, 'rawData');
    offset += raw.length;
    tensors++;
  }
  const bytes = chunks.reduce((a, c) => a + c.length, 0);
  if (tensors > 0) {
    mkdirSync(dirname(dataFile), { recursive: true });
    writeFileAtomic(dataFile, chunks);
  }
  writeFileAtomic(path, onnx.ModelProto.encode(copy).finish());
  return { dataFile: tensors > 0 ? dataFile : null, location, tensors, bytes };
}
