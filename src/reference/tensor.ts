/**
 * Tensors of the float64 reference interpreter.
 *
 * Public values (`RefTensor`) carry float64, int64 (BigInt64Array) or bool (Uint8Array) data.
 * Inside the interpreter every tensor holds its elements as float64 numbers (`Arr`), whatever
 * its dtype: integers stay exact up to 2^53, which covers every shape, index and axis a model
 * computes, and one representation keeps each op a single loop. The dtype tag still decides
 * integer semantics (truncating Div, Cast, comparisons yielding bool).
 */
import type { TensorProto } from '../graph/onnx.js';
import { dtypeName, tensorDims, tensorToArray, type DType } from '../graph/tensor.js';
import { RpOnnxError } from '../errors.js';

export type RefDType = 'float64' | 'int64' | 'bool';

export interface RefTensor {
  dims: number[];
  data: Float64Array | BigInt64Array | Uint8Array;
  dtype: RefDType;
}

/** The interpreter's working tensor: row-major data as float64 numbers. */
export interface Arr {
  dims: number[];
  data: Float64Array;
  dtype: RefDType;
}

export function f64(dims: number[], data: ArrayLike<number>): RefTensor {
  return { dims: [...dims], data: Float64Array.from(data), dtype: 'float64' };
}
export function i64(dims: number[], data: ArrayLike<number>): RefTensor {
  return { dims: [...dims], data: BigInt64Array.from(Array.from(data, (v) => BigInt(v))), dtype: 'int64' };
}

export function sizeOf(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i]!;
  }
  return s;
}

export function arr(dims: number[], data: Float64Array, dtype: RefDType = 'float64'): Arr {
  if (data.length !== sizeOf(dims)) {
    throw new RpOnnxError(`reference interpreter: ${data.length} values do not fill shape [${dims.join(', ')}]`);
  }
  return { dims, data, dtype };
}
export function zeros(dims: number[], dtype: RefDType = 'float64'): Arr {
  return { dims, data: new Float64Array(sizeOf(dims)), dtype };
}
/** The interpreter's dtype for an ONNX dtype: floats -> float64, integers -> int64. */
export function refDType(d: DType): RefDType {
  switch (d) {
    case 'float32': case 'float64': case 'float16': case 'bfloat16':
      return 'float64';
    case 'int8': case 'uint8': case 'int16': case 'uint16': case 'int32': case 'uint32': case 'int64': case 'uint64':
      return 'int64';
    case 'bool':
      return 'bool';
    default:
      throw new RpOnnxError(`reference interpreter: tensors of type ${d} are not supported`);
  }
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/** float64 number -> int64, saturating (INT64_MAX read as a double is 2^63, one past the end). */
function toBigInt(v: number): bigint {
  if (!Number.isFinite(v)) return v > 0 ? INT64_MAX : v < 0 ? INT64_MIN : 0n;
  const b = BigInt(Math.trunc(v));
  return b > INT64_MAX ? INT64_MAX : b < INT64_MIN ? INT64_MIN : b;
}

export function fromRef(t: RefTensor, what = 'tensor'): Arr {
  const n = sizeOf(t.dims);
  if (t.data.length !== n) {
    throw new RpOnnxError(`reference interpreter: ${what} has ${t.data.length} values for shape [${t.dims.join(', ')}]`);
  }
  const data = new Float64Array(n);
  if (t.data instanceof BigInt64Array) for (let i = 0; i < n; i++) data[i] = Number(t.data[i]!);
  else for (let i = 0; i < n; i++) data[i] = t.data[i]!;
  const dtype: RefDType = t.data instanceof BigInt64Array ? 'int64' : t.dtype;
  if (dtype === 'bool') for (let i = 0; i < n; i++) data[i] = data[i] ? 1 : 0;
  return { dims: [...t.dims], data, dtype };
}

export function toRef(a: Arr): RefTensor {
  if (a.dtype === 'int64') return { dims: [...a.dims], data: BigInt64Array.from(a.data, toBigInt), dtype: 'int64' };
  if (a.dtype === 'bool') return { dims: [...a.dims], data: Uint8Array.from(a.data, (v) => (v ? 1 : 0)), dtype: 'bool' };
  return { dims: [...a.dims], data: Float64Array.from(a.data), dtype: 'float64' };
}

/** Reads an initializer or Constant attribute tensor (float32/float16 initializers widen exactly). */
export function fromProto(t: TensorProto): Arr {
  const dtype = refDType(dtypeName(t.dataType));
  const raw = tensorToArray(t);
  const data = new Float64Array(raw.length);
  for (let i = 0; i < raw.length; i++) data[i] = Number(raw[i]!);
  if (dtype === 'bool') for (let i = 0; i < data.length; i++) data[i] = data[i] ? 1 : 0;
  return arr(tensorDims(t), data, dtype);
}

/**
 * For every position of a row-major tensor of shape `dims` (in order), the offset
 * sum(index[i] * strides[i]). With stride 0 on an axis this broadcasts (or reduces) along it;
 * with permuted strides it transposes. The one index helper most ops are built on.
 */
export function offsets(dims: readonly number[], strides: readonly number[]): Int32Array {
  const n = sizeOf(dims);
  const out = new Int32Array(n);
  const rank = dims.length;
  const idx = new Array<number>(rank).fill(0);
  let off = 0;
  for (let k = 0; k < n; k++) {
    out[k] = off;
    // Odometer increment, last axis fastest.
    for (let ax = rank - 1; ax >= 0; ax--) {
      idx[ax]!++;
      off += strides[ax]!;
      if (idx[ax]! < dims[ax]!) break;
      off -= strides[ax]! * dims[ax]!;
      idx[ax] = 0;
    }
  }
  return out;
}

/** numpy broadcasting of several shapes. */
export function broadcastShapes(...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const ax = rank - s.length + i;
      const d = s[i]!;
      if (d === out[ax]) continue;
      if (out[ax] === 1) out[ax] = d;
      else if (d !== 1) {
        throw new RpOnnxError(`reference interpreter: shapes ${shapes.map((x) => `[${x.join(', ')}]`).join(' and ')} do not broadcast`);
      }
    }
  }
  return out;
}

/** Strides that read a tensor of shape `from` as if broadcast to `to` (stride 0 on expanded axes). */
export function broadcastStrides(from: readonly number[], to: readonly number[]): number[] {
  const st = stridesOf(from);
  const out = new Array<number>(to.length).fill(0);
  for (let i = 0; i < from.length; i++) {
    const ax = to.length - from.length + i;
    out[ax] = from[i] === 1 && to[ax] !== 1 ? 0 : st[i]!;
  }
  return out;
}

/** The data of `a` broadcast to shape `to` (a fresh copy only when the shape differs). */
export function broadcastTo(a: Arr, to: readonly number[]): Float64Array {
  if (a.dims.length === to.length && a.dims.every((d, i) => d === to[i])) return a.data;
  const offs = offsets(to, broadcastStrides(a.dims, to));
  const out = new Float64Array(offs.length);
  for (let k = 0; k < offs.length; k++) out[k] = a.data[offs[k]!]!;
  return out;
}

/** Normalizes a possibly negative axis against a rank. */
export function normAxis(axis: number, rank: number, what = 'axis'): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new RpOnnxError(`reference interpreter: ${what} ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Permutes axes: out.dims[i] = a.dims[perm[i]]. */
export function transpose(a: Arr, perm: readonly number[]): Arr {
  const st = stridesOf(a.dims);
  const dims = perm.map((p) => a.dims[p]!);
  const offs = offsets(dims, perm.map((p) => st[p]!));
  const data = new Float64Array(offs.length);
  for (let k = 0; k < offs.length; k++) data[k] = a.data[offs[k]!]!;
  return { dims, data, dtype: a.dtype };
}

/** Numbers of a 1-D (or scalar) integer tensor, e.g. a shape or axes input. */
export function toInts(a: Arr): number[] {
  return Array.from(a.data);
}

/** Rounds to the nearest integer, ties to even (ONNX Round, numpy.round). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
