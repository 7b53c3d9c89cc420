/**
 * A small helper for passes and model builders that emit many nodes: `b.op('Conv', [x, w],
 * { pads: [1, 1, 1, 1] })` appends a node with fresh unique output names and returns them.
 * Float attributes are tagged with `float(v)` / `floats([...])` because JS numbers do not say
 * whether 1 means INT or FLOAT.
 */
import { type AttributeProto, type TensorProto } from './onnx.js';
import { Graph, Node, makeAttribute, type AttrValue } from './ir.js';
import { makeTensor, type NumericArray, type DType } from './tensor.js';

export interface FloatAttr { readonly kind: 'float'; readonly value: number }
export interface FloatsAttr { readonly kind: 'floats'; readonly value: number[] }
export const float = (value: number): FloatAttr => ({ kind: 'float', value });
export const floats = (value: number[]): FloatsAttr => ({ kind: 'floats', value });
export type BuilderAttr = AttrValue | FloatAttr | FloatsAttr;

function toAttribute(name: string, v: BuilderAttr): AttributeProto {
  if (typeof v === 'object' && v !== null && 'kind' in v) {
    return makeAttribute(name, v.value, v.kind);
  }
  return makeAttribute(name, v as AttrValue);
}

export class GraphBuilder {
  constructor(readonly graph: Graph, readonly prefix = '') {}

  /** Appends a node (or inserts it at `at`) and returns its output names. */
  op(opType: string, inputs: string[], attrs: Record<string, BuilderAttr | undefined> = {}, opts: { outputs?: number | string[]; name?: string; domain?: string; at?: number } = {}): string[] {
    const base = `${this.prefix}${opts.name ?? opType}`;
    const outputs = Array.isArray(opts.outputs)
      ? opts.outputs
      : Array.from({ length: opts.outputs ?? 1 }, (_, i) => this.graph.uniqueName(`${base}_out${i === 0 ? '' : i}`));
    const attributes = Object.entries(attrs)
      .filter((e): e is [string, BuilderAttr] => e[1] !== undefined)
      .map(([k, v]) => toAttribute(k, v));
    this.graph.addNode(new Node({ opType, inputs, outputs, attributes, domain: opts.domain, name: this.graph.uniqueName(base) }), opts.at);
    return outputs;
  }

  /** Single-output shorthand for `op`. */
  op1(opType: string, inputs: string[], attrs: Record<string, BuilderAttr | undefined> = {}, opts: { name?: string; domain?: string; at?: number } = {}): string {
    return this.op(opType, inputs, attrs, { ...opts, outputs: 1 })[0]!;
  }

  /** Adds an initializer with a fresh name derived from `base`. */
  initializer(base: string, dims: readonly number[], data: NumericArray, dtype?: DType): string {
    const name = this.graph.uniqueName(`${this.prefix}${base}`);
    this.graph.addInitializer(makeTensor(name, dims, data, dtype));
    return name;
  }
  addTensor(t: TensorProto): string {
    return this.graph.addInitializer(t);
  }
  int64s(base: string, values: readonly number[]): string {
    return this.initializer(base, [values.length], BigInt64Array.from(values.map(BigInt)), 'int64');
  }
  /** A float32 scalar (rank 0) constant. */
  scalar(base: string, value: number): string {
    return this.initializer(base, [], Float32Array.of(value), 'float32');
  }
}

/**
 * The operands of a ReduceMean of `x` over `axes`: the axes are an attribute before opset 18
 * and an int64 input from 18 (`axesInput` makes that input; it is called only then). Callers
 * add keepdims: `b.op1('ReduceMean', inputs, { ...attrs, keepdims: 1 })`.
 */
export function reduceMeanArgs(opset: number, x: string, axes: readonly number[], axesInput: () => string): { inputs: string[]; attrs: { axes?: number[] } } {
  return opset >= 18 ? { inputs: [x, axesInput()], attrs: {} } : { inputs: [x], attrs: { axes: [...axes] } };
}
