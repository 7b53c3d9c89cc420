// `npm install` step: builds the C noise generator (native/ziggurat.c) with node-gyp, which npm
// bundles. Optional: without a C compiler or Node's headers the TypeScript generator is used
// (same values, about half the speed), so a failed build warns and never fails the install.
// RP_ONNX_NATIVE=0 skips the build (and, at run time, the addon).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

if (process.env.RP_ONNX_NATIVE === '0') process.exit(0);
const npmDir = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
const gyp = [process.env.npm_config_node_gyp, join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')].find((p) => p && existsSync(p));
const args = ['rebuild', '--directory', 'native'];
// Build against the headers that came with this Node when they are there: no download needed.
const prefix = join(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const warn = (why) => {
  process.stderr.write(`rp-onnx: the C noise generator was not built (${why}); the TypeScript generator is used instead\n`);
  process.exit(0);
};
if (!gyp) warn('node-gyp not found');
const r = spawnSync(process.execPath, [gyp, ...args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
if (r.status !== 0) warn((r.stderr || '').split('\n').filter((l) => /error/i.test(l)).slice(0, 2).join(' ').trim() || `node-gyp exited with ${r.status}`);
