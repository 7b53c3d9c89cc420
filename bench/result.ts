/** What every benchmark returns: rows measured side by side in one run, and a one-line verdict. */
export interface BenchResult {
  name: string;
  rows: Record<string, number | string>[];
  summary: string;
  /** The issue #13 goals this benchmark measured (printed together at the end of `npm run bench`). */
  goals?: Goal[];
}

/**
 * One goal as measured: `value` is the ratio (or MiB) this run measured, or a string saying why
 * there is none (a peer that is not installed); never a number that was not measured here.
 */
export interface Goal {
  goal: string;
  value: number | string;
  /** The goal holds when value <= max. */
  max: number;
  /** How the value was obtained (e.g. the interleaved and standalone ratios behind the worse one). */
  detail?: string;
}

/** Median of a list of numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** 'pass', 'FAIL', or '-' where nothing was measured. */
export function verdict(g: Goal): string {
  return typeof g.value === 'number' ? (g.value <= g.max ? 'pass' : 'FAIL') : '-';
}

function printTable(rows: Record<string, number | string>[]): void {
  if (rows.length === 0) return;
  const cols = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const fmt = (v: number | string | undefined) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : (v ?? ''));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((row) => fmt(row[c]).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |\n`;
  process.stdout.write(line(cols));
  process.stdout.write(line(widths.map((w) => '-'.repeat(w))));
  for (const row of rows) process.stdout.write(line(cols.map((c) => fmt(row[c]))));
}

export function printResult(r: BenchResult): void {
  process.stdout.write(`\n## ${r.name}\n`);
  printTable(r.rows);
  process.stdout.write(`${r.summary}\n`);
}

/** The goals of every benchmark run, one row each: measured, goal, verdict, how. */
export function printGoals(goals: readonly Goal[]): void {
  if (goals.length === 0) return;
  process.stdout.write('\n## goals (issue #13), as measured in this run\n');
  printTable(goals.map((g) => ({
    goal: g.goal,
    measured: typeof g.value === 'number' ? g.value.toFixed(g.value >= 100 ? 0 : 3) : g.value,
    target: `<= ${g.max}`,
    verdict: verdict(g),
    how: g.detail ?? '',
  })));
}
