/** Debian's libonnx-testdata: ONNX's own backend test models. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const TESTDATA = '/usr/share/libonnx-testdata/data';

/** Every `model.onnx` under `dir`, sorted. */
export function findModels(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findModels(p));
    else if (name === 'model.onnx') out.push(p);
  }
  return out.sort();
}
