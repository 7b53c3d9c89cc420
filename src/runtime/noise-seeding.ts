/**
 * Seeds for onnxruntime's random ops, so that noise is independent across sessions and
 * unpredictable across process restarts.
 *
 * What onnxruntime-node 1.30 does (measured here with a one-node RandomNormalLike graph, two
 * sessions per process, two runs per session, two processes; see test/perturb.test.ts):
 * - without a `seed` attribute, both sessions in one process return the SAME sequence
 *   (run 1 equal across sessions, run 2 equal across sessions); a second process gets another
 *   sequence. The kernel seeds std::default_random_engine with a per-process seed (taken once,
 *   from the clock) plus the node's index in the graph;
 * - with a `seed` attribute, every session in every process replays the same sequence;
 * - consecutive runs of one session always differ (the generator state advances).
 * So two ensemble members created in one process would share their noise, and a model file with
 * a seed repeats its noise after every restart. rp-onnx's runtime therefore writes a fresh seed
 * into every random op of a private copy of the model before it creates each session.
 *
 * The attribute is a float32 that onnxruntime casts to uint32, so seeds are drawn as integers
 * below 2^24 (exact in float32). The generator behind it (std::default_random_engine, i.e.
 * minstd_rand0 in libstdc++) has a 31-bit state: the noise is statistically fresh but not
 * cryptographic.
 */
import { Graph, Model, type Node } from '../graph/ir.js';
import { onnx } from '../graph/onnx.js';
import { Random } from '../random.js';
import { DistinctSeeds } from '../node-seeds.js';

/** Ops that draw random numbers and take a float `seed` attribute. */
export const SEEDED_RANDOM_OPS: ReadonlySet<string> = new Set([
  'RandomNormal', 'RandomNormalLike', 'RandomUniform', 'RandomUniformLike', 'Multinomial', 'Bernoulli',
]);

/** How the runtime seeds random ops: fresh OS entropy, derived from a number, or as in the file. */
export type NoiseSeed = 'secure' | number | 'model';

function isRandomOp(n: Node): boolean {
  return n.isStandard && SEEDED_RANDOM_OPS.has(n.opType);
}

/**
 * Sets a fresh, distinct `seed` on every random op of `graph` (and of its subgraphs), in graph
 * order, and returns the seeds it set.
 */
export function seedRandomOps(graph: Graph, rng: Random): number[] {
  return seedOps(graph, new DistinctSeeds(rng));
}

function seedOps(graph: Graph, draw: DistinctSeeds): number[] {
  const seeds: number[] = [];
  for (const n of graph.nodes) {
    if (isRandomOp(n)) {
      const s = draw.next();
      n.setAttr('seed', s, 'float');
      seeds.push(s);
    }
    for (const a of n.attributes) {
      if (a.g) {
        const sub = Graph.fromProto(a.g as onnx.GraphProto);
        seeds.push(...seedOps(sub, draw));
        a.g = sub.toProto();
      }
      if (a.graphs.length > 0) {
        a.graphs = a.graphs.map((g) => {
          const sub = Graph.fromProto(g as onnx.GraphProto);
          seeds.push(...seedOps(sub, draw));
          return sub.toProto();
        });
      }
    }
  }
  return seeds;
}

/** Number of random ops in the graph (top level and subgraphs). */
export function countRandomOps(graph: Graph): number {
  let count = 0;
  for (const n of graph.nodes) {
    if (isRandomOp(n)) count++;
    for (const g of n.subgraphs()) count += countRandomOps(Graph.fromProto(g));
  }
  return count;
}

/**
 * A copy of the model whose random ops carry fresh seeds: from the OS CSPRNG ('secure'), from
 * a generator seeded with `noiseSeed` (reproducible experiments), or unchanged ('model': the
 * file's own seeds, or onnxruntime's per-process seeding where there are none).
 */
export function withNoiseSeeds(model: Model, noiseSeed: NoiseSeed): { model: Model; seeds: number[] } {
  if (noiseSeed === 'model' || countRandomOps(model.graph) === 0) return { model, seeds: [] };
  const copy = model.clone();
  const rng = noiseSeed === 'secure' ? Random.secure() : new Random(noiseSeed);
  return { model: copy, seeds: seedRandomOps(copy.graph, rng) };
}

/**
 * `count` generators for ensemble members or worker sessions: independent secure ones, or
 * distinct reproducible seeds derived from one user seed.
 */
export function memberNoiseSeeds(noiseSeed: NoiseSeed, count: number): NoiseSeed[] {
  if (noiseSeed === 'secure' || noiseSeed === 'model') return Array.from({ length: count }, () => noiseSeed);
  const rng = new Random(noiseSeed);
  return Array.from({ length: count }, (_, i) => (i === 0 ? noiseSeed : rng.int(2 ** 32)));
}
