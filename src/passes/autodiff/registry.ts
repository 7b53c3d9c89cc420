/**
 * The gradient-rule registry: op type -> rule and what the rule can do. Rule modules call
 * `registerGradient` when imported; ./rules/index.ts imports them all.
 *
 * Traits (DP-SGD's per-example mode, see ./per-example.ts):
 * - `perExample`: the rule honours `ctx.perExample`, returning [N, ...shape] gradients for the
 *   flagged inputs. The engine refuses (naming the op) to ask any other rule for one.
 * - `parameterPath`: a layout op (Reshape, Transpose, ...) that may sit between a parameter and
 *   its consumer; applied to a parameter, its output counts as a parameter too, so the consumer
 *   is asked for a per-example gradient of it and this rule maps that back, batch axis kept.
 * - `forwardOutputs`: optional outputs of the forward node that the rule reads (MaxPool's
 *   indices, ...); the pre-pass of ./forward-outputs.ts names them on the node before
 *   differentiation, so the rule itself only emits gradient nodes.
 */
import type { Graph, Node } from '../../graph/ir.js';
import type { GradRule } from './rule.js';

/** An optional forward output a rule reads: its position and the base of its fresh name. */
export interface ForwardOutput {
  index: number;
  name: string;
}

/**
 * The optional outputs the rule will read from `node` (when some input of the node is
 * differentiated and its outputs reach the loss), or a one-line reason why it reads none.
 */
export type ForwardOutputs = (node: Node, graph: Graph, opset: number) => ForwardOutput[] | string;

export interface GradRuleTraits {
  perExample?: boolean;
  parameterPath?: boolean;
  forwardOutputs?: ForwardOutputs;
}

interface Entry {
  rule: GradRule;
  traits: GradRuleTraits;
}

const rules = new Map<string, Entry>();

export function registerGradient(opTypes: string | string[], rule: GradRule, traits: GradRuleTraits = {}): void {
  for (const op of Array.isArray(opTypes) ? opTypes : [opTypes]) {
    if (rules.has(op)) throw new Error(`gradient rule for ${op} registered twice`);
    rules.set(op, { rule, traits: { ...traits, perExample: traits.perExample || traits.parameterPath } });
  }
}

export function gradientRule(opType: string): GradRule | undefined {
  return rules.get(opType)?.rule;
}

export function gradientTraits(opType: string): GradRuleTraits {
  return rules.get(opType)?.traits ?? {};
}

export function differentiableOps(): string[] {
  return [...rules.keys()].sort();
}

/** Ops whose rule gives per-example gradients of their parameter inputs (DP-SGD). */
export function perExampleOps(): string[] {
  return [...rules].filter(([, e]) => e.traits.perExample).map(([op]) => op).sort();
}
