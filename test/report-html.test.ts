import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attackMetrics, rocCurve } from '../src/audit/attack-metrics.js';
import type { AuditReport, AttackName } from '../src/audit/membership-inference.js';
import { renderAuditHtml } from '../src/audit/report-html.js';
import { Random } from '../src/random.js';
import { decodePng, pngSize } from './helpers/png.js';

/** An audit report from synthetic losses: members' losses are smaller (an overfit model). */
function syntheticReport(): AuditReport {
  const rng = new Random(7);
  const n = 500;
  const memberLosses = Array.from({ length: n }, () => Math.exp(rng.normal() * 2 - 5));
  const nonMemberLosses = Array.from({ length: n }, () => Math.exp(rng.normal() * 1.5 - 1));
  const attack = (name: AttackName, m: number[], o: number[]) => ({ attack: name, ...attackMetrics(m, o, 1e-5), roc: rocCurve(m, o) });
  const noisy = (xs: number[]) => xs.map((v) => -v + rng.normal() * 0.5);
  return {
    members: n, nonMembers: n, samples: 1, trainAccuracy: 0.998, testAccuracy: 0.84, generalizationGap: 0.158,
    attacks: [
      attack('loss', memberLosses.map((v) => -v), nonMemberLosses.map((v) => -v)),
      attack('entropy', noisy(memberLosses), noisy(nonMemberLosses)),
    ],
    memberLosses, nonMemberLosses, delta: 1e-5,
  };
}

test('the report is self-contained: no scripts, links, external resources; values and escaping', () => {
  const r = syntheticReport();
  const html = renderAuditHtml(r, 'audit of <model> & "friends"', { model: 'a<b>.onnx' });
  assert.ok(html.startsWith('<!doctype html>'));
  for (const bad of ['<script', '<link', '<img', '<iframe', 'src=', 'href=', 'url(', '@import', '@font-face']) assert.ok(!html.includes(bad), `contains ${bad}`);
  // The only URL is the SVG namespace name, which is never fetched.
  const urls = html.match(/https?:\/\/[^"'\s<>]*/g) ?? [];
  assert.deepEqual([...new Set(urls)], ['http://www.w3.org/2000/svg']);
  assert.ok(html.includes('audit of &lt;model&gt; &amp; &quot;friends&quot;'));
  assert.ok(html.includes('a&lt;b&gt;.onnx'));
  assert.equal((html.match(/<svg /g) ?? []).length, 3);
  assert.ok(html.includes(`<td>${r.attacks[0]!.auc.toFixed(3)}</td>`));
  assert.ok(html.includes('&infin;') || Number.isFinite(r.attacks[0]!.epsilon.upper95));
  // 500 non-members: TPR at 0.01% FPR cannot be measured; the cell says so, with the reason.
  assert.equal(r.attacks[0]!.tprAtFpr001, null);
  assert.ok(html.includes('<th>TPR at FPR 0.01%</th>'));
  assert.match(html, /<td title="FPR 0.01% needs at least 10000 non-members, the audit has 500">n\/a<\/td>/);
  // Log-log ROC next to the linear one.
  assert.ok(html.includes('aria-label="ROC curve log-log"'));
});

test('the report renders in headless Chromium (screenshot size and content)', (t) => {
  const chromium = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => spawnSync('which', [c]).status === 0);
  assert.ok(chromium, 'Chromium is needed to render the HTML report: install it with `apt-get install -y chromium` (Debian package chromium)');
  const dir = mkdtempSync(join(tmpdir(), 'rp-report-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const page = join(dir, 'report.html');
  writeFileSync(page, renderAuditHtml(syntheticReport(), 'rp-onnx audit: synthetic overfit model', { model: 'synthetic.onnx' }));
  const shot = join(dir, 'shot.png');
  const r = spawnSync(chromium, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--hide-scrollbars', `--user-data-dir=${join(dir, 'profile')}`,
    `--screenshot=${shot}`, '--window-size=1200,1600', `file://${page}`,
  ], { encoding: 'utf8', timeout: 45_000 });
  assert.ok(existsSync(shot), `Chromium wrote no screenshot (exit ${r.status}, ${r.error?.message ?? ''}): ${r.stderr.slice(-800)}`);
  const bytes = readFileSync(shot);
  assert.deepEqual(pngSize(bytes), { width: 1200, height: 1600 });
  const png = decodePng(bytes);
  const c = png.channels;
  let nonWhite = 0;
  let blue = 0; // members' bars and the loss ROC: #1f77b4
  let red = 0; // non-members' bars and the entropy ROC: #d62728
  const near = (i: number, rgb: [number, number, number], tol = 40) => Math.abs(png.pixels[i]! - rgb[0]) + Math.abs(png.pixels[i + 1]! - rgb[1]) + Math.abs(png.pixels[i + 2]! - rgb[2]) < tol;
  for (let i = 0; i < png.pixels.length; i += c) {
    if (png.pixels[i]! < 245 || png.pixels[i + 1]! < 245 || png.pixels[i + 2]! < 245) nonWhite++;
    if (near(i, [0x1f, 0x77, 0xb4])) blue++;
    if (near(i, [0xd6, 0x27, 0x28])) red++;
  }
  const total = png.width * png.height;
  t.diagnostic(`screenshot ${bytes.length} bytes, non-white ${(100 * nonWhite / total).toFixed(1)}%, blue ${blue}, red ${red} pixels`);
  assert.ok(nonWhite > total * 0.02, `the page looks blank: ${nonWhite} non-white pixels`);
  assert.ok(blue > 1000 && red > 1000, `charts are missing: ${blue} blue and ${red} red pixels`);
  if (process.env.RP_KEEP_SCREENSHOT) writeFileSync(process.env.RP_KEEP_SCREENSHOT, bytes);
});
