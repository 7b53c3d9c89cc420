/** Matrix products: Gemm, MatMul (numpy semantics incl. 1-D operands), Einsum. */
import type { Dim } from '../ir.js';
import { registerShapeRule, type ShapeContext } from './registry.js';
import { broadcastShapes, isKnown, mergeShapes, tensor } from './dims.js';

registerShapeRule('Gemm', (ctx) => {
  const a = ctx.shape(0);
  const b = ctx.shape(1);
  const transA = ctx.node.getInt('transA', 0) === 1;
  const transB = ctx.node.getInt('transB', 0) === 1;
  const m = a && a.length === 2 ? a[transA ? 1 : 0]! : null;
  const n = b && b.length === 2 ? b[transB ? 0 : 1]! : null;
  return [tensor(ctx.dtype(0), [m, n])];
});

/** Shape of numpy.matmul(a, b). */
export function matmulShape(a: Dim[] | null, b: Dim[] | null): Dim[] | null {
  if (!a || !b || a.length === 0 || b.length === 0) return null;
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)]);
  if (!batch) return null;
  const out: Dim[] = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]!);
  if (b.length > 1) out.push(b2[b2.length - 1]!);
  return out;
}

registerShapeRule('MatMul', (ctx) => [tensor(ctx.dtype(0), matmulShape(ctx.shape(0), ctx.shape(1)))]);
registerShapeRule('MatMulInteger', (ctx) => [tensor('int32', matmulShape(ctx.shape(0), ctx.shape(1)))]);
registerShapeRule('QLinearMatMul', (ctx) => [tensor(ctx.dtype(7), matmulShape(ctx.shape(0), ctx.shape(3)))]);

registerShapeRule('Det', (ctx) => {
  const x = ctx.shape(0);
  return [tensor(ctx.dtype(0), x ? x.slice(0, -2) : null)];
});

/** Splits an einsum term into its letters, with '...' as one token. */
function terms(spec: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < spec.length; i++) {
    if (spec.startsWith('...', i)) {
      out.push('...');
      i += 2;
    } else out.push(spec[i]!);
  }
  return out;
}

function einsumRule(ctx: ShapeContext) {
  const eq = ctx.node.getString('equation', '').replace(/\s+/g, '');
  const [lhs, rhs] = eq.split('->') as [string, string | undefined];
  const inputs = lhs.split(',').map(terms);
  const letters = new Map<string, Dim>();
  const counts = new Map<string, number>();
  const ellipses: (Dim[] | null)[] = [];
  inputs.forEach((term, i) => {
    const shape = ctx.shape(i);
    const named = term.filter((t) => t !== '...').length;
    const ellipsisRank = shape ? shape.length - named : 0;
    let k = 0;
    for (const t of term) {
      if (t === '...') {
        ellipses.push(shape ? shape.slice(k, k + ellipsisRank) : null);
        k += ellipsisRank;
        continue;
      }
      counts.set(t, (counts.get(t) ?? 0) + 1);
      const d = shape ? shape[k]! : null;
      const prev = letters.get(t);
      // A letter of size 1 in one operand broadcasts against the other's size.
      letters.set(t, prev === undefined ? d : (mergeShapes([prev !== 1 ? prev : d], [d !== 1 ? d : prev])![0]!));
      k++;
    }
  });
  const ellipsis = ellipses.length ? broadcastShapes(ellipses) : [];
  const outTerms = rhs !== undefined
    ? terms(rhs)
    : [...(ellipses.length ? ['...'] : []), ...[...counts.entries()].filter(([, c]) => c === 1).map(([l]) => l).sort()];
  const out: Dim[] | null = [];
  for (const t of outTerms) {
    if (t === '...') {
      if (ellipsis === null) return [tensor(ctx.dtype(0), null)];
      out.push(...ellipsis);
    } else out.push(letters.get(t) ?? null);
  }
  return [tensor(ctx.dtype(0), out.map((d) => (isKnown(d) || typeof d === 'string' ? d : null)))];
}
registerShapeRule('Einsum', einsumRule);
