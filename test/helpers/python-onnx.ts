/**
 * The developer cross-check with the reference ONNX checker (Debian's python3-onnx), when present.
 * The probe imports `onnx.checker`, not just `onnx`: Debian's libonnx-testdata (which the suite
 * installs) puts its data under /usr/lib/python3/dist-packages/onnx/backend, so a bare `import
 * onnx` succeeds as an empty namespace package on a machine without python3-onnx.
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

export const SYSTEM_PYTHON = '/usr/bin/python3';

let probed: boolean | undefined;

/** True where the system python has the real onnx package (its checker). */
export function hasPythonOnnx(): boolean {
  probed ??= existsSync(SYSTEM_PYTHON) && spawnSync(SYSTEM_PYTHON, ['-c', 'import onnx.checker, onnx.shape_inference'], { encoding: 'utf8' }).status === 0;
  return probed;
}

/** The skip option of a test that needs it. */
export const skipWithoutPythonOnnx = (): false | string => (hasPythonOnnx() ? false : 'python3-onnx not installed (the onnx package with its checker)');
