/**
 * TensorProto <-> typed arrays. Data is always written as little-endian raw_data (what ONNX
 * exporters write); reading accepts raw_data and every typed *_data field. Tensors whose data
 * lives in an external file must have been resolved by src/graph/external-data first.
 */
import Long from 'long';
import { onnx, type TensorProto } from './onnx.js';
import { RpOnnxError } from '../errors.js';

const DT = onnx.TensorProto.DataType;

export type DType =
  | 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int8' | 'uint8' | 'int16' | 'uint16'
  | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool' | 'string' | 'complex64' | 'complex128'
  | 'float8e4m3fn' | 'float8e4m3fnuz' | 'float8e5m2' | 'float8e5m2fnuz' | 'uint4' | 'int4'
  | 'float4e2m1' | 'float8e8m0' | 'uint2' | 'int2' | 'undefined';

/**
 * The floating-point element types: those that carry gradients and Gaussian noise, and whose
 * initializers count as parameters (the 8-bit and 4-bit float formats are storage, not math).
 */
export const FLOAT_DTYPES: ReadonlySet<DType> = new Set<DType>(['float32', 'float64', 'float16', 'bfloat16']);

/** True for a floating-point element type (any string, so unvalidated names can be tested). */
export function isFloatDType(t: string): boolean {
  return FLOAT_DTYPES.has(t as DType);
}

const DTYPE_BY_CODE: Record<number, DType> = {
  [DT.UNDEFINED]: 'undefined', [DT.FLOAT]: 'float32', [DT.UINT8]: 'uint8', [DT.INT8]: 'int8',
  [DT.UINT16]: 'uint16', [DT.INT16]: 'int16', [DT.INT32]: 'int32', [DT.INT64]: 'int64',
  [DT.STRING]: 'string', [DT.BOOL]: 'bool', [DT.FLOAT16]: 'float16', [DT.DOUBLE]: 'float64',
  [DT.UINT32]: 'uint32', [DT.UINT64]: 'uint64', [DT.COMPLEX64]: 'complex64',
  [DT.COMPLEX128]: 'complex128', [DT.BFLOAT16]: 'bfloat16', [DT.FLOAT8E4M3FN]: 'float8e4m3fn',
  [DT.FLOAT8E4M3FNUZ]: 'float8e4m3fnuz', [DT.FLOAT8E5M2]: 'float8e5m2',
  [DT.FLOAT8E5M2FNUZ]: 'float8e5m2fnuz', [DT.UINT4]: 'uint4', [DT.INT4]: 'int4',
  [DT.FLOAT4E2M1]: 'float4e2m1', [DT.FLOAT8E8M0]: 'float8e8m0', [DT.UINT2]: 'uint2', [DT.INT2]: 'int2',
};
const CODE_BY_DTYPE = Object.fromEntries(
  Object.entries(DTYPE_BY_CODE).map(([code, name]) => [name, Number(code)]),
) as Record<DType, number>;

export function dtypeName(code: number): DType {
  const name = DTYPE_BY_CODE[code];
  if (name === undefined) throw new RpOnnxError(`unknown ONNX tensor data type ${code}`);
  return name;
}
export function dtypeCode(name: DType): number {
  return CODE_BY_DTYPE[name];
}

/** int64 fields decode as Long (or number); the project works in numbers (shapes, axes). */
export function toNumber(v: number | Long | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export function tensorDims(t: TensorProto): number[] {
  return t.dims.map(toNumber);
}
export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export type NumericArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

function rawView(t: TensorProto): Uint8Array {
  const raw = t.rawData;
  // Copy to an aligned buffer: typed-array views need alignment and raw_data may be a subarray.
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  return copy;
}

/**
 * Decodes the numeric contents of a tensor. float16/bfloat16 are widened to float32; bool to
 * uint8. Other packed or exotic types throw: callers that only move tensors never decode them.
 */
export function tensorToArray(t: TensorProto): NumericArray {
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new RpOnnxError(`tensor '${t.name}' has external data that was not loaded`);
  }
  const dtype = dtypeName(t.dataType);
  const n = elementCount(tensorDims(t));
  const hasRaw = t.rawData !== undefined && t.rawData !== null && t.rawData.length > 0;
  const raw = hasRaw ? rawView(t) : undefined;
  const buf = raw?.buffer;
  switch (dtype) {
    case 'float32': return raw ? new Float32Array(buf!, 0, n) : Float32Array.from(t.floatData);
    case 'float64': return raw ? new Float64Array(buf!, 0, n) : Float64Array.from(t.doubleData);
    case 'int32': return raw ? new Int32Array(buf!, 0, n) : Int32Array.from(t.int32Data);
    case 'int8': return raw ? new Int8Array(buf!, 0, n) : Int8Array.from(t.int32Data);
    case 'uint8': case 'bool': return raw ? new Uint8Array(buf!, 0, n) : Uint8Array.from(t.int32Data);
    case 'int16': return raw ? new Int16Array(buf!, 0, n) : Int16Array.from(t.int32Data);
    case 'uint16': return raw ? new Uint16Array(buf!, 0, n) : Uint16Array.from(t.int32Data);
    case 'uint32': return raw ? new Uint32Array(buf!, 0, n) : Uint32Array.from(t.uint64Data.map((v) => toNumber(v)));
    case 'int64': return raw ? new BigInt64Array(buf!, 0, n) : BigInt64Array.from(t.int64Data.map((v) => BigInt(Long.fromValue(v).toString())));
    case 'uint64': return raw ? new BigUint64Array(buf!, 0, n) : BigUint64Array.from(t.uint64Data.map((v) => BigInt(Long.fromValue(v).toUnsigned().toString())));
    case 'float16': case 'bfloat16': {
      const bits = raw ? new Uint16Array(buf!, 0, n) : Uint16Array.from(t.int32Data);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dtype === 'float16' ? halfToFloat(bits[i]!) : bfloat16ToFloat(bits[i]!);
      return out;
    }
    default:
      throw new RpOnnxError(`tensor '${t.name}': decoding ${dtype} data is not supported`);
  }
}

/** Float view of any floating or integer tensor (int64 converted through Number). */
export function tensorToFloat32(t: TensorProto): Float32Array {
  const a = tensorToArray(t);
  if (a instanceof Float32Array) return a;
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Number(a[i]);
  return out;
}

const ARRAY_DTYPE: [new (...args: never[]) => NumericArray, DType][] = [
  [Float32Array, 'float32'], [Float64Array, 'float64'], [Int8Array, 'int8'], [Uint8Array, 'uint8'],
  [Int16Array, 'int16'], [Uint16Array, 'uint16'], [Int32Array, 'int32'], [Uint32Array, 'uint32'],
  [BigInt64Array, 'int64'], [BigUint64Array, 'uint64'],
];
export function arrayDType(a: NumericArray): DType {
  for (const [ctor, name] of ARRAY_DTYPE) if (a instanceof ctor) return name;
  throw new RpOnnxError('unsupported typed array');
}

/** Builds a TensorProto holding `data` as raw_data (little-endian, as on every supported host). */
export function makeTensor(name: string, dims: readonly number[], data: NumericArray, dtype?: DType): TensorProto {
  const type = dtype ?? arrayDType(data);
  if (elementCount(dims) !== data.length) {
    throw new RpOnnxError(`tensor '${name}': ${data.length} values do not fill shape [${dims.join(', ')}]`);
  }
  return onnx.TensorProto.create({
    name,
    dims: [...dims],
    dataType: dtypeCode(type),
    rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)),
  });
}

export function int64Tensor(name: string, values: readonly number[], dims: readonly number[] = [values.length]): TensorProto {
  return makeTensor(name, dims, BigInt64Array.from(values.map((v) => BigInt(v))), 'int64');
}
export function float32Tensor(name: string, values: ArrayLike<number>, dims: readonly number[] = [values.length]): TensorProto {
  return makeTensor(name, dims, Float32Array.from(values), 'float32');
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}
export function bfloat16ToFloat(b: number): number {
  const u = new Uint32Array([b << 16]);
  return new Float32Array(u.buffer)[0]!;
}
