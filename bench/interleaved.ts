/**
 * Variants of one computation timed in interleaved rounds in one process (the micro-benchmarks'
 * shared loop): each session is created, run once (warm-up; its outputs kept for comparison),
 * then every round runs each variant once. Prints, per variant, the median, the ratio to the first
 * and the largest output difference from the first relative to the first's largest value.
 */
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../src/graph/io.js';
import type { Model } from '../src/graph/ir.js';
import { median } from './result.js';

export interface Variant {
  label: string;
  /** A model (sessions made with `options`) or bytes with its own options. */
  model: Model | Uint8Array;
  options?: ort.InferenceSession.SessionOptions;
}

export interface Timed {
  label: string;
  times: number[];
  outputs: ort.InferenceSession.ReturnType;
}

export async function timeInterleaved(variants: readonly Variant[], feeds: Record<string, ort.Tensor>, rounds: number, options: ort.InferenceSession.SessionOptions = {}): Promise<Timed[]> {
  const runs = await Promise.all(variants.map(async (v) => {
    const session = await ort.InferenceSession.create(v.model instanceof Uint8Array ? v.model : encodeModel(v.model.toProto()), v.options ?? options);
    const own = Object.fromEntries(session.inputNames.map((n) => [n, feeds[n]!]));
    return { label: v.label, session, feeds: own, times: [] as number[], outputs: await session.run(own) };
  }));
  for (let i = 0; i < rounds; i++) {
    for (const r of runs) {
      const t0 = performance.now();
      await r.session.run(r.feeds);
      r.times.push(performance.now() - t0);
    }
  }
  await Promise.all(runs.map((r) => r.session.release()));
  return runs.map(({ label, times, outputs }) => ({ label, times, outputs }));
}

/** Largest |a - b| over every output (in output order: names may differ), relative to the largest |a| of that output. */
function outputDifference(a: ort.InferenceSession.ReturnType, b: ort.InferenceSession.ReturnType): number {
  const bs = Object.values(b);
  let worst = 0;
  for (const [k, t] of Object.values(a).entries()) {
    const x = t.data as Float32Array, y = bs[k]!.data as Float32Array;
    let num = 0, den = 0;
    for (let i = 0; i < x.length; i++) { num = Math.max(num, Math.abs(x[i]! - y[i]!)); den = Math.max(den, Math.abs(x[i]!)); }
    worst = Math.max(worst, num / (den || 1));
  }
  return worst;
}

export function printTimed(runs: readonly Timed[], indent = ''): void {
  const b0 = median(runs[0]!.times);
  const width = Math.max(...runs.map((r) => r.label.length)) + 2;
  for (const r of runs) {
    console.log(`${indent}${r.label.padEnd(width)} median ${median(r.times).toFixed(2).padStart(8)} ms  ratio ${(median(r.times) / b0).toFixed(3)}  max |diff| / max ${outputDifference(runs[0]!.outputs, r.outputs).toExponential(1)}`);
  }
}
