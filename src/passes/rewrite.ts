/**
 * A rewrite is a value: a pattern that finds matches in a graph, a condition that accepts or
 * rejects each match (with the reason), and a replacement that edits the graph for one match.
 * Passes built this way can be listed, tested match by match and composed (onnxscript's
 * rewriter reads the same way).
 */
import type { Graph } from '../graph/ir.js';

export interface Rewrite<M, R> {
  /** Short name, for messages. */
  readonly name: string;
  /** Every candidate match in the graph, in a stable order. */
  pattern(graph: Graph): M[];
  /** true to rewrite the match, or a one-line reason why not. */
  condition(graph: Graph, match: M): true | string;
  /** Edits the graph for one accepted match and says what it did. */
  replacement(graph: Graph, match: M): R;
}

export interface RewriteOutcome<M, R> {
  applied: { match: M; result: R }[];
  skipped: { match: M; reason: string }[];
}

/**
 * Applies a rewrite to every match its condition accepts. Matches are all found before the
 * first edit, so a replacement never sees (or re-matches) another replacement's nodes.
 */
export function applyRewrite<M, R>(graph: Graph, rewrite: Rewrite<M, R>): RewriteOutcome<M, R> {
  const out: RewriteOutcome<M, R> = { applied: [], skipped: [] };
  for (const match of rewrite.pattern(graph)) {
    const ok = rewrite.condition(graph, match);
    if (ok === true) out.applied.push({ match, result: rewrite.replacement(graph, match) });
    else out.skipped.push({ match, reason: ok });
  }
  return out;
}
