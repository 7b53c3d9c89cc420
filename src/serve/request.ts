/**
 * Request bodies of POST /v1/predict, validated into a batch of float32 examples. Every problem
 * is an HttpError with a 4xx status and a one-line message the client can act on.
 *
 * JSON:   {"inputs": [[...]], "shape": [n, ...example shape]}   ("shape" optional when "inputs"
 *         is a nested array of that shape; a single example may omit the batch axis)
 * Binary: Content-Type application/octet-stream, little-endian float32 values, the shape in the
 *         X-Shape header or the ?shape= query, e.g. "2,1,28,28".
 */

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface Examples {
  data: Float32Array;
  count: number;
}

const describe = (s: readonly number[]) => `[${s.join(', ')}]`;

/** The batch size a shape implies: [n, ...example] or [...example] (one example). */
function batchOf(shape: readonly number[], example: readonly number[]): number {
  const same = (a: readonly number[]) => a.length === example.length && a.every((d, i) => d === example[i]);
  if (shape.length === example.length + 1 && same(shape.slice(1))) return shape[0]!;
  if (same(shape)) return 1;
  throw new HttpError(400, `shape ${describe(shape)} does not match the model's examples ${describe(example)}: send [n, ${example.join(', ')}]`);
}

function checkShape(value: unknown, where: string): number[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
    throw new HttpError(400, `${where} must be a non-empty list of non-negative integers`);
  }
  return value as number[];
}

/**
 * Flattens a rectangular nested array of finite numbers; returns its values and shape. Nesting
 * deeper than `maxDepth` is refused before it is walked (a body of 100,000 nested brackets
 * would otherwise overflow the stack).
 */
function flatten(value: unknown, maxDepth: number): { values: number[]; shape: number[] } {
  const values: number[] = [];
  let shape: number[] | null = null;
  const walk = (v: unknown, depth: number, dims: number[]): void => {
    if (Array.isArray(v)) {
      if (depth >= maxDepth) throw new HttpError(400, `"inputs" is nested ${depth + 1}+ levels deep; the model's examples need at most ${maxDepth} (a batch of ${maxDepth - 1}-dimensional examples)`);
      const here = [...dims, v.length];
      if (v.length === 0) throw new HttpError(400, '"inputs" contains an empty list');
      for (const x of v) walk(x, depth + 1, here);
      return;
    }
    if (shape === null) shape = dims;
    else if (dims.length !== shape.length || dims.some((d, i) => d !== shape![i])) {
      throw new HttpError(400, '"inputs" is ragged: every row must have the same length');
    }
    if (typeof v !== 'number') throw new HttpError(400, `"inputs" must hold numbers only, found ${v === null ? 'null' : typeof v}`);
    if (!Number.isFinite(v)) throw new HttpError(400, '"inputs" must hold finite numbers (no NaN or Infinity)');
    values.push(v);
  };
  if (!Array.isArray(value)) throw new HttpError(400, '"inputs" must be a (nested) list of numbers');
  walk(value, 0, []);
  return { values, shape: shape ?? [] };
}

export function parseJsonExamples(text: string, example: readonly number[]): Examples {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `malformed JSON: ${(e as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'the body must be a JSON object {"inputs": [...], "shape": [...]}');
  }
  const { inputs, shape } = body as { inputs?: unknown; shape?: unknown };
  if (inputs === undefined) throw new HttpError(400, 'missing "inputs"');
  const flat = flatten(inputs, example.length + 1);
  const declared = shape === undefined ? flat.shape : checkShape(shape, '"shape"');
  const total = declared.reduce((a, b) => a * b, 1);
  if (total !== flat.values.length) {
    throw new HttpError(400, `"shape" ${describe(declared)} needs ${total} values but "inputs" holds ${flat.values.length}`);
  }
  const count = batchOf(declared, example);
  if (count === 0) throw new HttpError(400, 'the request holds no examples');
  const data = Float32Array.from(flat.values);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) throw new HttpError(400, `value ${i} (${flat.values[i]}) overflows float32`);
  }
  return { data, count };
}

/** Parses "2,1,28,28" (or "[2,1,28,28]"). */
export function parseShapeText(text: string | undefined): number[] {
  if (text === undefined || text.trim() === '') {
    throw new HttpError(400, 'binary requests need the shape in the X-Shape header or the ?shape= query, e.g. 2,1,28,28');
  }
  const parts = text.replace(/^\s*\[|\]\s*$/g, '').split(',').map((s) => s.trim());
  const dims = parts.map(Number);
  if (parts.some((p) => !/^\d+$/.test(p))) throw new HttpError(400, `bad shape '${text}': expected comma-separated non-negative integers`);
  return dims;
}

export function parseBinaryExamples(body: Uint8Array, shapeText: string | undefined, example: readonly number[]): Examples {
  const shape = parseShapeText(shapeText);
  const count = batchOf(shape, example);
  if (count === 0) throw new HttpError(400, 'the request holds no examples');
  const total = shape.reduce((a, b) => a * b, 1);
  if (body.byteLength !== total * 4) {
    throw new HttpError(400, `shape ${describe(shape)} needs ${total * 4} bytes of float32 but the body has ${body.byteLength}`);
  }
  const data = new Float32Array(total);
  new Uint8Array(data.buffer).set(body);
  for (let i = 0; i < total; i++) {
    if (!Number.isFinite(data[i]!)) throw new HttpError(400, `value ${i} is ${data[i]}: inputs must be finite`);
  }
  return { data, count };
}
