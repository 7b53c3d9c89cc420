/**
 * Where datasets live. The package ships a small Fashion-MNIST subset under data/; the full
 * dataset is looked for in the usual places on this kind of machine.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RpOnnxError } from '../errors.js';

let root: string | undefined;

/**
 * The folder holding rp-onnx's package.json, found by walking up from this module, so it is the
 * same whether this file runs from src/ (tsx) or from dist/src/ after a build.
 */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: unknown }).name === 'rp-onnx') return (root = dir);
      } catch {
        // not our package.json; keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new RpOnnxError(`cannot find rp-onnx's package.json above ${fileURLToPath(import.meta.url)}; reinstall the package`);
    dir = parent;
  }
}

/** The embedded dataset: the first 4,000 training and 1,000 test images of Fashion-MNIST (IDX .gz). */
export function defaultDataDir(): string {
  return join(packageRoot(), 'data', 'fashion-mnist-small');
}

/** Debian's dataset-fashion-mnist package installs the four IDX .gz files here. */
export const DEBIAN_FASHION_MNIST = '/usr/share/datasets/fashion-mnist';

/**
 * A directory holding the full Fashion-MNIST IDX files, or undefined. Looked for, in order: the
 * FASHION_MNIST_DIR environment variable, ../shared/data/fashion-mnist next to the package root,
 * and Debian's /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist).
 */
export function findFashionMnist(): string | undefined {
  const candidates = [
    process.env['FASHION_MNIST_DIR'],
    join(packageRoot(), '..', 'shared', 'data', 'fashion-mnist'),
    DEBIAN_FASHION_MNIST,
  ];
  for (const c of candidates) {
    if (!c) continue;
    const dir = resolve(c);
    if (['train-images-idx3-ubyte.gz', 'train-images-idx3-ubyte'].some((f) => existsSync(join(dir, f)))) return dir;
  }
  return undefined;
}
