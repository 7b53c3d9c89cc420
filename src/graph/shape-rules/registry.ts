/**
 * The shape-rule registry: op type -> rule. A rule reads its node's input types (and the
 * folded values of small constant inputs) through a ShapeContext and returns one TensorType
 * (or null for unknown) per output. Rule modules call `registerShapeRule` when imported;
 * src/graph/shape-inference.ts imports them all and only looks rules up.
 */
import type { Dim, Node, TensorType } from '../ir.js';
import type { DType } from '../tensor.js';

/**
 * What a rule sees of its node. Values are the contents of small constant tensors (shape
 * tensors, axes, scales), flattened in row-major order; an element is a number, a symbolic
 * dimension name (values derived from Shape of a symbolic input) or null when unknown.
 */
export interface ShapeContext {
  readonly node: Node;
  /** Default-domain opset the graph is interpreted under. */
  readonly opset: number;
  /** True when input i exists and is not the empty name of an omitted optional input. */
  hasInput(i: number): boolean;
  type(i: number): TensorType | null;
  /** Shape of input i; null when the input is absent or its rank is unknown. */
  shape(i: number): Dim[] | null;
  dtype(i: number): DType | undefined;
  /** Folded contents of input i, or null when not a known small constant. */
  value(i: number): Dim[] | null;
  /** Folded contents of input i when every element is a known number. */
  ints(i: number): number[] | null;
  /** Records the folded contents of output i (for shape-arithmetic chains). */
  setValue(output: number, value: Dim[]): void;
}

/** One entry per node output, null where nothing is known. */
export type ShapeRule = (ctx: ShapeContext) => (TensorType | null)[];

const rules = new Map<string, ShapeRule>();

export function registerShapeRule(opTypes: string | string[], rule: ShapeRule): void {
  for (const op of Array.isArray(opTypes) ? opTypes : [opTypes]) {
    if (rules.has(op)) throw new Error(`shape rule for ${op} registered twice`);
    rules.set(op, rule);
  }
}

/** The rule for a default-domain op, or undefined. */
export function shapeRule(opType: string): ShapeRule | undefined {
  return rules.get(opType);
}

export function opsWithShapeRules(): string[] {
  return [...rules.keys()].sort();
}
