/**
 * Each command's typed parse (cli/flags.ts): a bad flag value is one line
 * `error: --flag must be ..., got X (see 'rp-onnx CMD --help')`, exit 2, before any file is read
 * (the model paths below do not exist). The parser runs in process (test/helpers/cli-in-process.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { assertUsage, cliMany } from './helpers/cli-runs.js';
import { Flags } from '../cli/flags.js';
import { UsageError } from '../cli/common.js';

const acct = ['account', '--sample-rate', '0.04', '--steps', '10', '--delta', '1e-5'];

const cases: [string[], string, RegExp][] = [
  // account: its refusals used to come without the hint.
  [[...acct, '--noise-multiplier', '-1'], 'rp-onnx account', /--noise-multiplier must be >= 0, got -1/],
  [['account', '--noise-multiplier', '1', '--sample-rate', '0', '--steps', '5', '--delta', '1e-5'], 'rp-onnx account', /--sample-rate must be in \(0, 1\], got 0/],
  [['account', '--noise-multiplier', '1', '--sample-rate', '0.1', '--steps', '0', '--delta', '1e-5'], 'rp-onnx account', /--steps must be >= 1, got 0/],
  [['account', '--noise-multiplier', '1', '--sample-rate', '0.1', '--epochs', '-2', '--delta', '1e-5'], 'rp-onnx account', /--epochs must be > 0, got -2/],
  [[...acct, '--noise-multiplier', '1', '--accountant', 'moments'], 'rp-onnx account', /--accountant must be one of prv, rdp, got 'moments'/],
  [[...acct, '--noise-multiplier', '1', '--delta', '1'], 'rp-onnx account', /--delta must be in \(0, 1\), got 1/],
  [[...acct], 'rp-onnx account', /give exactly one of --noise-multiplier and --target-epsilon/],
  // attack: its refusals of flag values used to come without the hint too.
  [['attack', 'gradient-leakage', '--split', 'val'], 'rp-onnx attack gradient-leakage', /--split must be train or test, got 'val'/],
  [['attack', 'gradient-leakage', '--count', '0'], 'rp-onnx attack gradient-leakage', /--count must be a positive integer, got 0/],
  [['attack', 'gradient-leakage', '--method', 'guess'], 'rp-onnx attack gradient-leakage', /--method must be one or more \(comma-separated\) of .*, got 'guess'/],
  // inspect takes no values: what it refuses is commander's, with the hint.
  [['inspect', 'm.onnx', 'n.onnx'], 'rp-onnx inspect', /too many arguments/],
  [['inspect', 'm.onnx', '--jsn'], 'rp-onnx inspect', /unknown option '--jsn'/],
  // audit
  [['audit', 'm.onnx', '--samples', '0'], 'rp-onnx audit', /--samples must be a positive integer, got 0/],
  [['audit', 'm.onnx', '--delta', '1'], 'rp-onnx audit', /--delta must be in \[0, 1\), got 1/],
  [['audit', 'm.onnx', '--variance', 'loose'], 'rp-onnx audit', /--variance must be auto, global or per-example, got 'loose'/],
  [['audit', 'm.onnx', '--layout', 'hwc'], 'rp-onnx audit', /--layout must be nchw or nhwc, got 'hwc'/],
  [['audit', 'm.onnx', '--lr', '0'], 'rp-onnx audit', /--lr must be positive, got 0/],
  [['audit', 'm.onnx', '--batch-norm', 'off'], 'rp-onnx audit', /--batch-norm must be train or frozen, got 'off'/],
  // convert
  [['convert', 'm.onnx', '-o', 'x.onnx', '--threshold', '-1'], 'rp-onnx convert', /--threshold must be at least 0 bytes, got -1/],
  // demo
  [['demo', '--epochs', '0'], 'rp-onnx demo', /--epochs must be a positive integer, got 0/],
  [['demo', '--gamma', '-1'], 'rp-onnx demo', /--gamma must be >= 0, got -1/],
  // experiment
  [['experiment', 'residual-perturbation', '--shadows', '0'], 'rp-onnx experiment residual-perturbation', /--shadows must be an integer >= 2, got 0/],
  [['experiment', 'dp-sgd', '--data', 'd', '--target-epsilon', '3', '--schedule', 'step'], 'rp-onnx experiment dp-sgd', /--schedule must be constant or cosine, got 'step'/],
  [['experiment', 'dp-sgd', '--data', 'd', '--target-epsilon', '3', '--model', 'vgg'], 'rp-onnx experiment dp-sgd', /--model must be one of dp-cnn, resnet8, scatternet-linear, got 'vgg'/],
  // models
  [['models', 'create', 'resnet8', '-o', 'x.onnx', '--norm', 'layer'], 'rp-onnx models create', /--norm must be batch, group or none, got 'layer'/],
  [['models', 'create', 'resnet8', '-o', 'x.onnx', '--classes', '0'], 'rp-onnx models create', /--classes must be a positive integer, got 0/],
  // perturb
  [['perturb', 'm.onnx', '--gamma', '0.1', '--scale', 'big'], 'rp-onnx perturb', /--scale must be absolute or std, got 'big'/],
  [['perturb', 'm.onnx', '--gamma', '0.1,-1'], 'rp-onnx perturb', /--gamma expects a number >= 0 or a comma list/],
  // predict
  [['predict', 'm.onnx', '--data', 'd', '--split', 'val'], 'rp-onnx predict', /--split must be train or test, got 'val'/],
  [['predict', 'm.onnx', '--data', 'd', '--samples', '0'], 'rp-onnx predict', /--samples must be a positive integer, got 0/],
  [['predict', 'm.onnx', '--data', 'd', '--execution-provider', 'tpu'], 'rp-onnx predict', /--execution-provider must be one of cpu, cuda, got 'tpu'/],
  // serve
  [['serve', 'm.onnx', '--port', '70000'], 'rp-onnx serve', /--port must be an integer in 0\.\.65535, got 70000/],
  [['serve', 'm.onnx', '--header-timeout', '0'], 'rp-onnx serve', /--header-timeout must be a positive number of seconds, got 0/],
  [['serve', 'm.onnx', '--max-batch', '0'], 'rp-onnx serve', /--max-batch must be a positive integer, got 0/],
  // strip
  [['strip', 'm.onnx', '-o', ''], 'rp-onnx strip', /--output expects a path, got ''/],
  // worker
  [['worker', '--queue', 'redis://127.0.0.1:1', '--lock-duration', '100'], 'rp-onnx worker', /--lock-duration must be at least 500 ms, got 100/],
  [['worker', '--queue', 'redis://127.0.0.1:1', '--concurrency', '0'], 'rp-onnx worker', /--concurrency must be a positive integer, got 0/],
  // train: its parse refuses before any data is read, with the hint too.
  [['train', 'm.onnx', '--batch', '0'], 'rp-onnx train', /--batch must be a positive integer, got 0/],
  [['train', 'm.onnx', '--resume'], 'rp-onnx train', /--resume needs --checkpoint-dir/],
];

test('cli flags: a bad value of a flag of every command is one usage line with the --help hint, exit 2', () => {
  const runs = cliMany(cases.map((c) => c[0]));
  cases.forEach(([args, path, message], i) => assertUsage(runs[i]!, path, args.join(' '), message));
});

test('account --help: PRV is the default accountant, --accountant prv|rdp', () => {
  const [help] = cliMany([['account', '--help']]);
  assert.equal(help!.code, 0);
  const text = help!.stdout.replace(/\s+/g, ' ');
  assert.match(text, /--accountant <name> accountant of the answer .*: prv \| rdp; prv \(the default\)/);
  assert.match(text, /\(default: "prv"\)/);
  assert.match(text, /prv PRV accountant \(Gopi, Lee, Wutschitz 2021\).* Default\./);
});

test('Flags reads typed values and names the flag the user typed', () => {
  const cmd = new Command('x').exitOverride()
    .option('--max-grad-norm <c>').option('--mode <m>', '', 'a').option('--no-shuffle').option('--list <l>').option('--count <n>', '', '3');
  cmd.parse(['--max-grad-norm', '0.5', '--no-shuffle', '--list', 'a, b,,c', '--count', '2.5'], { from: 'user' });
  const f = new Flags(cmd);
  assert.equal(f.flag('maxGradNorm'), '--max-grad-norm');
  assert.equal(f.number('maxGradNorm', { above: 0 }), 0.5);
  assert.equal(f.choice('mode', ['a', 'b'] as const, { required: true }), 'a');
  assert.equal(f.given('mode'), false);
  assert.equal(f.bool('shuffle'), false);
  assert.deepEqual(f.list('list'), ['a', 'b', 'c']);
  assert.equal(f.int('absent'), undefined);
  assert.throws(() => f.int('count'), (e: unknown) => e instanceof UsageError && e.message === "--count must be an integer, got '2.5'");
  assert.throws(() => f.number('maxGradNorm', { min: 1, max: 2 }), /^UsageError: --max-grad-norm must be in \[1, 2\], got '0\.5'$/);
  assert.throws(() => f.choice('mode', ['b', 'c', 'd'] as const), /^UsageError: --mode must be b, c or d, got 'a'$/);
});
