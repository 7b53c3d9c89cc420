/**
 * The residual-perturbation experiment's table (markdown) and report (self-contained HTML with
 * inline SVG: per setting, test accuracy against LiRA-online's TPR at 1% FPR per method, and
 * LiRA-online's ROC curves on log-log axes per method). The charts are drawn with the audit
 * report's helpers (src/audit/report-html.ts).
 */
import { COLORS, REPORT_STYLE, axes, esc, plotH, plotW, rocChartSvg, svg, type Frame } from '../audit/report-html.js';
import type { ExperimentRow, ExperimentRun, Setting } from './residual-perturbation.js';

const pct = (v: number | null, digits = 2) => (v === null ? 'n/a' : `${(100 * v).toFixed(digits)}%`);
const num = (v: number | null, digits = 3) => (v === null ? '-' : v.toFixed(digits));

/** A short name of a run (legends). */
export function shortLabel(r: ExperimentRun): string {
  switch (r.kind) {
    case 'baseline': return 'baseline';
    case 'perturbed': return `${r.strategy} \u03b3${r.gamma}`;
    case 'ensemble': return `En${r.size} ${r.strategy} \u03b3${r.gamma}`;
    case 'dp-sgd': return `DP \u03b5${r.epsilon}`;
  }
}

export const settingDescription = (s: Setting) =>
  `${s.name}: members = train images 0-${s.members - 1}, non-members = train images ${s.members}-${2 * s.members - 1}, ${s.epochs} epoch${s.epochs === 1 ? '' : 's'}`;

export const TABLE_HEAD = ['method', 'test accuracy', 'train accuracy', 'LiRA-online AUC', 'TPR at 1% FPR', 'TPR at 0.1% FPR', 'RMIA AUC', 'loss AUC', 'epsilon (PRV)', 'one-run lower bound', 'training time (target + shadows)'];

/** The cells of a row, as text (markdown and HTML share them). */
export function rowCells(r: ExperimentRow): string[] {
  const lira = r.attacks['lira-online'];
  return [
    r.method, pct(r.testAccuracy), pct(r.trainAccuracy), num(lira.auc), pct(lira.tprAtFpr1, 1), pct(lira.tprAtFpr01, 1),
    num(r.attacks.rmia.auc), num(r.attacks.loss.auc), num(r.epsilon, 2),
    r.oneRun ? `${r.oneRun.epsilonLowerBound.toFixed(2)} (${r.oneRun.correct}/${r.oneRun.guesses} of ${r.oneRun.canaries})` : '-',
    `${r.trainSeconds.toFixed(0)} s (${r.targetSeconds.toFixed(0)} s)`,
  ];
}

export function markdownTable(rows: readonly ExperimentRow[]): string {
  return [`| ${TABLE_HEAD.join(' | ')} |`, `|${TABLE_HEAD.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${rowCells(r).join(' | ')} |`)].join('\n');
}

/** One markdown section per setting. */
export function markdownTables(rows: readonly ExperimentRow[], settings: readonly Setting[]): string {
  return settings.map((s) => `### ${settingDescription(s)}\n\n${markdownTable(rows.filter((r) => r.setting === s.name))}`).join('\n\n');
}

/** What the accuracy chart reads: LiRA-online's TPR at 1% FPR where every row has it, else its AUC (too few non-members). */
function tradeOffMetric(rows: readonly ExperimentRow[]): { label: string; value: (r: ExperimentRow) => number; chance: number } {
  if (rows.every((r) => r.attacks['lira-online'].tprAtFpr1 !== null)) return { label: 'LiRA-online TPR at 1% FPR', value: (r) => r.attacks['lira-online'].tprAtFpr1!, chance: 0.01 };
  return { label: 'LiRA-online AUC (too few non-members for TPR at 1% FPR)', value: (r) => r.attacks['lira-online'].auc, chance: 0.5 };
}

const niceStep = (span: number) => [0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25].find((s) => span / s <= 6) ?? 0.5;

/** Test accuracy against the attack's TPR at low FPR: one point per method; up and to the left is better. */
export function tradeOffSvg(rows: readonly ExperimentRow[], title: string): string {
  const f: Frame = { width: 520, height: 400, left: 60, right: 150, top: 30, bottom: 44 };
  const m = tradeOffMetric(rows);
  const xs = rows.map(m.value);
  const ys = rows.map((r) => r.testAccuracy);
  // Axes a little wider than the points, so no point sits on the frame.
  const padded = (vs: number[]) => {
    const lo = Math.min(...vs);
    const hi = Math.max(...vs);
    const pad = Math.max(0.05 * (hi - lo), 0.005);
    return [Math.max(0, lo - pad), Math.min(1, hi + pad)] as const;
  };
  const [xLo, xHi] = padded([...xs, m.chance]);
  const [yLo, yHi] = padded(ys);
  const xStep = niceStep(xHi - xLo);
  const x0 = Math.floor(xLo / xStep) * xStep;
  const x1 = Math.max(x0 + xStep, Math.ceil(xHi / xStep - 1e-9) * xStep);
  const yStep = niceStep(yHi - yLo);
  const y0 = Math.floor(yLo / yStep) * yStep;
  const y1 = Math.max(y0 + yStep, Math.ceil(yHi / yStep - 1e-9) * yStep);
  const tx = (v: number) => (v - x0) / (x1 - x0);
  const ty = (v: number) => (v - y0) / (y1 - y0);
  const ticks = (a: number, b: number, step: number, t: (v: number) => number, label: (v: number) => string): [number, string][] =>
    Array.from({ length: Math.round((b - a) / step) + 1 }, (_, k) => a + k * step).map((v) => [t(v), label(v)]);
  const pctLabel = (v: number) => `${Number((100 * v).toFixed(1))}%`;
  const parts = [axes(f, m.label, 'test accuracy', ticks(x0, x1, xStep, tx, m.chance === 0.5 ? (v) => v.toFixed(2) : pctLabel), ticks(y0, y1, yStep, ty, pctLabel))];
  const sx = (v: number) => f.left + tx(v) * plotW(f);
  const sy = (v: number) => f.top + plotH(f) - ty(v) * plotH(f);
  // Chance: an attack that guesses has TPR = FPR (or AUC 0.5).
  parts.push(`<line x1="${sx(m.chance).toFixed(1)}" y1="${f.top}" x2="${sx(m.chance).toFixed(1)}" y2="${f.top + plotH(f)}" stroke="#999" stroke-dasharray="5 4"/><text x="${(sx(m.chance) + 4).toFixed(1)}" y="${f.top + 12}" font-size="10" fill="#777">chance</text>`);
  rows.forEach((r, i) => {
    const color = COLORS[i % COLORS.length]!;
    const cx = sx(m.value(r)).toFixed(1);
    const cy = sy(r.testAccuracy).toFixed(1);
    const mark = r.run.kind === 'dp-sgd' ? `<rect x="${(+cx - 6).toFixed(1)}" y="${(+cy - 6).toFixed(1)}" width="12" height="12" fill="${color}"/>` : r.run.kind === 'ensemble'
      ? `<polygon points="${cx},${(+cy - 7).toFixed(1)} ${(+cx + 7).toFixed(1)},${cy} ${cx},${(+cy + 7).toFixed(1)} ${(+cx - 7).toFixed(1)},${cy}" fill="${color}"/>`
      : `<circle cx="${cx}" cy="${cy}" r="6" fill="${color}"/>`;
    parts.push(mark);
    const ly = f.top + 8 + 16 * i;
    parts.push(`<rect x="${f.left + plotW(f) + 12}" y="${ly}" width="10" height="10" fill="${color}"/><text x="${f.left + plotW(f) + 27}" y="${ly + 9}" font-size="11">${esc(shortLabel(r.run))}</text>`);
  });
  parts.push(`<text x="${f.left}" y="18" font-size="13" font-weight="bold">${esc(title)}</text>`);
  return svg(f, 'test accuracy against attack success', parts.join(''));
}

/** LiRA-online's ROC curves of every method on log-log axes. */
export function liraRocSvg(rows: readonly ExperimentRow[], title: string): string {
  const n = Math.max(1, ...rows.map((r) => r.attacks['lira-online'].nonMembers));
  return rocChartSvg(rows.map((r) => ({ label: shortLabel(r.run), auc: r.attacks['lira-online'].auc, roc: r.liraRoc })), n, true, title, 120);
}

export interface ReportInfo {
  command: string;
  data: string;
  minutes: number;
  shadows: number;
}

export function experimentHtml(rows: readonly ExperimentRow[], settings: readonly Setting[], info: ReportInfo): string {
  const sections = settings.map((s) => {
    const rs = rows.filter((r) => r.setting === s.name);
    if (rs.length === 0) return '';
    const table = `<table><tr>${TABLE_HEAD.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>\n${rs.map((r) => `<tr>${rowCells(r).map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n')}</table>`;
    return `<h2>${esc(settingDescription(s))}</h2>\n${table}\n<div class="charts" data-setting="${esc(s.name)}">${tradeOffSvg(rs, `${s.name}: test accuracy vs attack success`)}${liraRocSvg(rs, `${s.name}: LiRA-online ROC, log-log (legend: AUC)`)}</div>`;
  }).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Residual perturbation vs DP-SGD: membership inference</title>
<style>
${REPORT_STYLE}
</style>
</head><body>
<h1>Residual perturbation vs DP-SGD (Fashion-MNIST, ResNet-8): membership inference</h1>
<p>Made by <code>${esc(info.command)}</code> (data: ${esc(info.data)}; ${info.minutes.toFixed(1)} minutes; ${info.shadows} shadow models per row).</p>
${sections}
<p class="note">${esc(READING_NOTE)}</p>
</body></html>
`;
}

/** What the columns mean (markdown and HTML). */
export const READING_NOTE = 'Test accuracy: the whole test split (an ensemble: its averaged logits). Train accuracy: the members. '
  + 'LiRA-online (Carlini et al. 2022; global variance below 64 shadows) and RMIA (Zarifzadeh et al. 2024; gamma 1, population of test images no model trained on) use shadow models trained with the row\'s own recipe, defence included (perturbed shadows, ensembles of as many perturbed shadows, DP-SGD shadows at the target\'s sigma with their own canaries), each on a random half of members + non-members, so every audited example is IN for half of them; the target is queried as deployed (one noisy pass) and only ever enters as the tested value. '
  + 'The loss attack (Yeom et al. 2018) needs no shadows: the baseline to read LiRA against. TPR at an FPR below 1/(non-members) cannot be measured and reads n/a. '
  + 'epsilon: the accountant\'s (PRV, upper end of its certified interval) for Poisson sampling and add/remove adjacency at delta 1e-5, covering the released parameters. '
  + 'One-run lower bound (Steinke, Nasr, Jagielski 2023): mislabelled copies of train images outside the pool, each put into the DP training run with probability 1/2, scored by their loss; 95% confidence, an empirical lower bound from one run, never a guarantee. '
  + 'Training time: the target\'s models plus every shadow\'s (in parentheses the target alone); a single perturbed model that is also the first member of an ensemble is trained once and counted in both rows.';
