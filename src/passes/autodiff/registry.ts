/**
 * The gradient-rule registry: op type -> rule. Rule modules call `registerGradient` when
 * imported; ./rules/index.ts imports them all.
 */
import type { GradRule } from './rule.js';

const rules = new Map<string, GradRule>();

export function registerGradient(opTypes: string | string[], rule: GradRule): void {
  for (const op of Array.isArray(opTypes) ? opTypes : [opTypes]) {
    if (rules.has(op)) throw new Error(`gradient rule for ${op} registered twice`);
    rules.set(op, rule);
  }
}

export function gradientRule(opType: string): GradRule | undefined {
  return rules.get(opType);
}

export function differentiableOps(): string[] {
  return [...rules.keys()].sort();
}
