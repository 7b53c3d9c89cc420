/**
 * Arithmetic on dimensions that may be numbers, symbolic names or unknown (null), and on the
 * small folded constant tensors shape rules pass along. Products of symbols stay symbolic as
 * canonical monomials ('4*batch', 'batch*seq'), so a transformer's Reshape to
 * [batch * heads, seq, d] and back resolves; sums of symbols are unknown (x + 0 = x aside).
 */
import type { Dim, TensorType } from '../ir.js';
import type { DType } from '../tensor.js';

/** Folded tensors larger than this are not tracked. */
export const MAX_FOLDED_ELEMENTS = 4096;

export function isKnown(d: Dim): d is number {
  return typeof d === 'number';
}
export function allKnown(dims: readonly Dim[]): dims is number[] {
  return dims.every(isKnown);
}

/** coef * product of symbols; symbols sorted so equal products print equally. */
interface Monomial {
  coef: number;
  syms: string[];
}

function monomial(d: Dim): Monomial | null {
  if (d === null) return null;
  if (isKnown(d)) return { coef: d, syms: [] };
  let coef = 1;
  const syms: string[] = [];
  for (const part of d.split('*')) {
    if (/^\d+$/.test(part)) coef *= Number(part);
    else syms.push(part);
  }
  return { coef, syms: syms.sort() };
}

function fromMonomial(m: Monomial): Dim {
  if (m.syms.length === 0 || m.coef === 0) return m.coef;
  if (m.coef < 0 || !Number.isInteger(m.coef)) return null; // not a dimension
  const body = m.syms.join('*');
  return m.coef === 1 ? body : `${m.coef}*${body}`;
}

export function dimMul(a: Dim, b: Dim): Dim {
  if (a === 0 || b === 0) return 0;
  const ma = monomial(a);
  const mb = monomial(b);
  if (!ma || !mb) return null;
  return fromMonomial({ coef: ma.coef * mb.coef, syms: [...ma.syms, ...mb.syms].sort() });
}

/** a / b when it divides exactly (as a product of symbols with an integer factor), else null. */
export function dimDiv(a: Dim, b: Dim): Dim {
  const ma = monomial(a);
  const mb = monomial(b);
  if (!ma || !mb || mb.coef === 0 || ma.coef % mb.coef !== 0) return null;
  const rest = [...ma.syms];
  for (const s of mb.syms) {
    const i = rest.indexOf(s);
    if (i < 0) return null;
    rest.splice(i, 1);
  }
  return fromMonomial({ coef: ma.coef / mb.coef, syms: rest });
}

export function dimAdd(a: Dim, b: Dim): Dim {
  if (isKnown(a) && isKnown(b)) return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  return null;
}
export function dimProduct(dims: readonly Dim[]): Dim {
  return dims.reduce<Dim>((p, d) => dimMul(p, d), 1);
}

/** Axis in [0, rank) from a possibly negative one. */
export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/**
 * Axes normalised to [0, rank), each at most once. Throws (the engine then leaves the outputs
 * unknown) on an axis outside [-rank, rank) or a repeat: rules that write `out[axis]` would
 * otherwise leave empty slots in a shape, which cannot be recorded.
 */
export function checkedAxes(axes: readonly number[], rank: number): number[] {
  const out = axes.map((a) => normAxis(a, rank));
  const seen = new Set<number>();
  for (const a of out) {
    if (!Number.isInteger(a) || a < 0 || a >= rank || seen.has(a)) throw new Error(`axis ${a} is not a distinct axis of rank ${rank}`);
    seen.add(a);
  }
  return out;
}

/** Throws unless every list has `length` entries (starts/ends/axes/steps of a Slice, ...). */
export function sameLengths(length: number, ...lists: readonly (readonly unknown[])[]): void {
  for (const l of lists) if (l.length !== length) throw new Error(`expected ${length} entries, got ${l.length}`);
}

/** A shape a type can record: every slot present and a non-negative integer, a name or null. */
export function isWellFormedShape(shape: readonly Dim[] | null): boolean {
  if (shape === null) return true;
  for (let k = 0; k < shape.length; k++) {
    if (!(k in shape)) return false;
    const d = shape[k];
    if (!(d === null || (typeof d === 'string' && d !== '') || (typeof d === 'number' && Number.isSafeInteger(d) && d >= 0))) return false;
  }
  return true;
}

/**
 * Numpy broadcasting of several shapes. A number other than 1 wins; a symbol survives when
 * every other operand has 1 or the same symbol there. Null when a rank is unknown.
 */
export function broadcastShapes(shapes: readonly (readonly Dim[] | null)[]): Dim[] | null {
  if (shapes.some((s) => s === null)) return null;
  const list = shapes as readonly (readonly Dim[])[];
  const rank = Math.max(0, ...list.map((s) => s.length));
  const out: Dim[] = [];
  for (let k = 0; k < rank; k++) {
    const dims = list.map((s) => s[s.length - rank + k]).filter((d): d is Dim => d !== undefined);
    out.push(broadcastDim(dims));
  }
  return out;
}

function broadcastDim(dims: readonly Dim[]): Dim {
  const big = dims.find((d) => isKnown(d) && d !== 1);
  if (big !== undefined) return big;
  const rest = dims.filter((d) => d !== 1);
  if (rest.length === 0) return 1;
  const first = rest[0]!;
  return typeof first === 'string' && rest.every((d) => d === first) ? first : null;
}

/** Per-dimension merge of two views of one shape: numbers beat symbols beat unknown. */
export function mergeShapes(a: readonly Dim[] | null, b: readonly Dim[] | null): Dim[] | null {
  if (a === null) return b === null ? null : [...b];
  if (b === null || a.length !== b.length) return [...a];
  return a.map((d, i) => {
    const e = b[i]!;
    if (isKnown(d)) return d;
    if (isKnown(e)) return e;
    return d ?? e;
  });
}

export function tensor(dtype: DType | undefined, shape: Dim[] | null): TensorType {
  return { dtype: dtype ?? 'undefined', shape };
}

const INTEGER_DTYPES = new Set<DType>(['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool']);
export function isIntegerDType(d: DType | undefined): boolean {
  return d !== undefined && INTEGER_DTYPES.has(d);
}

/** Row-major strides of a static shape. */
function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

/**
 * Elementwise map over broadcast operands with static shapes; null when a shape is not
 * static or the result would be too big to track.
 */
export function foldBroadcast(
  operands: readonly { shape: readonly Dim[] | null; value: readonly Dim[] | null }[],
  fn: (args: Dim[]) => Dim,
): Dim[] | null {
  if (operands.some((o) => o.value === null || o.shape === null || !allKnown(o.shape))) return null;
  const shapes = operands.map((o) => o.shape as number[]);
  const out = broadcastShapes(shapes);
  if (out === null || !allKnown(out)) return null;
  const count = out.reduce((a, b) => a * b, 1);
  if (count > MAX_FOLDED_ELEMENTS) return null;
  const outStrides = strides(out);
  const opStrides = shapes.map((s) => {
    const st = strides(s);
    // Stride 0 along broadcast dimensions, aligned to the right.
    return out.map((_, k) => {
      const j = k - (out.length - s.length);
      return j < 0 || s[j] === 1 ? 0 : st[j]!;
    });
  });
  const result: Dim[] = [];
  for (let flat = 0; flat < count; flat++) {
    const args = operands.map((o, n) => {
      let idx = 0;
      let rem = flat;
      for (let k = 0; k < out.length; k++) {
        const c = Math.floor(rem / outStrides[k]!);
        rem -= c * outStrides[k]!;
        idx += c * opStrides[n]![k]!;
      }
      return o.value![idx] ?? null;
    });
    result.push(fn(args));
  }
  return result;
}

/** A numeric binary operation lifted to Dims (symbols only through the identities above). */
export function liftNumeric(fn: (a: number, b: number) => number, symbolic?: (a: Dim, b: Dim) => Dim): (args: Dim[]) => Dim {
  return ([a, b]) => {
    if (isKnown(a!) && isKnown(b!)) return fn(a, b);
    return symbolic ? symbolic(a!, b!) : null;
  };
}

/**
 * Folds a pure data movement: for every element of a static output shape (row-major), the
 * flat source index `source(outIndex)` picks a value. Null when too big.
 */
export function foldMove(value: readonly Dim[], outShape: readonly Dim[], source: (index: number[]) => number): Dim[] | null {
  if (!allKnown(outShape)) return null;
  const count = outShape.reduce((a, b) => a * b, 1);
  if (count > MAX_FOLDED_ELEMENTS) return null;
  const index = new Array<number>(outShape.length).fill(0);
  const out: Dim[] = [];
  for (let n = 0; n < count; n++) {
    out.push(value[source(index)] ?? null);
    for (let k = outShape.length - 1; k >= 0; k--) {
      if (++index[k]! < outShape[k]!) break;
      index[k] = 0;
    }
  }
  return out;
}

/** Flat row-major offset of a multi-index in a static shape. */
export function flatIndex(shape: readonly number[], index: readonly number[]): number {
  let f = 0;
  for (let k = 0; k < shape.length; k++) f = f * shape[k]! + index[k]!;
  return f;
}
