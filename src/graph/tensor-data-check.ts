/**
 * Checks, at load, that every tensor of a model holds exactly the data its dims and data type
 * promise. protobuf accepts any byte count, so a short raw_data, a float_data list of the wrong
 * length or external data of the wrong length would otherwise reach typed-array views ("Invalid
 * typed array length") or onnxruntime ("Tensor's size ... does not match"), or be written back
 * out as an invalid model. One RpOnnxError line names the file, the tensor and both sizes.
 */
import { onnx, type ModelProto, type TensorProto } from './onnx.js';
import { allTensors, isExternal } from './external-data.js';
import { toNumber } from './tensor.js';
import { RpOnnxError } from '../errors.js';
import { printable } from '../printable.js';

const DT = onnx.TensorProto.DataType;

/** Which typed field holds a data type's values when raw_data is not used, and how many per element. */
type Field = 'floatData' | 'doubleData' | 'int32Data' | 'int64Data' | 'uint64Data' | 'stringData';

interface Layout {
  name: string;
  /** Bytes per element in raw_data; fractional for packed sub-byte types. */
  bytes: number;
  field: Field;
  /** Values of `field` per element (complex: 2); packed types: elements per value. */
  perElement: number;
}

const LAYOUTS: Record<number, Layout> = {
  [DT.FLOAT]: { name: 'float32', bytes: 4, field: 'floatData', perElement: 1 },
  [DT.DOUBLE]: { name: 'float64', bytes: 8, field: 'doubleData', perElement: 1 },
  [DT.COMPLEX64]: { name: 'complex64', bytes: 8, field: 'floatData', perElement: 2 },
  [DT.COMPLEX128]: { name: 'complex128', bytes: 16, field: 'doubleData', perElement: 2 },
  [DT.INT32]: { name: 'int32', bytes: 4, field: 'int32Data', perElement: 1 },
  [DT.INT16]: { name: 'int16', bytes: 2, field: 'int32Data', perElement: 1 },
  [DT.UINT16]: { name: 'uint16', bytes: 2, field: 'int32Data', perElement: 1 },
  [DT.INT8]: { name: 'int8', bytes: 1, field: 'int32Data', perElement: 1 },
  [DT.UINT8]: { name: 'uint8', bytes: 1, field: 'int32Data', perElement: 1 },
  [DT.BOOL]: { name: 'bool', bytes: 1, field: 'int32Data', perElement: 1 },
  [DT.FLOAT16]: { name: 'float16', bytes: 2, field: 'int32Data', perElement: 1 },
  [DT.BFLOAT16]: { name: 'bfloat16', bytes: 2, field: 'int32Data', perElement: 1 },
  [DT.FLOAT8E4M3FN]: { name: 'float8e4m3fn', bytes: 1, field: 'int32Data', perElement: 1 },
  [DT.FLOAT8E4M3FNUZ]: { name: 'float8e4m3fnuz', bytes: 1, field: 'int32Data', perElement: 1 },
  [DT.FLOAT8E5M2]: { name: 'float8e5m2', bytes: 1, field: 'int32Data', perElement: 1 },
  [DT.FLOAT8E5M2FNUZ]: { name: 'float8e5m2fnuz', bytes: 1, field: 'int32Data', perElement: 1 },
  [DT.FLOAT8E8M0]: { name: 'float8e8m0', bytes: 1, field: 'int32Data', perElement: 1 },
  [DT.INT64]: { name: 'int64', bytes: 8, field: 'int64Data', perElement: 1 },
  [DT.UINT32]: { name: 'uint32', bytes: 4, field: 'uint64Data', perElement: 1 },
  [DT.UINT64]: { name: 'uint64', bytes: 8, field: 'uint64Data', perElement: 1 },
  // Packed: two 4-bit (four 2-bit) elements per byte, and per int32_data value.
  [DT.INT4]: { name: 'int4', bytes: 0.5, field: 'int32Data', perElement: 0.5 },
  [DT.UINT4]: { name: 'uint4', bytes: 0.5, field: 'int32Data', perElement: 0.5 },
  [DT.FLOAT4E2M1]: { name: 'float4e2m1', bytes: 0.5, field: 'int32Data', perElement: 0.5 },
  [DT.INT2]: { name: 'int2', bytes: 0.25, field: 'int32Data', perElement: 0.25 },
  [DT.UINT2]: { name: 'uint2', bytes: 0.25, field: 'int32Data', perElement: 0.25 },
  [DT.STRING]: { name: 'string', bytes: NaN, field: 'stringData', perElement: 1 },
};

const FIELD_NAME: Record<Field, string> = {
  floatData: 'float_data', doubleData: 'double_data', int32Data: 'int32_data',
  int64Data: 'int64_data', uint64Data: 'uint64_data', stringData: 'string_data',
};

const dimsText = (dims: readonly number[]) => `[${dims.join(', ')}]`;

/** Element count of dims, or throws naming the tensor when a dim is negative. */
function checkedCount(t: TensorProto, source: string): { dims: number[]; count: number } {
  const dims = t.dims.map(toNumber);
  let count = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new RpOnnxError(`${source}: tensor '${printable(t.name)}' has dims ${dimsText(dims)}; every dim must be a non-negative integer (the file is corrupt)`);
    }
    count *= d;
  }
  return { dims, count };
}

/**
 * Throws unless `t` holds exactly the data its dims and type promise. Tensors whose data is
 * still external are skipped (their length is checked once it is read).
 */
export function checkTensorData(t: TensorProto, source: string): void {
  if (isExternal(t)) return;
  const layout = LAYOUTS[t.dataType];
  if (!layout) {
    throw new RpOnnxError(`${source}: tensor '${printable(t.name)}' has ${t.dataType === 0 ? 'no data type' : `unknown data type ${t.dataType}`}; the file is corrupt or from a newer ONNX`);
  }
  const { dims, count: total } = checkedCount(t, source);
  let count = total;
  let what = `tensor '${printable(t.name)}' of ${layout.name} ${dimsText(dims)}`;
  if (t.segment) {
    // A segment (deprecated) holds elements [begin, end) of the tensor, not all of them.
    const begin = toNumber(t.segment.begin);
    const end = toNumber(t.segment.end);
    if (!(begin >= 0 && begin <= end && end <= total)) {
      throw new RpOnnxError(`${source}: ${what} has segment [${begin}, ${end}) outside its ${total} elements (the file is corrupt)`);
    }
    count = end - begin;
    what += ` segment [${begin}, ${end})`;
  }
  const raw = t.rawData?.length ?? 0;
  if (raw > 0) {
    if (layout.field === 'stringData') throw new RpOnnxError(`${source}: ${what} stores strings in raw_data, which ONNX does not allow (the file is corrupt)`);
    const want = Math.ceil(count * layout.bytes);
    if (raw !== want) {
      throw new RpOnnxError(`${source}: ${what} needs ${want} bytes of data but has ${raw} bytes of raw_data; the file is truncated or corrupt`);
    }
    return;
  }
  const have = (t[layout.field] as unknown[] | undefined)?.length ?? 0;
  const want = Math.ceil(count * layout.perElement);
  if (have !== want) {
    const field = FIELD_NAME[layout.field];
    throw new RpOnnxError(have === 0
      ? `${source}: ${what} has no data (${count} elements expected); the file is truncated or corrupt`
      : `${source}: ${what} needs ${want} values in ${field} but has ${have}; the file is truncated or corrupt`);
  }
}

/** checkTensorData over every tensor of a model (initializers, attributes, sparse parts, subgraphs). */
export function checkModelTensorData(proto: ModelProto, source: string): void {
  for (const t of allTensors(proto)) checkTensorData(t, source);
}
