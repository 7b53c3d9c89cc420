/**
 * Residual perturbation (Tao, Ling, Shi, Wang): Gaussian noise at every residual mapping, so a
 * ResNet's forward pass x_{l+1} = x_l + F(x_l) becomes a discretised SDE.
 * - Strategy I (additive):        out = skip + F(x) + s * n
 * - Strategy II (multiplicative): out = skip + F(x) + s * skip ⊙ n
 * with n ~ N(0, I) drawn by a RandomNormalLike shaped like F(x) (fresh for every element, every
 * example and every run), and s = gamma ('absolute') or gamma times the per-example standard
 * deviation of F(x) over all non-batch axes ('std'). In Strategy II the state multiplying the
 * noise is the skip operand: the block input x itself for identity skips, and x brought to the
 * output's shape where a projection changes it (x ⊙ n is otherwise undefined).
 *
 * The pass is a rewrite value (src/passes/rewrite.ts): pattern = the residual blocks the finder
 * reports, condition = the block is selected and its operands can carry the noise, replacement =
 * the noise nodes. The residual Add keeps its node but writes to `rp/<block>/sum`; the new
 * `rp/<block>/add` writes the Add's original output name, so every consumer, graph output and
 * value_info entry stays valid untouched, and `strip` only has to undo the rename.
 */
import { Graph, type Model, type Node, type TensorType } from '../graph/ir.js';
import { GraphBuilder, float, reduceMeanArgs } from '../graph/builder.js';
import { dtypeCode, isFloatDType, type DType } from '../graph/tensor.js';
import { findResidualBlocks, type ResidualBlock } from '../graph/residual-finder.js';
import { inferShapes } from '../graph/shape-inference.js';
import { RpOnnxError } from '../errors.js';
import { Random } from '../random.js';
import { DistinctSeeds } from '../node-seeds.js';
import { applyRewrite, type Rewrite } from './rewrite.js';

export type Strategy = 'I' | 'II';
export type NoiseScale = 'absolute' | 'std';
export const STRATEGIES: readonly Strategy[] = ['I', 'II'];
export const NOISE_SCALES: readonly NoiseScale[] = ['absolute', 'std'];

export const VERSION_KEY = 'rp-onnx.version';
export const PERTURBATION_KEY = 'rp-onnx.perturbation';
export const SEED_KEY = 'rp-onnx.seed';
/** Prefix of every node, tensor and initializer the pass inserts. */
export const NAME_PREFIX = 'rp/';

export interface PerturbOptions {
  /** One value for every selected block, or one per selected block (in block order). */
  gamma: number | number[];
  strategy: Strategy;
  scale: NoiseScale;
  /** Block indices or Add node names (or Add output names); default: every residual block. */
  blocks?: (number | string)[];
  /** Writes seed attributes derived from this number (plain onnxruntime then repeats the noise). */
  seed?: number;
  /** Perturb a model that is already perturbed (adds a second layer of noise). */
  force?: boolean;
  /** rp-onnx version recorded in metadata_props. */
  toolVersion: string;
}

/** What the pass did to one residual block; recorded in metadata so `strip` can undo it exactly. */
export interface PerturbedBlock {
  /** Index of the block among the residual blocks of the input model. */
  index: number;
  /** The residual Add node's name (its output name when unnamed). */
  add: string;
  /** The Add's original output tensor (now written by `rp/<block>/add`). */
  output: string;
  /** What the Add writes now. */
  sum: string;
  blockInput: string;
  branch: string;
  skip: string;
  skipKind: 'identity' | 'projection';
  gamma: number;
  strategy: Strategy;
  scale: NoiseScale;
  /** Name of the RandomNormalLike node. */
  noiseNode: string;
  /** Seed attribute written on the noise node (only with `seed`). */
  seed?: number;
  /** Every inserted node and initializer, by name. */
  nodes: string[];
  initializers: string[];
}

/** The JSON stored under 'rp-onnx.perturbation'. */
export interface PerturbationRecord {
  strategy: Strategy;
  scale: NoiseScale;
  seed: number | null;
  /** 'rp-onnx.version' before the first perturbation (null when absent), restored by strip. */
  previousVersion: string | null;
  blocks: PerturbedBlock[];
}

export interface PerturbResult {
  model: Model;
  blocks: PerturbedBlock[];
}

/** The perturbation record of a model, or null when it was not perturbed by rp-onnx. */
export function readPerturbation(model: Model): PerturbationRecord | null {
  const text = model.getMetadata(PERTURBATION_KEY);
  if (text === undefined) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new RpOnnxError(`metadata '${PERTURBATION_KEY}' is not valid JSON; the file was edited by hand or by another tool`);
  }
  const r = parsed as Partial<PerturbationRecord>;
  if (!r || typeof r !== 'object' || !Array.isArray(r.blocks)) {
    throw new RpOnnxError(`metadata '${PERTURBATION_KEY}' has no 'blocks' list; the file was edited by hand or by another tool`);
  }
  return {
    strategy: r.strategy ?? 'I', scale: r.scale ?? 'absolute', seed: r.seed ?? null,
    previousVersion: r.previousVersion ?? null, blocks: r.blocks,
  };
}

/** Resolves `blocks` (indices or names) against the found blocks; throws naming what is unknown. */
export function selectBlocks(found: readonly ResidualBlock[], wanted?: readonly (number | string)[]): ResidualBlock[] {
  if (wanted === undefined) return [...found];
  const chosen = new Set<ResidualBlock>();
  for (const w of wanted) {
    const asIndex = typeof w === 'number' ? w : /^\d+$/.test(w.trim()) ? Number(w) : undefined;
    const b = asIndex !== undefined ? found[asIndex] : found.find((x) => x.add === w || x.output === w);
    if (!b) {
      const avail = found.length === 0 ? 'the model has none' : `available: 0..${found.length - 1} or ${found.map((x) => x.add).slice(0, 6).join(', ')}${found.length > 6 ? ', ...' : ''}`;
      throw new RpOnnxError(`blocks: no residual block '${w}' (${avail})`, { param: 'blocks' });
    }
    chosen.add(b);
  }
  return found.filter((b) => chosen.has(b));
}

function gammaPerBlock(gamma: number | number[], count: number): number[] {
  const list = Array.isArray(gamma) ? gamma : [gamma];
  for (const g of list) {
    if (!Number.isFinite(g) || g < 0) throw new RpOnnxError(`gamma must be finite and >= 0, got ${g}`, { param: 'gamma' });
  }
  if (list.length === 1) return Array.from({ length: count }, () => list[0]!);
  if (list.length !== count) {
    throw new RpOnnxError(`gamma has ${list.length} values but ${count} residual blocks are selected: give one value or one per block`, { param: 'gamma' });
  }
  return list;
}


/** Inferred value types, from a copy of the graph (inferShapes records types into what it is given). */
export function inferTypes(graph: Graph, opset: number): Map<string, TensorType> {
  const copy = new Graph({
    name: graph.name, nodes: graph.nodes, initializers: graph.initializers, valueInfo: new Map(graph.valueInfo),
    inputs: graph.inputs.map((v) => ({ ...v })), outputs: graph.outputs.map((v) => ({ ...v })),
  });
  return inferShapes(copy, { opset });
}

type TypeLookup = (value: string) => TensorType | null;

/** The element type of the block's tensors, when it is known. */
function blockDtype(typeOf: TypeLookup, b: ResidualBlock): DType | null {
  for (const v of [b.branch, b.output, b.skip, b.blockInput]) {
    const t = typeOf(v);
    if (t && t.dtype !== 'undefined') return t.dtype;
  }
  return null;
}

function blockRank(typeOf: TypeLookup, b: ResidualBlock): number | null {
  if (b.shape) return b.shape.length;
  for (const v of [b.branch, b.output, b.skip]) {
    const s = typeOf(v)?.shape;
    if (s) return s.length;
  }
  return null;
}

/** Configuration of one application of the residual-perturbation rewrite. */
export interface PerturbConfig {
  strategy: Strategy;
  scale: NoiseScale;
  /** gamma by block index (indices are stable: the finder is deterministic). */
  gammas: Map<number, number>;
  /** Source of distinct seed attributes (perturb --seed), or null to write none. */
  seeds: DistinctSeeds | null;
  opset: number;
  /** Inferred types of the graph's values (declared types fill the gaps). */
  types: ReadonlyMap<string, TensorType>;
}

/** Emits nodes after a given position and remembers every name it creates. */
class Emitter {
  readonly nodes: string[] = [];
  readonly initializers: string[] = [];
  private readonly b: GraphBuilder;
  constructor(readonly graph: Graph, prefix: string, private at: number) {
    this.b = new GraphBuilder(graph, prefix);
  }
  op(opType: string, name: string, inputs: string[], attrs: Parameters<GraphBuilder['op1']>[2] = {}, outputs?: string[]): string {
    const out = this.b.op(opType, inputs, attrs, { name, at: this.at++, outputs: outputs ?? 1 });
    this.nodes.push(this.graph.nodes[this.at - 1]!.name);
    return out[0]!;
  }
  scalar(base: string, value: number, dtype: 'float32' | 'float64'): string {
    const name = this.b.initializer(base, [], dtype === 'float64' ? Float64Array.of(value) : Float32Array.of(value), dtype);
    this.initializers.push(name);
    return name;
  }
  int64s(base: string, values: number[]): string {
    const name = this.b.int64s(base, values);
    this.initializers.push(name);
    return name;
  }
  /** ReduceMean over `axes`, keeping dims; axes are an attribute before opset 18, an input from 18. */
  reduceMean(name: string, x: string, axes: number[], opset: number): string {
    const { inputs, attrs } = reduceMeanArgs(opset, x, axes, () => this.int64s(`${name}_axes`, axes));
    return this.op('ReduceMean', name, inputs, { ...attrs, keepdims: 1 });
  }
}

/** gamma as a scalar of the block's element type. */
function gammaScalar(e: Emitter, gamma: number, dtype: DType | null, like: string, opset: number): string {
  if (dtype === 'float64') return e.scalar('gamma', gamma, 'float64');
  const g32 = e.scalar('gamma', gamma, 'float32');
  if (dtype === 'float32') return g32;
  if (dtype !== null) return e.op('Cast', 'gamma_cast', [g32], { to: dtypeCode(dtype) });
  // Undeclared type: follow the branch where CastLike exists (opset 15), else assume float32.
  return opset >= 15 ? e.op('CastLike', 'gamma_cast', [g32, like]) : g32;
}

/** The noise term for one block, per strategy and scale; returns the tensor added to the sum. */
function emitNoise(e: Emitter, typeOf: TypeLookup, b: ResidualBlock, gamma: number, cfg: PerturbConfig): { term: string; noiseNode: string; seed?: number } {
  const dtype = blockDtype(typeOf, b);
  const attrs: Parameters<GraphBuilder['op1']>[2] = { mean: float(0), scale: float(1) };
  if (dtype !== null) attrs.dtype = dtypeCode(dtype);
  let seed: number | undefined;
  if (cfg.seeds) {
    seed = cfg.seeds.next();
    attrs.seed = float(seed);
  }
  const noise = e.op('RandomNormalLike', 'noise', [b.branch], attrs);
  const noiseNode = e.nodes[e.nodes.length - 1]!;
  const state = cfg.strategy === 'II' ? e.op('Mul', 'state_noise', [b.skip, noise]) : noise;
  const g = gammaScalar(e, gamma, dtype, b.branch, cfg.opset);
  if (cfg.scale === 'absolute') return { term: e.op('Mul', 'scaled', [state, g]), noiseNode, seed };

  // gamma * std(F(x)) per example, over every non-batch axis.
  const rank = blockRank(typeOf, b);
  if (rank !== null) {
    const axes = Array.from({ length: rank - 1 }, (_, i) => i + 1);
    const mean = e.reduceMean('mean', b.branch, axes, cfg.opset);
    const centred = e.op('Sub', 'centred', [b.branch, mean]);
    const variance = e.reduceMean('variance', e.op('Mul', 'squared', [centred, centred]), axes, cfg.opset);
    const sigma = e.op('Mul', 'sigma', [e.op('Sqrt', 'std', [variance]), g]);
    return { term: e.op('Mul', 'scaled', [state, sigma]), noiseNode, seed };
  }
  // Rank unknown: work on [N, D] views and reshape back to F(x)'s runtime shape.
  const flat = e.op('Flatten', 'flat_branch', [b.branch], { axis: 1 });
  const mean = e.reduceMean('mean', flat, [1], cfg.opset);
  const centred = e.op('Sub', 'centred', [flat, mean]);
  const variance = e.reduceMean('variance', e.op('Mul', 'squared', [centred, centred]), [1], cfg.opset);
  const sigma = e.op('Mul', 'sigma', [e.op('Sqrt', 'std', [variance]), g]);
  const scaledFlat = e.op('Mul', 'scaled_flat', [e.op('Flatten', 'flat_noise', [state], { axis: 1 }), sigma]);
  return { term: e.op('Reshape', 'scaled', [scaledFlat, e.op('Shape', 'branch_shape', [b.branch])]), noiseNode, seed };
}

/** The residual-perturbation rewrite for one configuration. */
export function residualPerturbation(cfg: PerturbConfig): Rewrite<ResidualBlock, PerturbedBlock> {
  const lookup = (graph: Graph): TypeLookup => (v) => cfg.types.get(v) ?? graph.typeOf(v);
  return {
    name: `residual perturbation (strategy ${cfg.strategy}, ${cfg.scale} scale)`,
    pattern: (graph) => findResidualBlocks(graph, { opset: cfg.opset, types: cfg.types }),
    condition(graph, b) {
      if (!cfg.gammas.has(b.index)) return 'not selected';
      const add = graph.producer(b.output);
      if (!add || add.outputs.length !== 1) return `no single-output node writes '${b.output}'`;
      const dtype = blockDtype(lookup(graph), b);
      if (dtype !== null && !isFloatDType(dtype)) return `element type ${dtype} cannot carry Gaussian noise`;
      const rank = blockRank(lookup(graph), b);
      if (cfg.scale === 'std' && rank !== null && rank < 2) return `the std scale needs a batch axis, but '${b.output}' has rank ${rank}`;
      if (cfg.scale === 'std' && rank === null && cfg.opset < 5) return 'the std scale on a tensor of unknown rank needs opset >= 5 (Reshape with a shape input)';
      return true;
    },
    replacement(graph, b) {
      const add = graph.producer(b.output)!;
      const prefix = `${NAME_PREFIX}${b.add}/`;
      const sum = graph.uniqueName(`${prefix}sum`);
      add.outputs = [sum];
      const e = new Emitter(graph, prefix, graph.nodes.indexOf(add) + 1);
      const gamma = cfg.gammas.get(b.index)!;
      const { term, noiseNode, seed } = emitNoise(e, lookup(graph), b, gamma, cfg);
      e.op('Add', 'add', [sum, term], {}, [b.output]);
      return {
        index: b.index, add: b.add, output: b.output, sum, blockInput: b.blockInput, branch: b.branch, skip: b.skip,
        skipKind: b.skipKind, gamma, strategy: cfg.strategy, scale: cfg.scale, noiseNode,
        ...(seed !== undefined ? { seed } : {}), nodes: e.nodes, initializers: e.initializers,
      };
    },
  };
}

/**
 * Injects Gaussian noise at the selected residual blocks of a copy of `model` and records what it
 * did in metadata_props. The input model is not modified.
 */
export function perturbModel(model: Model, opts: PerturbOptions): PerturbResult {
  if (!(['I', 'II'] as const).includes(opts.strategy)) throw new RpOnnxError(`strategy must be I or II, got '${String(opts.strategy)}'`, { param: 'strategy' });
  if (!(['absolute', 'std'] as const).includes(opts.scale)) throw new RpOnnxError(`scale must be absolute or std, got '${String(opts.scale)}'`, { param: 'scale' });
  if (opts.seed !== undefined && !Number.isInteger(opts.seed)) throw new RpOnnxError(`seed must be an integer, got ${opts.seed}`, { param: 'seed' });
  const previous = readPerturbation(model);
  if (previous && !opts.force) {
    throw new RpOnnxError(`the model is already perturbed (metadata '${PERTURBATION_KEY}', ${previous.blocks.length} blocks): run 'rp-onnx strip' first, or pass force to add a second layer of noise`, { param: 'force' });
  }

  const out = model.clone();
  const graph = out.graph;
  const opset = out.opset('');
  const types = inferTypes(graph, opset);
  const found = findResidualBlocks(graph, { opset, types });
  if (found.length === 0) {
    throw new RpOnnxError('the model has no residual blocks (Add of x and F(x)); residual perturbation needs skip connections');
  }
  const selected = selectBlocks(found, opts.blocks);
  if (selected.length === 0) throw new RpOnnxError('blocks selects no residual block', { param: 'blocks' });
  const gammas = gammaPerBlock(opts.gamma, selected.length);
  const cfg: PerturbConfig = {
    strategy: opts.strategy, scale: opts.scale,
    gammas: new Map(selected.map((b, i) => [b.index, gammas[i]!])),
    seeds: opts.seed !== undefined ? new DistinctSeeds(new Random(opts.seed)) : null,
    opset, types,
  };
  const outcome = applyRewrite(graph, residualPerturbation(cfg));
  const refused = outcome.skipped.filter((s) => s.reason !== 'not selected');
  if (refused.length > 0) {
    const s = refused[0]!;
    throw new RpOnnxError(`cannot perturb residual block ${s.match.index} ('${s.match.add}'): ${s.reason}`);
  }
  const blocks = outcome.applied.map((a) => a.result);

  const record: PerturbationRecord = {
    strategy: opts.strategy, scale: opts.scale, seed: opts.seed ?? previous?.seed ?? null,
    previousVersion: previous ? previous.previousVersion : (model.getMetadata(VERSION_KEY) ?? null),
    blocks: [...(previous?.blocks ?? []), ...blocks],
  };
  out.setMetadata(VERSION_KEY, opts.toolVersion);
  out.setMetadata(PERTURBATION_KEY, JSON.stringify(record));
  if (opts.seed !== undefined) out.setMetadata(SEED_KEY, String(opts.seed));
  return { model: out, blocks };
}

/** The inserted nodes of a perturbed model, by name (for tests and `strip`). */
export function insertedNodes(graph: Graph, record: PerturbationRecord): Node[] {
  const names = new Set(record.blocks.flatMap((b) => b.nodes));
  return graph.nodes.filter((n) => names.has(n.name));
}
