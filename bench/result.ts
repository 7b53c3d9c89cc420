/** What every benchmark returns: rows measured side by side in one run, and a one-line verdict. */
export interface BenchResult {
  name: string;
  rows: Record<string, number | string>[];
  summary: string;
}

/** Median of a list of numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function printResult(r: BenchResult): void {
  process.stdout.write(`\n## ${r.name}\n`);
  if (r.rows.length > 0) {
    const cols = [...new Set(r.rows.flatMap((row) => Object.keys(row)))];
    const fmt = (v: number | string | undefined) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : (v ?? ''));
    const widths = cols.map((c) => Math.max(c.length, ...r.rows.map((row) => fmt(row[c]).length)));
    const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |\n`;
    process.stdout.write(line(cols));
    process.stdout.write(line(widths.map((w) => '-'.repeat(w))));
    for (const row of r.rows) process.stdout.write(line(cols.map((c) => fmt(row[c]))));
  }
  process.stdout.write(`${r.summary}\n`);
}
