/** rp-onnx's version, from its package.json (recorded in the metadata of files it writes). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/data/paths.js';

let cached: string | undefined;

export function toolVersion(): string {
  if (cached === undefined) {
    const pj = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown };
    cached = typeof pj.version === 'string' ? pj.version : 'unknown';
  }
  return cached;
}
