/**
 * Usage errors across every command: one line `error: ... (see 'rp-onnx CMD --help')` on
 * stderr and exit code 2, whether commander raised it (missing argument, unknown option,
 * invalid choice, unknown command, excess argument) or a flag's parser or the action refused
 * the value; --help exits 0 on stdout; runtime failures keep their own code. The parser runs in
 * process (cli/program.ts, process.exit stubbed); one spawned run checks cli/main.ts itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../cli/program.js';
import { assertUsage, cliMany } from './helpers/cli-runs.js';
import { commandPath } from '../cli/common.js';
import { buildResNet } from '../models/resnet.js';
import { saveModel } from '../src/graph/io.js';

function leaves(cmd: Command): Command[] {
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  return subs.length === 0 ? [cmd] : subs.flatMap(leaves);
}

const all = leaves(buildProgram());

test('cli usage: every command: unknown option, missing required argument, --help', () => {
  assert.ok(all.length >= 14, `${all.length} commands`);
  const paths = all.map((c) => commandPath(c));
  const required = all.filter((c) => c.registeredArguments.some((a) => a.required)).map((c) => commandPath(c));
  assert.ok(required.length >= 8, `${required.length} commands with required arguments`);
  const args = (path: string) => path.split(' ').slice(1);
  const runs = cliMany([
    ...paths.map((p) => [...args(p), '--no-such-flag-xyz']),
    ...paths.map((p) => [...args(p), '--help']),
    ...required.map((p) => args(p)),
    ['models', 'list', '--bogus'],
    ['serve', 'm.onnx', '--prot', '1'],
  ]);
  const unknown = runs.slice(0, paths.length), help = runs.slice(paths.length, 2 * paths.length);
  const missing = runs.slice(2 * paths.length, 2 * paths.length + required.length), [list, serve] = runs.slice(-2);
  paths.forEach((p, i) => {
    assertUsage(unknown[i]!, p, `${p} --no-such-flag-xyz`);
    assert.equal(help[i]!.code, 0, `${p} --help`);
    assert.equal(help[i]!.stderr, '', `${p} --help`);
    assert.match(help[i]!.stdout, new RegExp(`^Usage: ${p} `), `${p} --help`);
  });
  required.forEach((p, i) => assertUsage(missing[i]!, p, p, /missing required argument|required option/));
  // On a command without required operands an unknown option is exactly that error.
  assertUsage(list!, 'rp-onnx models list', 'models list --bogus', /^error: unknown option '--bogus'/);
  assertUsage(serve!, 'rp-onnx serve', 'serve --prot', /unknown option '--prot' \(Did you mean --port\?\)/);
});

test('cli usage: commander errors, option parsers and action validation all exit 2 with the hint', () => {
  const cases: [string[], string, RegExp][] = [
    [['serve', 'm.onnx', '--port', 'abc'], 'rp-onnx serve', /--port expects an integer, got 'abc'/],
    [['serve', 'm.onnx', '--header-timeout', 'soon'], 'rp-onnx serve', /--header-timeout expects a number/],
    [['train', 'm.onnx', '--dp', '--sampling', 'foo'], 'rp-onnx train', /'foo' is invalid\. Allowed choices are poisson, shuffle/],
    [['perturb', 'm.onnx', '--gamma', 'x'], 'rp-onnx perturb', /--gamma expects a number >= 0/],
    [['perturb', 'm.onnx', '--gamma', '1', '--strategy', 'III'], 'rp-onnx perturb', /--strategy must be I or II/],
    [['predict', 'm.onnx'], 'rp-onnx predict', /give exactly one of --data DIR and --input FILE\.npy/],
    [['demo', '--strategy', 'X'], 'rp-onnx demo', /--strategy must be I or II/],
    [['audit', 'm.onnx', '--attacks', 'guess'], 'rp-onnx audit', /--attacks: unknown attack 'guess'/],
    [['convert', 'm.onnx', '-o', 'x.onnx', '--location', 'd'], 'rp-onnx convert', /--location needs --external-data/],
    [['strip', 'a.onnx', 'b.onnx', '-o', 'x.onnx'], 'rp-onnx strip', /too many arguments/],
    [['nosuch'], 'rp-onnx', /^error: unknown command 'nosuch'/],
    [['models', 'crate'], 'rp-onnx models', /unknown command 'crate' \(Did you mean create\?\)/],
    [['experiment', 'residual-perturbation', '--shadows', '2.5'], 'rp-onnx experiment residual-perturbation', /--shadows expects an integer/],
  ];
  const bare = [[], ['models'], ['experiment']];
  const runs = cliMany([...cases.map((c) => c[0]), ...bare, ['--version']]);
  cases.forEach(([args, path, message], i) => assertUsage(runs[i]!, path, args.join(' '), message));
  // A bare group prints its help (on stderr) and is a usage error too.
  bare.forEach((args, i) => {
    const r = runs[cases.length + i]!;
    assert.equal(r.code, 2, `'${args.join(' ')}'`);
    assert.match(r.stderr, /^Usage: rp-onnx/);
  });
  assert.equal(runs.at(-1)!.code, 0);
});

test('cli usage: bad input and runtime failures keep their own codes, without the --help hint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-cli-usage-'));
  const busy = createServer();
  try {
    const model = join(dir, 'm.onnx');
    saveModel(buildResNet('resnet8', { inChannels: 1, classes: 10, imageSize: 8, seed: 1 }), model);
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
    const port = (busy.address() as AddressInfo).port;
    const [missing, r] = cliMany([['inspect', join(dir, 'none.onnx')], ['serve', model, '--port', String(port), '--threads', '1']]);
    assert.equal(missing!.code, 2);
    assert.match(missing!.stderr, /^error: .*none\.onnx.*\n$/);
    assert.doesNotMatch(missing!.stderr, /--help/);
    assert.equal(r!.code, 1, r!.stderr);
    assert.match(r!.stderr, /^error: --port \d+: the address 127\.0\.0\.1:\d+ is already in use; choose another port\n$/);
  } finally {
    busy.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cli usage: cli/main.ts itself prints one line and exits 2', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join('cli', 'main.ts'), 'serve'], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, "error: missing required argument 'model' (see 'rp-onnx serve --help')\n");
});
