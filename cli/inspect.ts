/** `rp-onnx inspect MODEL`: versions, inputs/outputs, parameters, op histogram, residual blocks. */
import type { Command } from 'commander';
import { action, printJson } from './common.js';
import { Flags } from './flags.js';
import { loadModel } from '../src/graph/io.js';
import { summarizeModel, PARAMETERS_COUNTED, type ModelSummary, type ValueSummary } from '../src/graph/model-summary.js';
import type { RecordedMetadata } from '../src/graph/rp-metadata.js';
import type { Dim } from '../src/graph/ir.js';

export function register(program: Command): void {
  program
    .command('inspect')
    .description('show what an ONNX model holds: opsets, inputs and outputs, parameter count, op histogram, the residual blocks found in it, and what rp-onnx recorded (perturbation, privacy statement, training)')
    .argument('<model>', 'ONNX model file')
    .option('--json', 'print one JSON object')
    .addHelpText('after', `
Residual blocks are Adds of x (or a short projection of x: 1x1 Conv, BatchNorm, pooling,
option-A padding) and a branch F(x) holding parametric ops; bias adds, LayerNorm arithmetic,
positional embeddings and attention masks are not counted.

Examples:
  rp-onnx inspect resnet18.onnx
  rp-onnx inspect resnet18.onnx --json | jq '.residualBlocks | length'`)
    .action(action((path: string, _o: unknown, command: Command) => {
      const json = new Flags(command).bool('json');
      const summary = summarizeModel(loadModel(path));
      if (json) printJson(summary);
      else process.stdout.write(formatSummary(path, summary));
    }));
}

const shapeText = (s: readonly Dim[] | null): string => (s === null ? '?' : `[${s.map((d) => (d === null ? '?' : String(d))).join(', ')}]`);

function valuesTable(values: ValueSummary[]): string[] {
  const w = Math.max(0, ...values.map((v) => v.name.length));
  return values.map((v) => `  ${v.name.padEnd(w)}  ${(v.dtype ?? '?').padEnd(8)}  ${shapeText(v.shape)}`);
}

/** The branch ops on one line: long transformer branches are cut, with how many were left out. */
function opsText(ops: string[], width = 72): string {
  let line = '';
  for (let i = 0; i < ops.length; i++) {
    const next = line ? `${line} ${ops[i]}` : ops[i]!;
    if (next.length > width) return `${line} ... (+${ops.length - i})`;
    line = next;
  }
  return line;
}

function formatSummary(path: string, s: ModelSummary): string {
  const out: string[] = [];
  out.push(`model       ${path}`);
  out.push(`IR version  ${s.irVersion}`);
  out.push(`opsets      ${Object.entries(s.opsets).map(([d, v]) => `${d} ${v}`).join(', ') || '(none)'}`);
  out.push(`producer    ${s.producer || '(not recorded)'}`);
  out.push(`inputs      ${s.inputs.length}`, ...valuesTable(s.inputs));
  out.push(`outputs     ${s.outputs.length}`, ...valuesTable(s.outputs));
  out.push(`parameters  ${s.parameters.toLocaleString('en-US')} (${PARAMETERS_COUNTED})`);
  if (s.perturbationConstants > 0) out.push(`            left out: ${s.perturbationConstants.toLocaleString('en-US')} elements of the perturbation's gamma constants`);
  const nodes = Object.values(s.ops).reduce((a, b) => a + b, 0);
  out.push(`ops         ${nodes} nodes: ${Object.entries(s.ops).map(([op, n]) => `${op} ${n}`).join(', ')}`);
  out.push(`residual blocks  ${s.residualBlocks.length}`);
  if (s.residualBlocks.length > 0) {
    const rows = s.residualBlocks.map((b) => [String(b.index), b.add, b.skipKind, shapeText(b.shape), b.skipKind === 'identity' ? b.skip : `${b.skip} <- ${b.blockInput}`]);
    const head = ['#', 'add', 'skip', 'shape', 'skip tensor'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const fmt = (r: string[]) => `  ${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`;
    out.push(fmt(head));
    s.residualBlocks.forEach((b, i) => {
      out.push(fmt(rows[i]!));
      out.push(`  ${' '.repeat(widths[0]!)}  branch ${b.branch}: ${opsText(b.branchOps)}`);
    });
  }
  out.push(...recordedLines(s.recorded));
  return `${out.join('\n')}\n`;
}

const text = (v: unknown): string => (typeof v === 'string' ? v : v === null || v === undefined ? '?' : typeof v === 'number' ? String(v) : JSON.stringify(v));

/** What rp-onnx recorded in the model: version, perturbation per block, privacy statement, training. */
function recordedLines(r: RecordedMetadata): string[] {
  const out: string[] = [];
  if (r.version !== null) out.push(`rp-onnx     version ${r.version}`);
  const p = r.perturbation;
  if (p) {
    out.push(`perturbation  strategy ${p.strategy ?? '?'}, scale ${p.scale ?? '?'}, ${p.seed === null ? 'no seed (fresh noise)' : `seed ${p.seed} (reproducible noise)`}, ${p.blocks.length} block${p.blocks.length === 1 ? '' : 's'}`);
    const rows = p.blocks.map((b) => [b.index === null ? '?' : String(b.index), b.add ?? '?', b.gamma === null ? '?' : String(b.gamma)]);
    const head = ['#', 'add', 'gamma'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    for (const row of [head, ...rows]) out.push(`  ${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`);
  }
  if (r.privacy) {
    const statement = typeof r.privacy.statement === 'string' ? r.privacy.statement : `epsilon ${text(r.privacy.epsilon)}, delta ${text(r.privacy.delta)}`;
    out.push(`privacy     ${statement}`);
  }
  const t = r.training;
  if (t) {
    const acc = typeof t.finalTestAccuracy === 'number' ? `, final test accuracy ${(100 * t.finalTestAccuracy).toFixed(2)}%` : '';
    out.push(`training    data ${text(t.data)}, ${text(t.examples)} examples, ${text(t.steps)} steps${t.epochs !== undefined ? `, ${text(t.epochs)} epochs` : ''}${acc}`);
    const a = t.oneRunAudit;
    if (a && typeof a === 'object') {
      const o = a as Record<string, unknown>;
      out.push(`one-run audit  ${text(o.correct)} of ${text(o.guesses)} guesses right on ${text(o.canaries)} ${text(o.kind)} canaries: epsilon >= ${typeof o.epsilonLowerBound === 'number' ? o.epsilonLowerBound.toFixed(3) : '?'} at ${typeof o.confidence === 'number' ? 100 * o.confidence : '?'}% confidence, delta ${text(o.delta)} (an empirical lower bound, not a guarantee)`);
    }
  }
  if (r.unreadable.length > 0) out.push(`unreadable  ${r.unreadable.join(', ')} (not the JSON rp-onnx writes; edited by hand or by another tool)`);
  return out;
}
