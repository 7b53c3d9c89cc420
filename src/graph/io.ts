/**
 * ONNX model files: bytes <-> ModelProto <-> Model, with external data. Every failure is one
 * RpOnnxError line naming the file.
 */
import { readFileSync, statSync } from 'node:fs';
import { onnx, type ModelProto } from './onnx.js';
import { Model } from './ir.js';
import { loadExternalData, saveWithExternalData, type ExternalDataOptions } from './external-data.js';
import { writeFileAtomic } from '../fs-atomic.js';
import { RpOnnxError } from '../errors.js';
import { toNumber } from './tensor.js';

/** Highest IR version this build's schema describes. */
export const MAX_IR_VERSION = 14;

/** Decodes bytes as a ModelProto; `source` names the file in error messages. */
export function decodeModel(bytes: Uint8Array, source = 'model'): ModelProto {
  if (bytes.length === 0) throw new RpOnnxError(`${source} is empty: not an ONNX model`);
  let proto: ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new RpOnnxError(`${source} is not a valid ONNX model (truncated or corrupt protobuf: ${why})`, { cause: e });
  }
  const ir = toNumber(proto.irVersion);
  if (ir <= 0 || !proto.graph) {
    throw new RpOnnxError(`${source} is not an ONNX model (no ir_version or no graph)`);
  }
  if (ir > MAX_IR_VERSION) {
    throw new RpOnnxError(`${source} uses ONNX IR version ${ir}; rp-onnx supports up to ${MAX_IR_VERSION}`);
  }
  return proto;
}

export function encodeModel(proto: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(proto).finish();
}

export interface LoadOptions {
  /** Read external tensor data into raw_data (default true). False keeps the references. */
  loadExternal?: boolean;
}

/** Reads a model file's ModelProto, resolving external data relative to the file's folder. */
export function readModelProto(path: string, opts: LoadOptions = {}): ModelProto {
  let bytes: Uint8Array;
  try {
    if (statSync(path).isDirectory()) throw new RpOnnxError(`${path} is a directory, not an ONNX model file`);
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof RpOnnxError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new RpOnnxError(`${path}: no such file`);
    throw new RpOnnxError(`cannot read ${path}: ${err.code ?? err.message}`);
  }
  const proto = decodeModel(bytes, path);
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

/**
 * Writes a model atomically. Models whose tensors exceed protobuf's 2 GiB limit are written
 * with external data automatically.
 */
export function saveModelProto(proto: ModelProto, path: string, opts: SaveOptions = {}): void {
  if (opts.externalData || needsExternalData(proto)) {
    saveWithExternalData(proto, path, opts);
    return;
  }
  writeFileAtomic(path, encodeModel(proto));
}

export function saveModel(model: Model, path: string, opts: SaveOptions = {}): void {
  saveModelProto(model.toProto(), path, opts);
}

const PROTOBUF_LIMIT = 2 ** 31 - 1;

function needsExternalData(proto: ModelProto): boolean {
  let total = 0;
  for (const t of proto.graph?.initializer ?? []) total += t.rawData?.length ?? 0;
  return total > PROTOBUF_LIMIT - 64 * 1024 * 1024;
}
