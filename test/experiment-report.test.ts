/**
 * The residual-perturbation experiment's report: the markdown table says n/a where a TPR cannot
 * be measured, and the HTML page renders in headless Chromium with both charts of every setting
 * visible (accuracy vs TPR at 1% FPR, LiRA-online ROC on log-log axes). Rows are synthetic:
 * scores drawn so that each method's attack is weaker than the last.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attackMetrics, rocCurve } from '../src/audit/attack-metrics.js';
import { Random } from '../src/random.js';
import type { ExperimentRow, ExperimentRun, Setting } from '../src/experiments/residual-perturbation.js';
import { experimentHtml, markdownTables } from '../src/experiments/residual-perturbation-report.js';
import { decodePng, pngSize } from './helpers/png.js';
import { runCli, ROOT } from './helpers/cli.js';

const SETTINGS: Setting[] = [{ name: 'overfit', members: 500, epochs: 30 }, { name: 'generalizing', members: 500, epochs: 3 }];
const RUNS: ExperimentRun[] = [
  { kind: 'baseline' }, { kind: 'perturbed', strategy: 'I', gamma: 1 }, { kind: 'ensemble', strategy: 'I', gamma: 1, size: 5 }, { kind: 'dp-sgd', epsilon: 3 },
];

function rows(n: number): ExperimentRow[] {
  const rng = new Random(3);
  const out: ExperimentRow[] = [];
  for (const s of SETTINGS) {
    RUNS.forEach((run, i) => {
      const shift = (s.name === 'overfit' ? 2 : 0.5) / (1 + i);
      const m = Array.from({ length: n }, () => rng.normal() + shift);
      const o = Array.from({ length: n }, () => rng.normal());
      const metrics = attackMetrics(m, o, 1e-5);
      out.push({
        setting: s.name, method: `method ${i}`, run, testAccuracy: 0.9 - 0.05 * i, trainAccuracy: 0.99 - 0.05 * i,
        attacks: { 'lira-online': metrics, rmia: metrics, loss: metrics }, liraRoc: rocCurve(m, o), shadows: 4,
        epsilon: run.kind === 'dp-sgd' ? 2.99 : null, sigma: run.kind === 'dp-sgd' ? 1.2 : null, delta: run.kind === 'dp-sgd' ? 1e-5 : null,
        oneRun: run.kind === 'dp-sgd' ? { canaries: 100, guesses: 20, correct: 12, epsilonLowerBound: 0, confidence: 0.95, delta: 1e-5, guessedIn: 10, guessedOut: 10 } : null,
        targetSeconds: 10, trainSeconds: 50,
      });
    });
  }
  return out;
}

test('the markdown table: one section per setting, n/a for a TPR below 1/(non-members), the one-run bound on DP rows only', () => {
  const r = rows(500);
  const md = markdownTables(r, SETTINGS);
  assert.equal((md.match(/^### /gm) ?? []).length, 2);
  // 500 non-members: TPR at 1% FPR is a number, at 0.1% FPR n/a.
  const cells = md.split('\n').filter((l) => l.startsWith('| method 0'))[0]!.split(' | ');
  assert.match(cells[4]!, /^\d+\.\d%$/);
  assert.equal(cells[5], 'n/a');
  assert.equal((md.match(/0\.00 \(12\/20 of 100\)/g) ?? []).length, 2);
  assert.equal((md.match(/\| 2\.99 \|/g) ?? []).length, 2);
});

test('the experiment report renders in headless Chromium: both charts of each setting are there and drawn', (t) => {
  const chromium = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => spawnSync('which', [c]).status === 0);
  assert.ok(chromium, 'Chromium is needed to render the HTML report: install it with `apt-get install -y chromium` (Debian package chromium)');
  const html = experimentHtml(rows(500), SETTINGS, { command: 'rp-onnx experiment residual-perturbation --quick', data: 'synthetic', minutes: 1, shadows: 4 });
  for (const bad of ['<script', '<link', '<img', 'src=', 'href=', 'url(']) assert.ok(!html.includes(bad), `contains ${bad}`);
  assert.equal((html.match(/<svg /g) ?? []).length, 4);
  assert.equal((html.match(/aria-label="ROC curve log-log"/g) ?? []).length, 2);
  assert.equal((html.match(/aria-label="test accuracy against attack success"/g) ?? []).length, 2);
  assert.equal((html.match(/LiRA-online TPR at 1% FPR/g) ?? []).length, 2);
  const dir = mkdtempSync(join(tmpdir(), 'rp-exp-report-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const page = join(dir, 'report.html');
  writeFileSync(page, html);
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--hide-scrollbars'];
  // The DOM as laid out: every chart has its size.
  const dom = spawnSync(chromium, [...args, `--user-data-dir=${join(dir, 'profile-dom')}`, '--dump-dom', `file://${page}`], { encoding: 'utf8', timeout: 45_000 });
  assert.equal((dom.stdout.match(/<svg /g) ?? []).length, 4, dom.stderr.slice(-800));
  const shot = join(dir, 'shot.png');
  const r = spawnSync(chromium, [...args, `--user-data-dir=${join(dir, 'profile')}`, `--screenshot=${shot}`, '--window-size=1100,1900', `file://${page}`], { encoding: 'utf8', timeout: 45_000 });
  assert.ok(existsSync(shot), `Chromium wrote no screenshot (exit ${r.status}, ${r.error?.message ?? ''}): ${r.stderr.slice(-800)}`);
  const bytes = readFileSync(shot);
  assert.deepEqual(pngSize(bytes), { width: 1100, height: 1900 });
  const png = decodePng(bytes);
  const c = png.channels;
  // The four methods' colours (#1f77b4, #d62728, #2ca02c, #9467bd): the points and curves of both charts.
  const colours: [number, number, number][] = [[0x1f, 0x77, 0xb4], [0xd6, 0x27, 0x28], [0x2c, 0xa0, 0x2c], [0x94, 0x67, 0xbd]];
  const counts = colours.map(() => 0);
  const rowsWith = colours.map(() => new Set<number>());
  let nonWhite = 0;
  for (let i = 0, p = 0; i < png.pixels.length; i += c, p++) {
    if (png.pixels[i]! < 245 || png.pixels[i + 1]! < 245 || png.pixels[i + 2]! < 245) nonWhite++;
    colours.forEach((rgb, k) => {
      if (Math.abs(png.pixels[i]! - rgb[0]) + Math.abs(png.pixels[i + 1]! - rgb[1]) + Math.abs(png.pixels[i + 2]! - rgb[2]) < 40) {
        counts[k]!++;
        rowsWith[k]!.add(Math.floor(p / png.width));
      }
    });
  }
  const total = png.width * png.height;
  t.diagnostic(`non-white ${(100 * nonWhite / total).toFixed(1)}%, method pixels ${counts.join(', ')}`);
  assert.ok(nonWhite > total * 0.03, `the page looks blank: ${nonWhite} non-white pixels`);
  for (const [k, n] of counts.entries()) assert.ok(n > 300, `method ${k}'s colour is missing from the charts: ${n} pixels`);
  // Both settings' charts: each method's colour appears in two bands of rows far apart.
  for (const [k, set] of rowsWith.entries()) {
    const ys = [...set].sort((a, b) => a - b);
    assert.ok(ys.at(-1)! - ys[0]! > 400, `method ${k}: drawn in one setting only (rows ${ys[0]}-${ys.at(-1)})`);
  }
  if (process.env.RP_KEEP_SCREENSHOT) writeFileSync(process.env.RP_KEEP_SCREENSHOT, bytes);
});

test('experiment residual-perturbation: bad --settings and --shadows are one-line usage errors', () => {
  const data = join(ROOT, 'data', 'fashion-mnist-small');
  for (const [args, re] of [
    [['--settings', 'overfit,tiny'], /--settings must list overfit and\/or generalizing, got 'tiny'/],
    [['--shadows', '1'], /--shadows must be/],
  ] as const) {
    const r = runCli(['experiment', 'residual-perturbation', '--data', data, '--out-dir', join(ROOT, 'rp-experiments', 'never-written'), ...args], { timeoutMs: 60_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
