/**
 * A self-contained HTML audit report: inline SVG charts (ROC curves on linear and log-log axes,
 * per-example loss histograms of members vs non-members) and the metrics tables. No scripts,
 * external fonts, images or network requests: the file can be mailed or archived as is.
 */
import type { AuditReport, AttackResult } from './membership-inference.js';
import type { RocPoint } from './attack-metrics.js';
import type { OneRunAuditRecord } from './one-run-audit.js';

export const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#393b79', '#637939'];
const MEMBER_COLOR = '#1f77b4';
const NON_MEMBER_COLOR = '#d62728';

export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
export const fmt = (v: number | null, digits = 3) => (v === null ? 'n/a' : Number.isFinite(v) ? v.toFixed(digits) : v > 0 ? '&infin;' : v < 0 ? '-&infin;' : 'n/a');
const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

export interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}
export const plotW = (f: Frame) => f.width - f.left - f.right;
export const plotH = (f: Frame) => f.height - f.top - f.bottom;

/** Plot rectangle, tick marks with labels, axis titles. `ticks` are fractions of the axis in [0, 1]. */
export function axes(f: Frame, xTitle: string, yTitle: string, xTicks: [number, string][], yTicks: [number, string][]): string {
  const x0 = f.left;
  const y0 = f.top + plotH(f);
  const parts = [`<rect x="${x0}" y="${f.top}" width="${plotW(f)}" height="${plotH(f)}" fill="#fff" stroke="#444"/>`];
  for (const [t, label] of xTicks) {
    const x = x0 + t * plotW(f);
    parts.push(`<line x1="${x}" y1="${f.top}" x2="${x}" y2="${y0}" stroke="#eee"/><line x1="${x}" y1="${y0}" x2="${x}" y2="${y0 + 5}" stroke="#444"/><text x="${x}" y="${y0 + 18}" font-size="11" text-anchor="middle">${label}</text>`);
  }
  for (const [t, label] of yTicks) {
    const y = y0 - t * plotH(f);
    parts.push(`<line x1="${x0}" y1="${y}" x2="${x0 + plotW(f)}" y2="${y}" stroke="#eee"/><line x1="${x0 - 5}" y1="${y}" x2="${x0}" y2="${y}" stroke="#444"/><text x="${x0 - 8}" y="${y + 4}" font-size="11" text-anchor="end">${label}</text>`);
  }
  parts.push(`<rect x="${x0}" y="${f.top}" width="${plotW(f)}" height="${plotH(f)}" fill="none" stroke="#444"/>`);
  parts.push(`<text x="${x0 + plotW(f) / 2}" y="${f.height - 8}" font-size="12" text-anchor="middle">${esc(xTitle)}</text>`);
  const cy = f.top + plotH(f) / 2;
  parts.push(`<text x="14" y="${cy}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${cy})">${esc(yTitle)}</text>`);
  return parts.join('');
}

export function svg(f: Frame, label: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}" role="img" aria-label="${esc(label)}" font-family="sans-serif">${body}</svg>`;
}

/** One curve of a ROC chart: a legend label (the AUC is appended) and its ROC points. */
export interface RocSeries {
  label: string;
  auc: number;
  roc: readonly RocPoint[];
}

/**
 * ROC curves on linear or log-log axes. On log-log axes FPR and TPR of 0 are drawn at the axis
 * floor, one decade below 1/n (the smallest non-zero rate n examples can show).
 */
export function rocChartSvg(series: readonly RocSeries[], n: number, log: boolean, title: string, legendWidth = 150): string {
  const f: Frame = { width: 440, height: 400, left: 56, right: 14, top: 30, bottom: 44 };
  const floorExp = Math.min(-1, Math.floor(Math.log10(1 / n)) - 1);
  const scale = (v: number) => (log ? (Math.log10(Math.max(v, 10 ** floorExp)) - floorExp) / -floorExp : v);
  const sx = (v: number) => f.left + scale(v) * plotW(f);
  const sy = (v: number) => f.top + plotH(f) - scale(v) * plotH(f);
  const ticks: [number, string][] = log
    ? Array.from({ length: -floorExp + 1 }, (_, i) => [i / -floorExp, i === -floorExp ? '1' : `10<tspan dy="-5" font-size="8">${floorExp + i}</tspan>`])
    : [0, 0.25, 0.5, 0.75, 1].map((v) => [v, String(v)]);
  const parts = [axes(f, log ? 'false positive rate (log)' : 'false positive rate', log ? 'true positive rate (log)' : 'true positive rate', ticks, ticks)];
  // Chance: TPR = FPR, a diagonal on both scales.
  parts.push(`<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(1)}" y2="${sy(1)}" stroke="#999" stroke-dasharray="5 4"/>`);
  series.forEach((a, i) => {
    const color = COLORS[i % COLORS.length]!;
    // Steps: a threshold moves TPR and FPR together only for tied scores.
    // On log axes the (0, 0) start would draw a fake diagonal from the corner: start at TPR > 0.
    const pts = a.roc.filter((p) => !log || p.tpr > 0).map((p) => `${sx(p.fpr).toFixed(1)},${sy(p.tpr).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round"/>`);
    parts.push(`<rect x="${f.left + plotW(f) - legendWidth}" y="${f.top + plotH(f) - 14 - 16 * (series.length - i)}" width="10" height="10" fill="${color}"/><text x="${f.left + plotW(f) - legendWidth + 15}" y="${f.top + plotH(f) - 5 - 16 * (series.length - i)}" font-size="11">${esc(a.label)} ${fmt(a.auc)}</text>`);
  });
  parts.push(`<text x="${f.left}" y="18" font-size="13" font-weight="bold">${esc(title)}</text>`);
  return svg(f, `ROC curve ${log ? 'log-log' : 'linear'}`, parts.join(''));
}

/** ROC curves of every attack of an audit. */
function rocSvg(r: AuditReport, log: boolean): string {
  return rocChartSvg(r.attacks.map((a) => ({ label: a.attack, auc: a.auc, roc: a.roc })), Math.max(r.members, r.nonMembers), log, `ROC curve${log ? ', log-log' : ''} (legend: attack AUC)`);
}

/** Histograms of log10 per-example loss for members and non-members (fractions of each set). */
function lossHistogramSvg(r: AuditReport): string {
  const f: Frame = { width: 560, height: 400, left: 56, right: 14, top: 48, bottom: 44 };
  const bins = 40;
  const floor = 1e-8;
  const logs = (xs: number[]) => xs.map((v) => Math.log10(Math.max(v, floor)));
  const m = logs(r.memberLosses);
  const o = logs(r.nonMemberLosses);
  const all = [...m, ...o];
  let lo = Math.floor(Math.min(...all));
  let hi = Math.ceil(Math.max(...all));
  if (hi - lo < 1) { lo -= 1; hi += 1; }
  const count = (xs: number[]) => {
    const c = new Array<number>(bins).fill(0);
    for (const v of xs) c[Math.min(bins - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * bins)))]! += 1 / Math.max(1, xs.length);
    return c;
  };
  const cm = count(m);
  const co = count(o);
  const top = Math.max(...cm, ...co, 1e-9);
  const step = [0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25].find((s) => Math.ceil(top / s - 1e-9) <= 6) ?? 0.25;
  const niceTop = Math.ceil(top / step - 1e-9) * step;
  const bw = plotW(f) / bins;
  const sy = (v: number) => f.top + plotH(f) - (v / niceTop) * plotH(f);
  const decades = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  const decadeStep = Math.ceil(decades.length / 10);
  const xTicks = decades.filter((_, i) => i % decadeStep === 0).map((d): [number, string] => [(d - lo) / (hi - lo), `10<tspan dy="-5" font-size="8">${d}</tspan>`]);
  const yTicks = Array.from({ length: Math.round(niceTop / step) + 1 }, (_, k): [number, string] => [(k * step) / niceTop, String(Number((k * step).toFixed(4)))]);
  const parts = [axes(f, 'per-example cross-entropy loss (log scale)', 'fraction of examples', xTicks, yTicks)];
  cm.forEach((v, i) => v > 0 && parts.push(`<rect x="${(f.left + i * bw).toFixed(1)}" y="${sy(v).toFixed(1)}" width="${(bw * 0.5).toFixed(1)}" height="${(f.top + plotH(f) - sy(v)).toFixed(1)}" fill="${MEMBER_COLOR}" fill-opacity="0.85"/>`));
  co.forEach((v, i) => v > 0 && parts.push(`<rect x="${(f.left + i * bw + bw * 0.5).toFixed(1)}" y="${sy(v).toFixed(1)}" width="${(bw * 0.5).toFixed(1)}" height="${(f.top + plotH(f) - sy(v)).toFixed(1)}" fill="${NON_MEMBER_COLOR}" fill-opacity="0.85"/>`));
  // Legend in the top margin, where no bar can hide it.
  const lx = f.left;
  parts.push(`<rect x="${lx}" y="${f.top - 17}" width="10" height="10" fill="${MEMBER_COLOR}"/><text x="${lx + 15}" y="${f.top - 8}" font-size="11">members (${r.members})</text>`);
  parts.push(`<rect x="${lx + 130}" y="${f.top - 17}" width="10" height="10" fill="${NON_MEMBER_COLOR}"/><text x="${lx + 145}" y="${f.top - 8}" font-size="11">non-members (${r.nonMembers})</text>`);
  parts.push(`<text x="${f.left}" y="18" font-size="13" font-weight="bold">Loss histograms (losses below 1e-8 in the first bin)</text>`);
  return svg(f, 'loss histograms', parts.join(''));
}

function attackRow(a: AttackResult): string {
  const e = a.epsilon;
  return `<tr><td>${esc(a.attack)}</td><td>${fmt(a.auc)}</td><td>${fmt(a.advantage)}</td><td>${fmt(a.balancedAccuracy)}</td>${(['tprAtFpr1', 'tprAtFpr01', 'tprAtFpr001'] as const).map((k) => `<td${a.unavailable?.[k] ? ` title="${esc(a.unavailable[k]!)}"` : ''}>${fmt(a[k])}</td>`).join('')}<td>${fmt(e.estimate, 2)}</td><td>[${fmt(e.lower95, 2)}, ${fmt(e.upper95, 2)}]</td><td>${fmt(e.tpr)} / ${fmt(e.fpr)}</td></tr>`;
}

export interface AuditHtmlExtras {
  /** The one-run audit of the model's own training run (its rp-onnx.training record), if it had one. */
  oneRunAudit?: OneRunAuditRecord;
  /** The accountant's epsilon of that run (rp-onnx.privacy), for comparison; null when none is claimed. */
  accountantEpsilon?: number | null;
}

/** The one-run audit's table (Steinke, Nasr, Jagielski 2023), beside the accountant's epsilon. */
function oneRunSection(a: OneRunAuditRecord, accountant: number | null | undefined): string {
  const rows: [string, string][] = [
    ['canaries', `${a.canaries} ${a.kind === 'ood' ? 'out-of-distribution' : 'mislabelled'} (${a.source}); ${a.included} included, each with probability 1/2`],
    ['guesses', `${a.guesses} (${a.guessedIn} IN for the highest scores, ${a.guessedOut} OUT for the lowest; abstained on ${a.canaries - a.guesses})`],
    ['correct', String(a.correct)],
    [`epsilon lower bound (${100 * a.confidence}% confidence, delta ${a.delta})`, fmt(a.epsilonLowerBound)],
    ['accountant\'s epsilon (upper bound)', accountant === undefined ? 'no DP-SGD record' : accountant === null ? 'none claimed' : fmt(accountant)],
  ];
  return `<h2>One-run audit of the training run</h2>
<table class="summary one-run">${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>
<p class="note">Recorded by <code>rp-onnx train --audit-canaries</code> (Steinke, Nasr, Jagielski 2023): canaries were put into the training set independently with probability 1/2 and scored by their loss after training; from the correct guesses among those made, any (&epsilon;, &delta;)-DP training would have to have at least this &epsilon; (at 95% confidence). It is an empirical lower bound from one run, never a guarantee; under DP-SGD it must stay below the accountant's &epsilon;.</p>
`;
}

/** The style of rp-onnx's report pages (this one and the experiments'). */
export const REPORT_STYLE = `body{font-family:sans-serif;margin:24px;color:#222;max-width:1500px}
h1{font-size:22px;margin:0 0 12px}h2{font-size:17px;margin:22px 0 8px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #bbb;padding:4px 10px;text-align:right;font-size:14px}
th{background:#eee}td:first-child,th:first-child{text-align:left}table.summary td{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:16px}.note{color:#555;font-size:13px;max-width:1100px}`;

/** The report page; `details` adds rows (model file, data, command) to the summary table. */
export function renderAuditHtml(r: AuditReport, title: string, details: Record<string, string> = {}, extras: AuditHtmlExtras = {}): string {
  const summary: [string, string][] = [
    ...Object.entries(details),
    ['members / non-members', `${r.members} / ${r.nonMembers}`],
    ['passes averaged per query', String(r.samples)],
    ['train accuracy (audited members)', pct(r.trainAccuracy)],
    ['test accuracy (audited non-members)', pct(r.testAccuracy)],
    ['generalization gap', `${(100 * r.generalizationGap).toFixed(2)} points`],
    ['delta of the epsilon bound', String(r.delta)],
  ];
  if (r.reference) summary.push(['reference models (lira-offline)', `${r.reference.models}, ${r.reference.variance} variance`]);
  if (r.shadows) summary.push(['shadow models (lira-online, rmia)', `${r.shadows.models}, each trained on a random half of the audited examples; LiRA ${r.shadows.variance} variance; query augmentation ${r.shadows.queries}${r.shadows.population ? `; RMIA population ${r.shadows.population}` : ''}`]);
  const best = r.attacks.reduce<AttackResult | null>((a, b) => (a === null || b.auc > a.auc ? b : a), null);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
${REPORT_STYLE}
</style>
</head><body>
<h1>${esc(title)}</h1>
${best ? `<p>Strongest attack: <b>${esc(best.attack)}</b>, AUC ${fmt(best.auc)} (0.5 = chance), advantage ${fmt(best.advantage)}.</p>` : ''}
<table class="summary">${summary.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>
<h2>Membership-inference attacks</h2>
<table><tr><th>attack</th><th>AUC</th><th>advantage</th><th>balanced accuracy</th><th>TPR at FPR 1%</th><th>TPR at FPR 0.1%</th><th>TPR at FPR 0.01%</th><th>empirical &epsilon;</th><th>95% lower bound, upper end</th><th>at TPR / FPR</th></tr>
${r.attacks.map(attackRow).join('\n')}</table>
<div class="charts">${rocSvg(r, false)}${rocSvg(r, true)}${lossHistogramSvg(r)}</div>
${extras.oneRunAudit ? oneRunSection(extras.oneRunAudit, extras.accountantEpsilon) : ''}
<p class="note">Threshold attacks score each example from the model's output: loss and confidence (Yeom et al. 2018), max-confidence and entropy (no label needed), modified entropy (Song &amp; Mittal 2021); lira-offline compares the target's logit-scaled confidence with reference models trained without the example, lira-online with Gaussians fitted to shadow models trained with and without it (Carlini et al. 2022), rmia the target-to-reference probability ratio with that of population examples (Zarifzadeh et al. 2024). Advantage = max |TPR &minus; FPR| over thresholds. TPR at low FPR reads the ROC steps without interpolation. TPR at an FPR below 1/(non-members) cannot be measured and reads n/a. Empirical &epsilon;: any (&epsilon;, &delta;)-DP training bounds TPR &le; e<sup>&epsilon;</sup>FPR + &delta; and 1 &minus; FPR &le; e<sup>&epsilon;</sup>(1 &minus; TPR) + &delta; (Jagielski et al. 2020, Nasr et al. 2021). The threshold is chosen on a random half of the audited examples; on the other half one-sided Clopper-Pearson bounds on TPR and FPR, Bonferroni-corrected for the ${r.attacks.length} attack(s) of this table, give a lower bound that holds with 95% confidence for all attacks together. Point estimate and upper end are read on the same held-out half.</p>
</body></html>
`;
}
