/**
 * The one renaming of library parameters to flags: errors declare their parameters (`params`),
 * `withFlags` writes each as the command's flag. Library messages stay in parameter names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpOnnxError, withFlags } from '../src/errors.js';
import { prepareCheckpointDir } from '../src/train/checkpoint.js';
import { TRAIN_FLAGS } from '../cli/train.js';
import { runCli } from './helpers/cli.js';

const message = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof RpOnnxError, String(e));
    return e.message;
  }
  assert.fail('no error');
};

test('withFlags: every whole-word mention of each declared parameter, nothing else; the flag in front when none is mentioned', () => {
  const e = new RpOnnxError('resume: /x holds no checkpoint; run without resume (resumed runs: see resumeFrom)', { param: 'resume', exitCode: 1 });
  const r = e.withFlags({ resume: '--resume' });
  assert.equal(r.message, '--resume: /x holds no checkpoint; run without --resume (resumed runs: see resumeFrom)');
  assert.equal(r.exitCode, 1);
  assert.equal(new RpOnnxError('gamma has 2 values, gammas 3', { param: 'gamma' }).withFlags({ gamma: '--gamma' }).message, '--gamma has 2 values, gammas 3');
  assert.equal(new RpOnnxError('must be finite', { param: 'gamma' }).withFlags({ gamma: '--gamma' }).message, '--gamma: must be finite');
  // Undeclared words are left alone even when the table knows them; an unmapped parameter is kept.
  assert.equal(new RpOnnxError('delta and gamma', { param: 'gamma' }).withFlags({ delta: '--delta' }).message, 'delta and gamma');
  assert.equal(new RpOnnxError('normFix public-batch needs publicData', { param: ['normFix', 'publicData'] }).withFlags(TRAIN_FLAGS).message, '--norm-fix public-batch needs --public-data');
  // A path or file name that contains a parameter's name is not a mention of it.
  assert.equal(new RpOnnxError('index /data/index/x.idx is past the end; index.json and C:\\index\\y name it too. See index.', { param: 'index' }).withFlags({ index: '--index' }).message,
    '--index /data/index/x.idx is past the end; index.json and C:\\index\\y name it too. See --index.');
});

test('withFlags around sync and async library calls', async () => {
  assert.throws(() => withFlags({ k: '--k' }, () => { throw new RpOnnxError('k must be positive', { param: 'k' }); }), /^RpOnnxError: --k must be positive$/);
  await assert.rejects(withFlags({ k: '--k' }, async () => { throw new RpOnnxError('k must be positive', { param: 'k' }); }), /^RpOnnxError: --k must be positive$/);
  assert.equal(await withFlags({}, async () => 3), 3);
});

test('the checkpoint errors of train read as they did with the old message rewriting', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-errors-'));
  try {
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const used = join(dir, 'used');
    mkdirSync(used);
    writeFileSync(join(used, 'epoch-1.json'), '{}');
    const train = (d: string, o: { resume: boolean; force: boolean }) => message(() => withFlags(TRAIN_FLAGS, () => prepareCheckpointDir(d, o)));
    assert.equal(message(() => prepareCheckpointDir(file, { resume: false, force: false })), `checkpointDir ${file} is a file: choose a folder`);
    assert.equal(train(file, { resume: false, force: false }), `--checkpoint-dir ${file} is a file: choose a folder`);
    assert.equal(train(empty, { resume: true, force: false }), `--resume: ${empty} holds no checkpoint (epoch-K.json); run without --resume to start fresh`);
    assert.equal(train(used, { resume: false, force: false }), `${used} already holds checkpoints of another run (epoch 1): resume it, choose another --checkpoint-dir, or --force to replace them`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the CLI writes a library parameter as the running command\'s flag of the same name', () => {
  // A library error names its parameter; `models create` has --image-size, so the user reads the flag.
  const d = mkdtempSync(join(tmpdir(), 'rp-flags-'));
  try {
    const r = runCli(['models', 'create', 'dp-cnn', '-o', join(d, 'm.onnx'), '--image-size', '13']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^error: --image-size 13 is too small for dp-cnn: it needs at least 14\n$/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
