/**
 * Gradient check shared by the autodiff tests: the gradients our autodiff emits (run in
 * onnxruntime, float32) against central finite differences of the same forward graph.
 *
 * The scalar checked is L = sum_o sum(output_o * R_o) for fixed random R_o, so every element of
 * every output matters and the seed gradient of output o is simply R_o. Finite differences are
 * computed in float64 with the reference interpreter (src/reference/interpreter.ts) when it
 * implements every op of the graph, else in onnxruntime float32 with a larger step and looser
 * tolerance.
 *
 *     const r = await gradcheck({ model, wrt: ['W', 'B'], inputs: { X: { dims: [2, 3], data } } });
 *     assert.ok(r.ok, r.report);
 */
import * as ort from 'onnxruntime-node';
import { Graph, Model, Node, makeTensorTypeProto, type Dim } from '../../src/graph/ir.js';
import { GraphBuilder } from '../../src/graph/builder.js';
import { onnx } from '../../src/graph/onnx.js';
import { encodeModel } from '../../src/graph/io.js';
import { makeTensor, tensorDims, tensorToArray, elementCount } from '../../src/graph/tensor.js';
import { Random } from '../../src/random.js';
import { differentiate } from '../../src/passes/autodiff/engine.js';
import { paramsAsInputs } from '../../src/passes/params-as-inputs.js';
import { inferShapes } from '../../src/graph/shape-inference.js';
import { evaluate, isSupported, type RefTensor } from '../../src/reference/interpreter.js';

export interface Feed {
  dims: number[];
  data: Float32Array | BigInt64Array;
}

export interface GradcheckOptions {
  /** The forward model (initializers hold parameter values). */
  model: Model;
  /** Initializers and/or graph inputs whose gradients are checked. */
  wrt: string[];
  /** Values of the graph's (non-initializer) inputs. */
  inputs?: Record<string, Feed>;
  /** Elements probed per checked tensor (random subset), default 10. */
  probes?: number;
  seed?: number;
  /** Force the float32 onnxruntime finite differences even when the interpreter exists. */
  mode?: 'float64' | 'float32';
  rtol?: number;
}

export interface Probe {
  name: string;
  index: number;
  analytic: number;
  numeric: number;
}

export interface GradcheckResult {
  ok: boolean;
  mode: 'float64' | 'float32';
  worst: number;
  probes: Probe[];
  report: string;
  /** The full analytic gradients. */
  gradients: Map<string, Float32Array>;
}


export async function runOrt(model: Model, feeds: Record<string, Feed>, outputs?: string[]): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(encodeModel(model.toProto()), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) {
      f[k] = new ort.Tensor(v.data instanceof BigInt64Array ? 'int64' : 'float32', v.data, v.dims);
    }
    const out = await session.run(f, outputs ?? session.outputNames);
    return out as Record<string, ort.Tensor>;
  } finally {
    await session.release();
  }
}

type Evaluator = (feeds: Record<string, Feed>, overrides: Map<string, Float64Array>) => Promise<Map<string, Float64Array>>;

/**
 * Static shapes as the training-graph builder sees them (shape inference on a copy of the
 * model); `inputs` is accepted for callers that pass their feeds and is not needed.
 */
export async function shapesFor(model: Model, _inputs?: Record<string, Feed>): Promise<(v: string) => Dim[] | null> {
  const m = model.clone();
  const types = inferShapes(m.graph, { opset: m.opset('') });
  return (v) => types.get(v)?.shape ?? null;
}

/** Float64 finite differences through the reference interpreter. */
function interpreterEvaluator(model: Model): Evaluator {
  const g = model.graph;
  const outputs = g.outputs.map((o) => o.name);
  const opset = model.opset('');
  return async (feeds, overrides) => {
    const f: Record<string, RefTensor> = {};
    const inits: Record<string, RefTensor> = {};
    for (const [k, v] of Object.entries(feeds)) {
      const t: RefTensor = v.data instanceof BigInt64Array ? { dims: v.dims, data: v.data, dtype: 'int64' } : { dims: v.dims, data: Float64Array.from(overrides.get(k) ?? v.data), dtype: 'float64' };
      if (g.initializers.has(k)) inits[k] = t;
      else f[k] = t;
    }
    const out = evaluate(g, f, { outputs, opset, initializerOverrides: inits });
    return new Map(outputs.map((o) => [o, Float64Array.from(out[o]!.data as Float64Array)]));
  };
}

/** Float32 finite differences through onnxruntime (for ops the interpreter lacks). */
function ortEvaluator(model: Model, wrt: string[]): Evaluator {
  const fwd = paramsAsInputs(model, wrt);
  let session: ort.InferenceSession | undefined;
  return async (feeds, overrides) => {
    session ??= await ort.InferenceSession.create(encodeModel(fwd.toProto()), { intraOpNumThreads: 1 });
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) {
      const data = overrides.has(k) ? Float32Array.from(overrides.get(k)!) : v.data;
      f[k] = new ort.Tensor(data instanceof BigInt64Array ? 'int64' : 'float32', data, v.dims);
    }
    const out = await session.run(f);
    return new Map(Object.entries(out).map(([k, t]) => [k, Float64Array.from(t.data as Float32Array)]));
  };
}

export async function gradcheck(opts: GradcheckOptions): Promise<GradcheckResult> {
  const rng = new Random(opts.seed ?? 1234);
  const model = opts.model;
  const g0 = model.graph;
  const inputs = opts.inputs ?? {};

  // Current values of everything checked, and every feed of the forward model.
  const feeds: Record<string, Feed> = { ...inputs };
  for (const w of opts.wrt) {
    const t = g0.initializers.get(w);
    if (t) feeds[w] = { dims: tensorDims(t), data: Float32Array.from(tensorToArray(t) as Float32Array) };
    else if (!feeds[w]) throw new Error(`gradcheck: '${w}' is neither an initializer nor a given input`);
  }

  // Analytic: seed each output with a random R (stored as float32 so both sides use the same R).
  const train = model.clone();
  const g = train.graph;
  const types = inferShapes(g, { opset: train.opset('') });
  const shapes = (v: string) => types.get(v)?.shape ?? null;
  const outNames = g.outputs.map((o) => o.name);
  const outShapes = (await runOrt(model, inputs));
  const R = new Map<string, Float64Array>();
  const seeds = new Map<string, string>();
  for (const o of outNames) {
    const dims = [...outShapes[o]!.dims];
    const r = new Float32Array(elementCount(dims));
    rng.fillNormal(r);
    R.set(o, Float64Array.from(r));
    const name = g.uniqueName(`R_${o}`);
    g.addInitializer(makeTensor(name, dims, r));
    seeds.set(o, name);
  }
  const grads = differentiate(g, { wrt: opts.wrt, seeds, opset: train.opset(''), shapeOf: shapes });
  const gradOut = opts.wrt.map((w) => {
    const src = grads.get(w);
    if (!src) throw new Error(`gradcheck: no gradient reached '${w}'`);
    const name = g.uniqueName(`grad_${w}`);
    g.addNode(newIdentity(src, name));
    return name;
  });
  g.outputs = gradOut.map((name) => ({ name, type: null }));
  g.valueInfo.clear();
  g.removeDeadCode();
  const analytic = await runOrt(train, inputs);
  const gradients = new Map(opts.wrt.map((w, i) => [w, analytic[gradOut[i]!]!.data as Float32Array]));

  // Numeric.
  const interpretable = model.graph.nodes.every((n) => isSupported(n));
  const interp = opts.mode === 'float32' || !interpretable ? null : interpreterEvaluator(model);
  const mode = interp ? 'float64' : 'float32';
  const evalFn = interp ?? ortEvaluator(model, opts.wrt);
  const loss = async (overrides: Map<string, Float64Array>) => {
    const out = await evalFn(feeds, overrides);
    let s = 0;
    for (const [o, r] of R) {
      const y = out.get(o)!;
      for (let i = 0; i < r.length; i++) s += y[i]! * r[i]!;
    }
    return s;
  };
  const rtol = opts.rtol ?? (mode === 'float64' ? 1e-3 : 3e-2);
  const lines: string[] = [];
  if (interp) {
    // The interpreter must compute the forward that onnxruntime runs, or the check is moot.
    const ref = await interp(feeds, new Map());
    for (const o of outNames) {
      const a = outShapes[o]!.data as Float32Array;
      const e = ref.get(o)!;
      let worstFwd = 0;
      let scale = 0;
      for (let i = 0; i < e.length; i++) scale = Math.max(scale, Math.abs(e[i]!));
      for (let i = 0; i < e.length; i++) worstFwd = Math.max(worstFwd, Math.abs(a[i]! - e[i]!) / Math.max(scale, 1e-30));
      if (worstFwd > 1e-4) lines.push(`forward output '${o}': onnxruntime and the reference interpreter differ (max rel ${worstFwd.toExponential(2)})`);
    }
  }
  const probes: Probe[] = [];
  let worst = 0;
  for (const w of opts.wrt) {
    const base = Float64Array.from(feeds[w]!.data as Float32Array);
    const ga = gradients.get(w)!;
    let scale = 0;
    for (const v of ga) scale = Math.max(scale, Math.abs(v));
    const n = base.length;
    const count = Math.min(n, opts.probes ?? 10);
    const picked = n <= count ? Array.from({ length: n }, (_, i) => i) : [...rng.permutation(n).slice(0, count)];
    for (const idx of picked) {
      const h = mode === 'float64' ? 1e-6 * Math.max(1, Math.abs(base[idx]!)) : 1e-2 * Math.max(1, Math.abs(base[idx]!));
      const plus = Float64Array.from(base);
      plus[idx] = base[idx]! + h;
      const minus = Float64Array.from(base);
      minus[idx] = base[idx]! - h;
      const numeric = ((await loss(new Map([[w, plus]]))) - (await loss(new Map([[w, minus]])))) / (2 * h);
      const a = ga[idx]!;
      const err = Math.abs(a - numeric) / Math.max(Math.abs(a), Math.abs(numeric), 0.1 * scale, 1e-6);
      worst = Math.max(worst, err);
      probes.push({ name: w, index: idx, analytic: a, numeric });
      if (err > rtol) lines.push(`${w}[${idx}]: analytic ${a.toPrecision(7)} numeric ${numeric.toPrecision(7)} (rel ${err.toExponential(2)})`);
    }
  }
  const ok = lines.length === 0;
  const report = ok
    ? `gradcheck ok (${mode}, worst rel ${worst.toExponential(2)}, ${probes.length} probes)`
    : `gradcheck failed (${mode}, rtol ${rtol}):\n${lines.slice(0, 12).join('\n')}`;
  return { ok, mode, worst, probes, report, gradients };
}

function newIdentity(input: string, output: string): Node {
  return new Node({ opType: 'Identity', inputs: [input], outputs: [output] });
}

export interface ModelSpec {
  opset?: number;
  inputs: { name: string; dims: Dim[]; dtype?: 'float32' | 'int64' }[];
  outputs: string[];
  build: (b: GraphBuilder) => void;
}

/** A small model built with the GraphBuilder (IR 9, default-domain opset 17 unless given). */
export function buildModel(spec: ModelSpec): Model {
  const g = new Graph({ name: 'test' });
  g.inputs = spec.inputs.map((i) => ({ name: i.name, type: makeTensorTypeProto({ dtype: i.dtype ?? 'float32', shape: i.dims }) }));
  spec.build(new GraphBuilder(g));
  g.outputs = spec.outputs.map((name) => ({ name, type: null }));
  const proto = onnx.ModelProto.create({ irVersion: 9, producerName: 'rp-onnx-test', opsetImport: [{ domain: '', version: spec.opset ?? 17 }] });
  return new Model(proto, g);
}

/** Random float32 data, N(0, std^2). */
export function randn(rng: Random, dims: number[], std = 1): Float32Array {
  const a = new Float32Array(elementCount(dims));
  rng.fillNormal(a, std);
  return a;
}
