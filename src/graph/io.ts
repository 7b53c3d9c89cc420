/**
 * ONNX model files: bytes <-> ModelProto <-> Model, with external data. Every failure is one
 * RpOnnxError line naming the file.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { onnx, type ModelProto } from './onnx.js';
import { Model } from './ir.js';
import {
  allTensors, externalDataFiles, isExternal, loadExternalData, resolveExternalLocation, saveWithExternalData,
  type ExternalDataOptions, type ExternalDataResult,
} from './external-data.js';
import { checkOutputPath, sameFile, writeFileAtomic } from '../fs-atomic.js';
import { readRegularFile } from '../fs-read.js';
import { RpOnnxError } from '../errors.js';
import { toNumber } from './tensor.js';
import { checkModelTensorData } from './tensor-data-check.js';

/** Highest IR version this build's schema describes. */
export const MAX_IR_VERSION = 14;

/** protobuf cannot encode (and runtimes refuse to parse) messages of 2 GiB or more. */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;
/** Room left for the graph itself when deciding whether tensors fit inline. */
const GRAPH_HEADROOM = 64 * 1024 * 1024;

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** Decodes bytes as a ModelProto; `source` names the file in error messages. */
export function decodeModel(bytes: Uint8Array, source = 'model'): ModelProto {
  if (bytes.length === 0) throw new RpOnnxError(`${source} is empty: not an ONNX model`);
  let proto: ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new RpOnnxError(`${source} is not a valid ONNX model (truncated or corrupt protobuf: ${oneLine(why)})`, { cause: e });
  }
  const ir = toNumber(proto.irVersion);
  // Any protobuf decodes as some ModelProto; a model has an IR version, a graph and (IR >= 3) opsets.
  if (ir <= 0 || !proto.graph || (ir >= 3 && proto.opsetImport.length === 0)) {
    throw new RpOnnxError(`${source} is not an ONNX model (no ir_version, graph or opset_import: another kind of protobuf or a corrupt file)`);
  }
  if (ir > MAX_IR_VERSION) {
    throw new RpOnnxError(`${source} uses ONNX IR version ${ir}; rp-onnx reads up to ${MAX_IR_VERSION}: re-export the model with an older ONNX or upgrade rp-onnx`);
  }
  checkModelTensorData(proto, source);
  return proto;
}

export function encodeModel(proto: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(proto).finish();
}

export interface LoadOptions {
  /** Read external tensor data into raw_data (default true). False keeps the references. */
  loadExternal?: boolean;
}

function readBytes(path: string): Uint8Array {
  return readRegularFile(path, 'an ONNX model file', {
    maxBytes: PROTOBUF_LIMIT,
    tooLarge: `${path} is larger than 2 GiB: not a valid ONNX protobuf (weights that large belong in external data)`,
  });
}

/** Reads a model file's ModelProto, resolving external data relative to the file's folder. */
export function readModelProto(path: string, opts: LoadOptions = {}): ModelProto {
  const proto = decodeModel(readBytes(path), path);
  if (opts.loadExternal ?? true) loadExternalData(proto, path);
  return proto;
}

export function loadModel(path: string): Model {
  return Model.fromProto(readModelProto(path));
}

export interface SaveOptions extends ExternalDataOptions {
  /** Move initializers to an external data file (see ExternalDataOptions). */
  externalData?: boolean;
}

export interface SaveResult {
  path: string;
  /** Bytes of the .onnx file. */
  modelBytes: number;
  /** What went to the data file; null when the model was written inline. */
  externalData: ExternalDataResult | null;
}

/** Bytes of tensor data a model holds, as they count toward the protobuf size limit. */
export function tensorDataBytes(proto: ModelProto): number {
  let total = 0;
  for (const t of allTensors(proto)) {
    total += t.rawData?.length ?? 0;
    total += 4 * ((t.floatData?.length ?? 0) + (t.int32Data?.length ?? 0));
    total += 8 * ((t.int64Data?.length ?? 0) + (t.doubleData?.length ?? 0) + (t.uint64Data?.length ?? 0));
    for (const s of t.stringData ?? []) total += s.length;
  }
  return total;
}

/** True when this many bytes of tensors cannot be written inline in one protobuf file. */
export function needsExternalData(tensorBytes: number): boolean {
  return tensorBytes > PROTOBUF_LIMIT - GRAPH_HEADROOM;
}

/**
 * Writes a model atomically. Models whose tensors exceed protobuf's 2 GiB limit are written
 * with external data even when `externalData` is not asked for.
 */
export function saveModelProto(proto: ModelProto, path: string, opts: SaveOptions = {}): SaveResult {
  const unresolved = allTensors(proto).find(isExternal);
  if (unresolved) {
    throw new RpOnnxError(`cannot write ${path}: tensor '${unresolved.name}' still refers to external data that was not loaded`);
  }
  if (opts.externalData || needsExternalData(tensorDataBytes(proto))) {
    const ext = saveWithExternalData(proto, path, opts);
    return { path, modelBytes: statSync(path).size, externalData: ext };
  }
  const bytes = encodeModel(proto);
  writeFileAtomic(path, bytes);
  return { path, modelBytes: bytes.length, externalData: null };
}

export function saveModel(model: Model, path: string, opts: SaveOptions = {}): SaveResult {
  return saveModelProto(model.toProto(), path, opts);
}

export interface ConvertOptions extends SaveOptions {
  /** Overwrite an existing output (and data file); the input is never overwritten. */
  force?: boolean;
}

export interface ConvertResult extends SaveResult {
  input: string;
  /** External data files the input read from. */
  inputDataFiles: string[];
}

/**
 * Re-saves a model losslessly: inline, or with big initializers in an external data file.
 * Refuses to overwrite the input model, its data files, or an existing output without `force`.
 */
export function convertModelFile(input: string, output: string, opts: ConvertOptions = {}): ConvertResult {
  checkOutputPath(output, { force: opts.force, inputs: [input] });
  const proto = readModelProto(input, { loadExternal: false });
  const inputDataFiles = externalDataFiles(proto, input);
  // By file identity, not path text: a link inside the model folder can name an input's data file.
  if (inputDataFiles.some((f) => sameFile(f, output))) {
    throw new RpOnnxError(`refusing to overwrite ${output}: it is an external data file of ${input}`);
  }
  if (opts.externalData) {
    const location = opts.location ?? `${basename(output)}.data`;
    const dataFile = resolveExternalLocation(location, dirname(resolve(output)), output);
    if (sameFile(dataFile, input) || inputDataFiles.some((f) => sameFile(f, dataFile))) {
      throw new RpOnnxError(`refusing to overwrite ${dataFile}, which belongs to the input ${input}: choose another --location`);
    }
    if (existsSync(dataFile) && !opts.force) {
      throw new RpOnnxError(`${dataFile} already exists: pass --force to overwrite it or choose another --location`);
    }
  }
  loadExternalData(proto, input);
  const saved = saveModelProto(proto, output, opts);
  return { ...saved, input, inputDataFiles };
}
