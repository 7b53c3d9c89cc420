/**
 * The graphs of the optimization-based gradient-leakage attacks (DLG, iDLG, Inverting
 * Gradients), built by our autodiff applied twice:
 *
 *   gradient graph: x, label -> dL/dtheta for every parameter theta (L the model's softmax
 *                   cross-entropy on one example; the gradient a training step shares);
 *   matching graph: x', label (or DLG's label logits), the observed gradient g ->
 *                   M(x') = L2:     sum_theta |dL(x')/dtheta - g_theta|^2            (DLG, iDLG)
 *                           cosine: 1 - <dL(x')/dtheta, g> / (|dL(x')/dtheta| |g|)  (Geiping et al.,
 *                                   one cosine over all parameters together, computed as half the
 *                                   squared distance of the unit vectors)
 *                   and dM/dx' (and dM/d label logits), by differentiating the gradient graph's
 *                   own nodes (the rules are closed under themselves, see test/autodiff-second-order).
 *
 * Batch of one, static shapes. DLG's soft label: the cross-entropy against softmax(label logits),
 * whose gradient with respect to the logits is softmax(logits) - softmax(label logits); with a
 * class label it is softmax(logits) - onehot(label). The total-variation prior of Inverting
 * Gradients is image arithmetic and lives in TypeScript (./gradient-inversion.ts).
 */
import { Model, makeTensorTypeProto, type Graph } from '../graph/ir.js';
import { GraphBuilder } from '../graph/builder.js';
import { dtypeName, tensorDims } from '../graph/tensor.js';
import { inferShapes } from '../graph/shape-inference.js';
import { differentiate } from '../passes/autodiff/engine.js';
import { crossEntropyLoss } from '../passes/autodiff/loss.js';
import { RpOnnxError } from '../errors.js';

export type MatchingLoss = 'l2' | 'cosine';

export interface AttackParam {
  name: string;
  shape: number[];
}

export interface InversionGraphs {
  /** x [1, ...example], label int64 [1] -> one output per parameter (same order as `params`). */
  gradient: Model;
  /** Inputs: x, then the label ('label' int64 [1]) or 'label_logits' [1, K], then 'obs/<param>'. */
  matching: Model;
  input: string;
  exampleShape: number[];
  classes: number;
  params: AttackParam[];
  /** Output names of the gradient graph, per parameter. */
  gradientOutputs: string[];
  /** Matching-graph outputs: the loss, its gradient w.r.t. x', and w.r.t. the label logits (soft labels only). */
  outputs: { loss: string; dx: string; dLabel?: string };
  /** Matching-graph inputs holding the observed gradient, per parameter. */
  observedInputs: string[];
  labelInput: string;
  /** The parameter and layout iDLG reads the label from (the last layer's bias or weight). */
  lastLayer: { param: string; kind: 'bias' | 'rows' | 'columns' };
}

const FLOAT = new Set(['float32', 'float64']);

/** The model with its data input fixed to batch 1 and stale recorded shapes dropped. */
function batchOfOne(model: Model): { m: Model; input: string; exampleShape: number[]; logits: string } {
  const m = model.clone();
  const g = m.graph;
  const inputs = g.realInputs();
  if (inputs.length !== 1) throw new RpOnnxError(`gradient-leakage attacks need a model with one data input, this one has ${inputs.length}`);
  const input = inputs[0]!.name;
  const t = g.typeOf(input);
  const rest = t?.shape?.slice(1);
  if (!t || !rest || rest.length === 0 || rest.some((d) => typeof d !== 'number')) {
    throw new RpOnnxError(`gradient-leakage attacks need a static example shape for input '${input}', got [${(t?.shape ?? []).join(', ')}]`);
  }
  if (!FLOAT.has(t.dtype)) throw new RpOnnxError(`input '${input}' has type ${t.dtype}; gradient-leakage attacks reconstruct float inputs`);
  g.setType(input, { dtype: t.dtype, shape: [1, ...(rest as number[])] });
  const logits = g.outputs[0]?.name;
  if (!logits) throw new RpOnnxError('the model has no outputs');
  g.outputs = [{ name: logits, type: null }];
  g.valueInfo.clear();
  return { m, input, exampleShape: rest as number[], logits };
}

/** Float initializers (rank >= 1) other than BatchNormalization running statistics. */
function parameterCandidates(g: Graph): string[] {
  const stats = new Set<string>();
  for (const n of g.nodes) if (n.opType === 'BatchNormalization') for (const v of n.inputs.slice(3, 5)) stats.add(v);
  return [...g.initializers].filter(([name, t]) => FLOAT.has(dtypeName(t.dataType)) && tensorDims(t).length > 0 && !stats.has(name)).map(([name]) => name);
}

/** Where iDLG reads the label: the logits' producer (through layout ops) and its parameters. */
function findLastLayer(g: Graph, logits: string, params: ReadonlySet<string>): InversionGraphs['lastLayer'] {
  let v = logits;
  for (let p = g.producer(v); p; p = g.producer(v)) {
    if (p.opType === 'Gemm') {
      const [, w, c] = p.inputs;
      if (c && params.has(c)) return { param: c, kind: 'bias' };
      if (w && params.has(w) && p.getInt('transA', 0) === 0) return { param: w, kind: p.getInt('transB', 0) ? 'rows' : 'columns' };
      break;
    }
    if (p.opType === 'Add') {
      const c = p.inputs.find((x) => params.has(x));
      if (c) return { param: c, kind: 'bias' };
      break;
    }
    if (p.opType === 'MatMul') {
      const w = p.inputs[1];
      if (w && params.has(w)) return { param: w, kind: 'columns' };
      break;
    }
    if (!['Identity', 'Flatten', 'Reshape', 'Squeeze'].includes(p.opType)) break;
    v = p.inputs[0]!;
  }
  throw new RpOnnxError('iDLG reads the label from the gradient of the last layer, but the logits do not come from a Gemm, MatMul or bias Add with trainable parameters');
}

function differentiateParams(m: Model, logits: string, dLogits: string, prefix: string): Map<string, string> {
  const g = m.graph;
  const opset = m.opset('') || 17;
  const types = inferShapes(g, { opset });
  return differentiate(g, { wrt: parameterCandidates(g), seeds: new Map([[logits, dLogits]]), opset, shapeOf: (v) => types.get(v)?.shape ?? null, prefix });
}

export function buildInversionGraphs(model: Model, opts: { loss: MatchingLoss; softLabel: boolean }): InversionGraphs {
  // Gradient graph.
  const base = batchOfOne(model);
  const { input, exampleShape, logits } = base;
  const gm = base.m;
  const gg = gm.graph;
  const opset = gm.opset('') || 17;
  const classesDim = inferShapes(gg, { opset, record: false }).get(logits)?.shape;
  const classes = classesDim?.length === 2 && typeof classesDim[1] === 'number' ? classesDim[1] : NaN;
  if (!Number.isInteger(classes)) throw new RpOnnxError(`the model's output '${logits}' must be logits of shape [batch, classes], got [${(classesDim ?? []).join(', ')}]`);
  const gb = new GraphBuilder(gg, 'attack/');
  gg.inputs.push({ name: 'label', type: makeTensorTypeProto({ dtype: 'int64', shape: [1] }) });
  const ce = crossEntropyLoss(gb, logits, 'label', opset);
  const grads = differentiateParams(gm, logits, ce.dLogits, 'grad/');
  if (grads.size === 0) throw new RpOnnxError('no parameter of the model affects its logits: there is no gradient to attack');
  const params: AttackParam[] = [...grads.keys()].map((name) => ({ name, shape: tensorDims(gg.initializers.get(name)!) }));
  const gradientOutputs = params.map((p) => gg.uniqueName(`grad_${p.name}`));
  params.forEach((p, i) => { gb.op('Identity', [grads.get(p.name)!], {}, { outputs: [gradientOutputs[i]!] }); });
  gg.outputs = gradientOutputs.map((name) => ({ name, type: null }));
  const lastLayer = findLastLayer(gg, logits, new Set(grads.keys()));
  gg.valueInfo.clear();
  gg.removeDeadCode();
  gg.toposort();

  // Matching graph.
  const mb = batchOfOne(model);
  const mm = mb.m;
  const g = mm.graph;
  const b = new GraphBuilder(g, 'attack/');
  let labelInput: string;
  let dLogits: string;
  if (opts.softLabel) {
    labelInput = 'label_logits';
    g.inputs.push({ name: labelInput, type: makeTensorTypeProto({ dtype: 'float32', shape: [1, classes] }) });
    // d CE(logits; softmax(l)) / d logits = softmax(logits) - softmax(l) (the target sums to 1).
    dLogits = b.op1('Sub', [b.op1('Softmax', [logits], { axis: 1 }), b.op1('Softmax', [labelInput], { axis: 1 })]);
  } else {
    labelInput = 'label';
    g.inputs.push({ name: labelInput, type: makeTensorTypeProto({ dtype: 'int64', shape: [1] }) });
    dLogits = crossEntropyLoss(b, logits, labelInput, opset).dLogits;
  }
  const dummy = differentiateParams(mm, logits, dLogits, 'grad/');
  const observedInputs = params.map((p) => {
    const name = g.uniqueName(`obs/${p.name}`);
    g.inputs.push({ name, type: makeTensorTypeProto({ dtype: 'float32', shape: p.shape }) });
    return name;
  });
  const sumAll = (v: string) => b.op1('ReduceSum', [v], { keepdims: 0 });
  const sum = (vs: string[]) => (vs.length === 1 ? vs[0]! : b.op1('Sum', vs));
  let loss: string;
  if (opts.loss === 'l2') {
    loss = sum(params.map((p, i) => {
      const d = b.op1('Sub', [dummy.get(p.name)!, observedInputs[i]!]);
      return sumAll(b.op1('Mul', [d, d]));
    }));
  } else {
    // 1 - cos(g', g) = |g'/|g'| - g/|g||^2 / 2. The difference of unit vectors keeps the loss (and
    // its gradient) accurate in float32 down to ~1e-14; 1 - <g', g>/(|g'| |g|) stalls at float32's
    // 1e-7, where the reconstruction is still visibly off. The tiny floor keeps a zero gradient
    // (saturated sigmoids) finite.
    const tiny = b.scalar('tiny', 1e-30);
    const norm = (vs: string[]) => b.op1('Max', [b.op1('Sqrt', [sum(vs.map((v) => sumAll(b.op1('Mul', [v, v]))))]), tiny]);
    const nd = norm(params.map((p) => dummy.get(p.name)!));
    const no = norm(observedInputs);
    const half = sum(params.map((p, i) => {
      const d = b.op1('Sub', [b.op1('Div', [dummy.get(p.name)!, nd]), b.op1('Div', [observedInputs[i]!, no])]);
      return sumAll(b.op1('Mul', [d, d]));
    }));
    loss = b.op1('Mul', [half, b.scalar('half', 0.5)]);
  }
  const wrt = opts.softLabel ? [input, labelInput] : [input];
  const types = inferShapes(g, { opset });
  const second = differentiate(g, { wrt, seeds: new Map([[loss, b.scalar('seed', 1)]]), opset, shapeOf: (v) => types.get(v)?.shape ?? null, prefix: 'match/' });
  const dxSrc = second.get(input);
  if (!dxSrc) throw new RpOnnxError('the matching loss does not depend on the input: nothing to reconstruct');
  const named = (src: string, name: string) => { b.op('Identity', [src], {}, { outputs: [name] }); return name; };
  const outputs = {
    loss: named(loss, 'matching_loss'),
    dx: named(dxSrc, 'd_matching_d_input'),
    ...(opts.softLabel && second.get(labelInput) ? { dLabel: named(second.get(labelInput)!, 'd_matching_d_label') } : {}),
  };
  g.outputs = Object.values(outputs).map((name) => ({ name, type: null }));
  g.valueInfo.clear();
  g.removeDeadCode();
  g.toposort();
  return { gradient: gm, matching: mm, input, exampleShape, classes, params, gradientOutputs, outputs, observedInputs, labelInput, lastLayer };
}
