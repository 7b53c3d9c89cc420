/**
 * What rp-onnx recorded in a model's metadata_props, read back for people (`inspect`): the
 * version, the perturbation (strategy, gamma per block), the privacy statement of DP training and
 * the training record. A model file is untrusted input: every field is read leniently, and a
 * value that is not the JSON we write is reported as unreadable instead of failing `inspect`.
 * The keys are written by src/passes/perturb.ts and the training commands.
 */
import type { Model } from './ir.js';

export const VERSION_KEY = 'rp-onnx.version';
export const PERTURBATION_KEY = 'rp-onnx.perturbation';
export const PRIVACY_KEY = 'rp-onnx.privacy';
export const TRAINING_KEY = 'rp-onnx.training';

/** Prefix of everything the perturb pass inserts (its noise nodes and gamma constants). */
export const PERTURBATION_PREFIX = 'rp/';

export interface RecordedBlock {
  index: number | null;
  add: string | null;
  gamma: number | null;
  strategy: string | null;
  scale: string | null;
  /** Initializers the pass inserted for this block (gamma constants). */
  initializers: string[];
}

export interface RecordedPerturbation {
  strategy: string | null;
  scale: string | null;
  seed: number | null;
  blocks: RecordedBlock[];
}

export interface RecordedMetadata {
  version: string | null;
  perturbation: RecordedPerturbation | null;
  /** The DP record (mechanism, epsilon, delta, accountant, ..., statement) as written. */
  privacy: Record<string, unknown> | null;
  /** The training record (data, examples, steps, recipe, finalTestAccuracy, ...) as written. */
  training: Record<string, unknown> | null;
  /** rp-onnx keys present whose value is not the JSON object rp-onnx writes. */
  unreadable: string[];
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function parseObject(text: string | undefined, key: string, unreadable: string[]): Record<string, unknown> | null {
  if (text === undefined) return null;
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  unreadable.push(key);
  return null;
}

export function readRecordedMetadata(model: Model): RecordedMetadata {
  const unreadable: string[] = [];
  const p = parseObject(model.getMetadata(PERTURBATION_KEY), PERTURBATION_KEY, unreadable);
  let perturbation: RecordedPerturbation | null = null;
  if (p) {
    if (Array.isArray(p.blocks)) {
      perturbation = {
        strategy: str(p.strategy), scale: str(p.scale), seed: num(p.seed),
        blocks: (p.blocks as unknown[]).filter((b): b is Record<string, unknown> => !!b && typeof b === 'object').map((b) => ({
          index: num(b.index), add: str(b.add), gamma: num(b.gamma), strategy: str(b.strategy), scale: str(b.scale),
          initializers: Array.isArray(b.initializers) ? b.initializers.filter((x): x is string => typeof x === 'string') : [],
        })),
      };
    } else unreadable.push(PERTURBATION_KEY);
  }
  return {
    version: model.getMetadata(VERSION_KEY) ?? null,
    perturbation,
    privacy: parseObject(model.getMetadata(PRIVACY_KEY), PRIVACY_KEY, unreadable),
    training: parseObject(model.getMetadata(TRAINING_KEY), TRAINING_KEY, unreadable),
    unreadable,
  };
}

/** Names of the initializers a recorded perturbation inserted: those it lists, and any under 'rp/'. */
export function perturbationInitializers(model: Model, recorded: RecordedMetadata): Set<string> {
  const names = new Set<string>();
  if (!recorded.perturbation) return names;
  for (const b of recorded.perturbation.blocks) for (const n of b.initializers) names.add(n);
  for (const n of model.graph.initializers.keys()) if (n.startsWith(PERTURBATION_PREFIX)) names.add(n);
  return names;
}
