/**
 * Data against the model it is fed to, checked once right after loading, before any work:
 * - the example shape must be the model's input shape (without the batch axis); a model that
 *   takes NHWC (Keras / TensorFlow exports, [N, H, W, C]) gets the NCHW data transposed, since
 *   feeding NCHW bytes to it trains silently on scrambled pixels;
 * - labels must lie among the model's classes (the last dim of its output);
 * - inputs must be finite, and there must be at least one example.
 * A mismatch names both shapes and the fix.
 */
import type { Dim, Model } from '../graph/ir.js';
import { tensorTypeOf } from '../graph/ir.js';
import { RpOnnxError } from '../errors.js';
import { makeDataset, type Dataset } from './dataset.js';
import { checkFiniteInputs } from './finite.js';

export type Layout = 'nchw' | 'nhwc';
export const LAYOUTS: readonly Layout[] = ['nchw', 'nhwc'];

export interface FitToModelOptions {
  /** The model's input layout; default: detected from its input shape. */
  layout?: Layout;
  /** How the data was given, for messages (e.g. '--data data/'); default: the dataset's name. */
  source?: string;
  /** How the layout choice is spelled for the user (default '--layout'). */
  layoutFlag?: string;
}

const fits = (model: readonly Dim[], data: readonly number[]) =>
  model.length === data.length && model.every((d, i) => typeof d !== 'number' || d === data[i]);

const shapeText = (s: readonly Dim[]) => `[${s.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;

/** `rp-onnx models create NAME` for a model that records its builder, to suggest the exact rebuild. */
function builderName(model: Model): string | null {
  try {
    const b = JSON.parse(model.getMetadata('rp-onnx.builder') ?? 'null') as { model?: unknown } | null;
    return b && typeof b.model === 'string' && /^[a-z0-9]+$/.test(b.model) ? b.model : null;
  } catch {
    return null;
  }
}

/** Examples as a loader or a .npy file gives them: `count` examples of `shape`, row-major. */
export interface Examples {
  readonly data: Float32Array;
  readonly count: number;
  readonly shape: readonly number[];
  readonly labels?: Int32Array;
}

function mismatch(model: Model, inputName: string, declared: readonly Dim[], shape: readonly number[], source: string): RpOnnxError {
  const want = declared.slice(1);
  const wantText = want.map((d) => d ?? '?').join('x');
  const name = builderName(model);
  const [c, h, w] = shape;
  const rebuild = shape.length === 3 && h === w
    ? `rebuild the model for this data (rp-onnx models create ${name ?? 'NAME'} --in-channels ${c} --image-size ${h})`
    : 'rebuild the model for this data';
  return new RpOnnxError(`the model's input '${inputName}' takes ${shapeText(declared)} (examples of ${wantText}) but ${source} has examples of ${shape.join('x')}: ${rebuild} or give data of ${wantText}`);
}

/** NCHW examples -> NHWC, example by example. */
function toNhwc(data: Float32Array, [c, h, w]: readonly number[]): Float32Array {
  const plane = h! * w!;
  const per = c! * plane;
  const out = new Float32Array(data.length);
  for (let base = 0; base < out.length; base += per) {
    for (let ch = 0; ch < c!; ch++) {
      for (let p = 0; p < plane; p++) out[base + p * c! + ch] = data[base + ch * plane + p]!;
    }
  }
  return out;
}

/** Which layout the model's input [N, a, b, c] takes for data [C, H, W]; null when neither fits. */
function chooseLayout(want: readonly Dim[], shape: readonly number[], opts: FitToModelOptions, inputName: string): Layout | null {
  const [c, h, w] = shape as [number, number, number];
  const nchw = fits(want, [c, h, w]);
  const nhwc = fits(want, [h, w, c]);
  if (opts.layout) return (opts.layout === 'nchw' ? nchw : nhwc) ? opts.layout : null;
  if (nchw && !nhwc) return 'nchw';
  if (nhwc && !nchw) return 'nhwc';
  if (!nchw) return null;
  // Both fit. One channel, or an input with no sizes at all: the NCHW bytes are right as they are.
  if (c === 1 || want.every((d) => typeof d !== 'number')) return 'nchw';
  throw new RpOnnxError(`the model's input '${inputName}' ${shapeText(want)} could be NCHW or NHWC for examples of ${c}x${h}x${w}: pass ${opts.layoutFlag ?? '--layout'} nchw or nhwc`);
}

/** The class count of a classifier: the last dim of its first output, when it is a number. */
function outputClasses(model: Model): number | null {
  const out = model.graph.outputs[0];
  try {
    const shape = tensorTypeOf(out?.type)?.shape;
    const last = shape && shape.length >= 2 ? shape[shape.length - 1] : undefined;
    return typeof last === 'number' && last > 0 ? last : null;
  } catch {
    return null;
  }
}

/**
 * Checks `ex` against `model` (see the file comment) and returns the examples as the model
 * takes them: transposed to NHWC, with the model's example shape, for an NHWC model;
 * otherwise `ex` itself. `ex.shape` is taken as [C, H, W] when it has three entries.
 */
export function fitExamplesToModel<T extends Examples>(model: Model, ex: T, opts: FitToModelOptions = {}): T & { layout: Layout | null; classes: number | null } {
  const source = opts.source ?? 'the data';
  if (ex.count === 0) throw new RpOnnxError(`${source} holds no examples`);
  if (opts.layout !== undefined && !LAYOUTS.includes(opts.layout)) {
    throw new RpOnnxError(`${opts.layoutFlag ?? '--layout'} must be nchw or nhwc, got '${String(opts.layout)}'`);
  }
  const per = ex.shape.reduce((a, b) => a * b, 1);
  checkFiniteInputs(ex.data, per, source);
  const input = model.graph.realInputs()[0];
  let declared: Dim[] | null = null;
  try {
    declared = input ? (tensorTypeOf(input.type)?.shape ?? null) : null;
  } catch {
    declared = null; // an element type this build does not know: nothing to check against
  }
  let data = ex.data;
  let shape = ex.shape;
  let layout: Layout | null = null;
  if (input && declared && declared.length === 4 && ex.shape.length === 3) {
    layout = chooseLayout(declared.slice(1), ex.shape, opts, input.name);
    if (layout === null) throw mismatch(model, input.name, declared, ex.shape, source);
    if (layout === 'nhwc') {
      data = toNhwc(ex.data, ex.shape);
      shape = [ex.shape[1]!, ex.shape[2]!, ex.shape[0]!];
    }
  } else if (input && declared && declared.length >= 2) {
    const want = declared.slice(1);
    const sameCount = want.every((d) => typeof d === 'number') && (want as number[]).reduce((a, b) => a * b, 1) === per;
    if (!fits(want, ex.shape) && !sameCount) throw mismatch(model, input.name, declared, ex.shape, source);
  }
  const classes = outputClasses(model);
  if (classes !== null && ex.labels) {
    for (let i = 0; i < ex.labels.length; i++) {
      const l = ex.labels[i]!;
      if (l >= classes) {
        throw new RpOnnxError(`${source}: label ${l} of example ${i} is outside the model's ${classes} classes (0..${classes - 1}); use data labelled for the model, or a model with more classes`);
      }
    }
  }
  return { ...ex, data, shape, layout, classes };
}

/**
 * fitExamplesToModel for a Dataset: the returned dataset holds the model's layout (an NHWC
 * model's examples are [H, W, C], marked `layout: 'nhwc'`) and the model's class count.
 */
export function fitDataToModel(model: Model, ds: Dataset, opts: FitToModelOptions = {}): Dataset {
  if (ds.layout === 'nhwc') return ds;
  const f = fitExamplesToModel(model, { data: ds.images, count: ds.count, shape: ds.shape, labels: ds.labels }, { ...opts, source: opts.source ?? ds.name });
  const classes = f.classes ?? ds.classes;
  if (f.layout !== 'nhwc' && classes === ds.classes) return ds;
  return makeDataset({
    ...ds, images: f.data, classes,
    shape: f.shape as [number, number, number],
    ...(f.layout === 'nhwc' ? { layout: 'nhwc' as const } : {}),
  });
}

/**
 * fitDataToModel over several datasets at once (train and test, members and non-members);
 * undefined entries stay undefined. What the CLI calls right after loading the data.
 */
export function fitSplitsToModel<T extends Record<string, Dataset | undefined>>(model: Model, splits: T, opts: FitToModelOptions = {}): T {
  const out: Record<string, Dataset | undefined> = {};
  for (const [k, ds] of Object.entries(splits)) out[k] = ds && fitDataToModel(model, ds, opts);
  return out as T;
}
