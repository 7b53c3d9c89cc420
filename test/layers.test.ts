/**
 * The layers of docs/architecture.md, checked against the code: every relative import in src/,
 * models/ and cli/ points to the same layer or one below it. The table here is the one the
 * document shows; a new top-level folder must be placed in it before it can be imported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Low to high. A file may import from its own layer or any layer listed before it. */
const LAYERS = [
  'src (root files)', 'src/graph', 'src/reference', 'src/passes', 'models', 'src/runtime', 'src/data',
  'src/privacy', 'src/train', 'src/jobs', 'src/audit', 'src/serve', 'src/experiments', 'cli',
] as const;

function layerOf(file: string): number {
  const rel = relative(root, file).split('\\').join('/');
  const parts = rel.split('/');
  const name = parts[0] === 'src' ? (parts.length === 2 ? 'src (root files)' : `src/${parts[1]}`) : parts[0]!;
  const k = (LAYERS as readonly string[]).indexOf(name);
  if (k < 0) throw new Error(`${rel} is in no layer of docs/architecture.md (${name})`);
  return k;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|^import\s+)(['"])(\.{1,2}\/[^'"]+)\1/gm)) specs.push(m[2]!);
  return specs;
}

test('every import points to its own layer or a lower one', () => {
  const files = ['src', 'models', 'cli'].flatMap((d) => sources(join(root, d)));
  assert.ok(files.length > 100, `found only ${files.length} source files`);
  const upward: string[] = [];
  let edges = 0;
  for (const f of files) {
    const from = layerOf(f);
    for (const spec of relativeImports(f)) {
      const target = normalize(join(dirname(f), spec));
      const to = layerOf(target);
      edges++;
      if (to > from) upward.push(`${relative(root, f)} imports ${relative(root, target)} (${LAYERS[from]} -> ${LAYERS[to]})`);
    }
  }
  assert.ok(edges > 500, `found only ${edges} imports: is the parser still reading them?`);
  assert.deepEqual(upward, []);
});

test('the layer table is the one docs/architecture.md shows', () => {
  const doc = readFileSync(join(root, 'docs', 'architecture.md'), 'utf8');
  const line = doc.split('\n').find((l) => l.startsWith('Layers, low to high:'));
  assert.ok(line, 'docs/architecture.md has a "Layers, low to high:" line');
  const named = [...line.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
  assert.deepEqual(named, [...LAYERS]);
});

test('the checker sees an upward import (a planted one)', () => {
  // The parser on a literal: a file in src/graph importing src/train must count as upward.
  const specs = [...`import { fit } from '../train/fit.js';`.matchAll(/(?:from\s+)(['"])(\.{1,2}\/[^'"]+)\1/g)].map((m) => m[2]!);
  const from = layerOf(join(root, 'src/graph/x.ts'));
  const to = layerOf(normalize(join(root, 'src/graph', specs[0]!)));
  assert.ok(to > from);
});
