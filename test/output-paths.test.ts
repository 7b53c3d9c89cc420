/**
 * Outputs are validated before any work and nothing is overwritten: checkOutputPath and
 * checkOutputDir against real files (missing folder, a file as folder, a folder as target,
 * special files, unwritable places, inputs reached through links), and every command that
 * writes, run with an output it cannot write and a model or data set that does not exist: the
 * error must name the output (the input was never opened).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkOutputDir, checkOutputPath } from '../src/fs-atomic.js';
import { buildProgram } from '../cli/program.js';
import { commandPath } from '../cli/common.js';
import { cliMany } from './helpers/cli-runs.js';

function scratch() {
  const dir = mkdtempSync(join(tmpdir(), 'rp-outputs-'));
  writeFileSync(join(dir, 'in.onnx'), 'input bytes');
  writeFileSync(join(dir, 'exists.onnx'), 'old');
  writeFileSync(join(dir, 'afile'), 'x');
  mkdirSync(join(dir, 'sub'));
  return dir;
}

test('checkOutputPath: folder exists and is a folder, target no folder nor special file, writable, no input, no overwrite without force', () => {
  const d = scratch();
  try {
    const ok = (p: string, o = {}) => assert.doesNotThrow(() => checkOutputPath(p, o), p);
    const bad = (p: string, re: RegExp, o = {}) => assert.throws(() => checkOutputPath(p, o), re, p);
    ok(join(d, 'new.onnx'));
    bad(join(d, 'nodir', 'x.onnx'), /-o .*nodir\/x\.onnx: the folder .*nodir does not exist/, { flag: '-o' });
    bad(join(d, 'afile', 'x.onnx'), /afile is not a folder/);
    bad(join(d, 'sub'), /--report .*sub is a folder: give a file name to --report/, { flag: '--report', force: true });
    bad(join(d, 'exists.onnx'), /exists\.onnx already exists: pass --force/);
    ok(join(d, 'exists.onnx'), { force: true });
    bad('/dev/null', /is not a regular file/, { force: true });
    bad('/proc/rp-onnx-out.onnx', /cannot write in \/proc/);
    bad(join(d, 'in.onnx'), /refusing to overwrite the input/, { inputs: [join(d, 'in.onnx')], force: true });
    symlinkSync(join(d, 'in.onnx'), join(d, 'link.onnx'));
    bad(join(d, 'link.onnx'), /refusing to overwrite the input/, { inputs: [join(d, 'in.onnx')], force: true });
    linkSync(join(d, 'in.onnx'), join(d, 'hard.onnx'));
    bad(join(d, 'hard.onnx'), /refusing to overwrite the input/, { inputs: [join(d, 'in.onnx')], force: true });
    bad('', /empty file name/);
    // The check leaves nothing behind (its writability probe included).
    assert.deepEqual(readdirSync(d).sort(), ['afile', 'exists.onnx', 'hard.onnx', 'in.onnx', 'link.onnx', 'sub']);
    assert.equal(readFileSync(join(d, 'in.onnx'), 'utf8'), 'input bytes');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('checkOutputDir: an earlier run is refused without force; a missing folder is fine where it can be created', () => {
  const d = scratch();
  try {
    writeFileSync(join(d, 'sub', 'a.md'), 'earlier');
    assert.throws(() => checkOutputDir(join(d, 'sub'), ['a.md', 'a.html'], { flag: '--out-dir' }), /--out-dir .*sub already holds a\.md: pass --force/);
    assert.doesNotThrow(() => checkOutputDir(join(d, 'sub'), ['a.md', 'a.html'], { force: true }));
    assert.doesNotThrow(() => checkOutputDir(join(d, 'sub'), ['b.md']));
    assert.doesNotThrow(() => checkOutputDir(join(d, 'x', 'y', 'z'), ['a.md']));
    assert.throws(() => checkOutputDir(join(d, 'afile'), ['a.md']), /afile is not a folder/);
    assert.throws(() => checkOutputDir(join(d, 'afile', 'deeper'), ['a.md']), /afile is not a folder/);
    assert.throws(() => checkOutputDir('/proc/rp-onnx-out', ['a.md']), /cannot write in \/proc/);
    mkdirSync(join(d, 'sub', 'a.html'));
    assert.throws(() => checkOutputDir(join(d, 'sub'), ['a.html'], { force: true }), /a\.html is a folder/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('every command that writes refuses a bad output before opening its inputs', () => {
  const d = scratch();
  try {
    const none = join(d, 'missing.onnx');
    const noData = join(d, 'no-data');
    writeFileSync(join(d, 'sub', 'resnet8.onnx'), 'earlier demo');
    mkdirSync(join(d, 'exp'));
    writeFileSync(join(d, 'exp', 'experiment-residual-perturbation-quick.md'), 'earlier results');
    const nodir = join(d, 'nodir', 'x.onnx');
    const cases: [string[], RegExp][] = [
      [['perturb', none, '--gamma', '1', '-o', nodir], /-o .*nodir\/x\.onnx: the folder .*nodir does not exist/],
      [['perturb', none, '--gamma', '1', '-o', join(d, 'sub')], /-o .*sub is a folder/],
      [['strip', none, '-o', nodir], /the folder .*nodir does not exist/],
      [['models', 'create', 'resnet8', '-o', join(d, 'sub')], /-o .*sub is a folder/],
      [['models', 'create', 'resnet8', '-o', nodir], /the folder .*nodir does not exist/],
      [['convert', none, '-o', nodir], /the folder .*nodir does not exist/],
      [['audit', none, '--train-data', noData, '--report', join(d, 'nodir', 'r.html')], /--report .*nodir\/r\.html: the folder .*nodir does not exist/],
      [['audit', none, '--train-data', noData, '--report', join(d, 'sub')], /--report .*sub is a folder/],
      [['train', none, '--data', noData, '-o', nodir], /the folder .*nodir does not exist/],
      [['train', none, '--data', noData, '-o', join(d, 'sub')], /sub is a folder/],
      [['train', none, '--data', noData, '-o', join(d, 'exists.onnx')], /exists\.onnx already exists: pass --force/],
      [['attack', 'gradient-leakage', '--data', noData, '--index', '0', '--out', join(d, 'nodir', 'x.png')], /the folder .*nodir does not exist/],
      [['demo', '--out-dir', join(d, 'sub')], /--out-dir .*sub already holds resnet8\.onnx: pass --force/],
      [['demo', '--out-dir', join(d, 'afile')], /--out-dir .*afile is not a folder/],
      [['experiment', 'residual-perturbation', '--quick', '--data', noData, '--out-dir', join(d, 'exp')], /--out-dir .*exp already holds experiment-residual-perturbation-quick\.md: pass --force/],
    ];
    const runs = cliMany(cases.map((c) => c[0]));
    cases.forEach(([args, re], i) => {
      const r = runs[i]!;
      assert.notEqual(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.stderr.split('\n').length, 2, `${args.join(' ')}: one line: ${r.stderr}`);
    });
    assert.equal(readFileSync(join(d, 'exp', 'experiment-residual-perturbation-quick.md'), 'utf8'), 'earlier results');
    assert.equal(readFileSync(join(d, 'sub', 'resnet8.onnx'), 'utf8'), 'earlier demo');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('experiment and demo write outside the source tree by default; docs/ only when asked', () => {
  const program = buildProgram();
  const find = (path: string) => {
    let c = program;
    for (const name of path.split(' ')) c = c.commands.find((x) => x.name() === name)!;
    return c;
  };
  const outDir = (path: string) => find(path).options.find((o) => o.long === '--out-dir')!.defaultValue as string;
  assert.equal(outDir('experiment residual-perturbation'), join('rp-experiments', 'residual-perturbation'));
  assert.equal(outDir('demo'), 'rp-demo');
  const ignored = readFileSync('.gitignore', 'utf8').split('\n');
  for (const d of ['rp-demo/', 'rp-experiments/']) assert.ok(ignored.includes(d), `.gitignore has ${d}`);
  for (const path of ['experiment residual-perturbation', 'demo']) {
    assert.ok(find(path).options.some((o) => o.long === '--force'), `${commandPath(find(path))} --force`);
  }
});
