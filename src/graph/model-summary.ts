/**
 * A model at a glance, for `rp-onnx inspect`: format versions, producer, the real inputs and
 * outputs, how many parameters it holds, which ops it uses, its residual blocks (the places
 * residual perturbation would inject noise), and what rp-onnx recorded in it.
 */
import type { Dim, Model, TensorType, ValueInfo } from './ir.js';
import { tensorTypeOf } from './ir.js';
import { elementCount, tensorDims, dtypeName, isFloatDType } from './tensor.js';
import { findResidualBlocks, type ResidualBlock } from './residual-finder.js';
import { perturbationInitializers, readRecordedMetadata, type RecordedMetadata } from './rp-metadata.js';

export interface ValueSummary {
  name: string;
  /** Element type ('float32', 'int64', ...), or null when the model does not declare one. */
  dtype: string | null;
  /** Dimensions (numbers, symbolic names, null for unnamed unknowns), or null for unknown rank. */
  shape: Dim[] | null;
}

export interface ModelSummary {
  irVersion: number;
  /** Opset version by domain; the default ONNX domain is listed as 'ai.onnx'. */
  opsets: Record<string, number>;
  /** producer_name and producer_version, e.g. 'pytorch 1.13.0' ('' when not recorded). */
  producer: string;
  /** Graph inputs that are not initializers: what a caller feeds. */
  inputs: ValueSummary[];
  outputs: ValueSummary[];
  /** Elements of floating-point initializers (see PARAMETERS_COUNTED). */
  parameters: number;
  /** Elements of the perturbation's constants (gamma), left out of `parameters`. */
  perturbationConstants: number;
  /** Node count per op type in the main graph, most frequent first; other domains as 'domain:Op'. */
  ops: Record<string, number>;
  residualBlocks: ResidualBlock[];
  /** What rp-onnx recorded in metadata_props: perturbation, privacy statement, training record. */
  recorded: RecordedMetadata;
}

/** What `parameters` counts, in words, for people reading the output. */
export const PARAMETERS_COUNTED =
  'elements of floating-point initializers: weights, biases and BatchNorm statistics; integer initializers, Constant nodes and the perturbation\'s gamma constants are not counted';

function valueSummary(v: ValueInfo): ValueSummary {
  let t: TensorType | null = null;
  try {
    t = tensorTypeOf(v.type);
  } catch {
    t = null; // an element type this build does not know
  }
  return { name: v.name, dtype: t && t.dtype !== 'undefined' ? t.dtype : null, shape: t?.shape ?? null };
}

export function summarizeModel(model: Model): ModelSummary {
  const g = model.graph;
  const opsets: Record<string, number> = {};
  for (const [domain, version] of model.opsets) opsets[domain === '' ? 'ai.onnx' : domain] = version;

  const recorded = readRecordedMetadata(model);
  const inserted = perturbationInitializers(model, recorded);
  let parameters = 0;
  let perturbationConstants = 0;
  for (const [name, t] of g.initializers) {
    let dtype: string;
    try {
      dtype = dtypeName(t.dataType);
    } catch {
      continue;
    }
    if (!isFloatDType(dtype)) continue;
    if (inserted.has(name)) perturbationConstants += elementCount(tensorDims(t));
    else parameters += elementCount(tensorDims(t));
  }

  const counts = new Map<string, number>();
  for (const n of g.nodes) {
    const key = n.isStandard ? n.opType : `${n.domain}:${n.opType}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const ops = Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));

  const producer = [model.proto.producerName, model.proto.producerVersion].filter((s) => s).join(' ');
  return {
    irVersion: model.irVersion,
    opsets,
    producer,
    inputs: g.realInputs().map(valueSummary),
    outputs: g.outputs.map(valueSummary),
    parameters,
    perturbationConstants,
    ops,
    residualBlocks: findResidualBlocks(g, { opset: model.opset() || undefined }),
    recorded,
  };
}
