/**
 * Reads the `rp-onnx.training` metadata a trained model carries (written by
 * src/train/training-record.ts: `{ data, examples, steps, epochs, recipe: {...}, examplesUsed,
 * examplesUsedBitmap?, finalTestAccuracy, oneRunAudit? }`), so an audit can retrain shadow models
 * with the recipe that made the target and draw members only from examples training actually
 * used. `examples` and the bitmap count the ordinary examples only: the canaries of
 * `train --audit-canaries` (recorded under `oneRunAudit`, src/audit/one-run-audit.ts) are never
 * members or non-members of an audit.
 *
 * Older files carry the flat form (batch, lr, optimizer, ... at the top level, no seed, no
 * bitmap); a missing bitmap means every one of the `examples` first training examples was used
 * (the old CLI's --limit took the first N in file order).
 */
import { RpOnnxError } from '../errors.js';
import type { Model } from '../graph/ir.js';
import type { TrainingRecipe } from '../train/training-record.js';
import { TRAINING_DEFAULTS } from '../train/defaults.js';
import { ExamplesUsed } from '../train/examples-used.js';

export const TRAINING_METADATA_KEY = 'rp-onnx.training';

/**
 * What shadow training needs to repeat a run: the recipe fields of the record that
 * src/train/training-record.ts writes, with BatchNorm restricted to the modes shadow training
 * runs (every field can be overridden by the caller).
 */
export type ShadowRecipe = Pick<TrainingRecipe, 'epochs' | 'steps' | 'batchSize' | 'lr' | 'optimizer' | 'momentum' | 'weightDecay' | 'schedule' | 'shuffle'> & {
  batchNorm: 'train' | 'frozen';
};

/** The library's training defaults (src/train/defaults.ts), for fields a record lacks. */
export const DEFAULT_RECIPE: ShadowRecipe = {
  epochs: TRAINING_DEFAULTS.epochs, batchSize: TRAINING_DEFAULTS.batchSize, lr: TRAINING_DEFAULTS.lr,
  optimizer: TRAINING_DEFAULTS.optimizer, momentum: TRAINING_DEFAULTS.momentum, weightDecay: TRAINING_DEFAULTS.weightDecay,
  schedule: TRAINING_DEFAULTS.schedule, batchNorm: TRAINING_DEFAULTS.batchNorm, shuffle: TRAINING_DEFAULTS.shuffle,
};

export interface TrainingRecord {
  /** The training data folder as recorded (informative; the caller names the data it audits). */
  data?: string;
  /** Examples in the training set (after --limit). */
  examples: number;
  recipe: Partial<ShadowRecipe>;
  /** Indices (into the training set) of the examples that were in at least one batch. */
  used: number[];
  /** 'bitmap' when the record lists them, 'all' when it does not (every example assumed used). */
  usedFrom: 'bitmap' | 'all';
  finalTestAccuracy?: number | null;
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === 'string';

function recipeFrom(o: Record<string, unknown>): Partial<ShadowRecipe> {
  const r: Partial<ShadowRecipe> = {};
  if (isNum(o.epochs)) r.epochs = o.epochs;
  if (isNum(o.steps)) r.steps = o.steps;
  const batch = o.batchSize ?? o.batch;
  if (isNum(batch)) r.batchSize = batch;
  if (isNum(o.lr)) r.lr = o.lr;
  if (isStr(o.optimizer)) r.optimizer = o.optimizer;
  if (isNum(o.momentum)) r.momentum = o.momentum;
  if (isNum(o.weightDecay)) r.weightDecay = o.weightDecay;
  if (isStr(o.schedule)) r.schedule = o.schedule;
  if (o.batchNorm === 'train' || o.batchNorm === 'frozen') r.batchNorm = o.batchNorm;
  if (typeof o.shuffle === 'boolean') r.shuffle = o.shuffle;
  return r;
}

/** Decodes the base64 bitmap (bit i of byte i >> 3, least significant first) into indices < n. */
export function decodeExampleBitmap(b64: string, n: number): number[] {
  return ExamplesUsed.fromBase64(n, b64, `${TRAINING_METADATA_KEY}: examplesUsedBitmap`).indices();
}

/** The inverse of decodeExampleBitmap (for tests and writers). */
export function encodeExampleBitmap(used: Iterable<number>, n: number): string {
  const e = new ExamplesUsed(n);
  e.mark([...used]);
  return e.toBase64();
}

/** Parses the metadata value; `source` names the model in errors. */
export function parseTrainingRecord(json: string, source = 'model'): TrainingRecord {
  let o: unknown;
  try {
    o = JSON.parse(json);
  } catch {
    throw new RpOnnxError(`${source}: metadata ${TRAINING_METADATA_KEY} is not JSON`);
  }
  if (typeof o !== 'object' || o === null) throw new RpOnnxError(`${source}: metadata ${TRAINING_METADATA_KEY} is not a JSON object`);
  const rec = o as Record<string, unknown>;
  const examples = rec.examples;
  if (!isNum(examples) || !Number.isInteger(examples) || examples < 1) throw new RpOnnxError(`${source}: metadata ${TRAINING_METADATA_KEY} lacks a positive integer 'examples'`);
  // New form: the recipe in its own object; old flat form: the same fields at the top level.
  const recipe = typeof rec.recipe === 'object' && rec.recipe !== null ? recipeFrom(rec.recipe as Record<string, unknown>) : recipeFrom(rec);
  // The run's own counts win over the recipe's request for epochs (a --steps run records both).
  if (recipe.epochs === undefined && recipe.steps === undefined && isNum(rec.epochs)) recipe.epochs = rec.epochs;
  const bitmap = rec.examplesUsedBitmap;
  const used = isStr(bitmap) ? decodeExampleBitmap(bitmap, examples) : Array.from({ length: examples }, (_, i) => i);
  return {
    ...(isStr(rec.data) ? { data: rec.data } : {}), examples, recipe, used, usedFrom: isStr(bitmap) ? 'bitmap' : 'all',
    ...(isNum(rec.finalTestAccuracy) || rec.finalTestAccuracy === null ? { finalTestAccuracy: rec.finalTestAccuracy as number | null } : {}),
  };
}

/** The model's training record, or undefined when it has none. */
export function readTrainingRecord(model: Model, source = 'model'): TrainingRecord | undefined {
  const v = model.getMetadata(TRAINING_METADATA_KEY);
  return v === undefined ? undefined : parseTrainingRecord(v, source);
}

/** Fills a partial recipe with the defaults; `steps` wins over `epochs` only when epochs is absent. */
export function completeRecipe(...parts: Partial<ShadowRecipe>[]): ShadowRecipe {
  const r: ShadowRecipe = { ...DEFAULT_RECIPE };
  for (const p of parts) {
    for (const [k, v] of Object.entries(p)) if (v !== undefined) (r as unknown as Record<string, unknown>)[k] = v;
    // An explicit choice of one budget drops the other.
    if (p.steps !== undefined && p.epochs === undefined) delete r.epochs;
    if (p.epochs !== undefined && p.steps === undefined) delete r.steps;
  }
  return r;
}
