/**
 * What every command shares: the error boundary (one line + exit code, stack only with
 * --verbose), JSON output and small option parsers.
 */
import { RpOnnxError } from '../src/errors.js';

export let verbose = process.argv.includes('--verbose');

/** Wraps a command action: RpOnnxError -> `error: message` and its exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      reportError(e);
    }
  };
}

export function reportError(e: unknown): never {
  if (e instanceof RpOnnxError) {
    process.stderr.write(`error: ${e.message}\n`);
    if (verbose && e.stack) process.stderr.write(`${e.stack}\n`);
    process.exit(e.exitCode);
  }
  const err = e as Error;
  process.stderr.write(`error: ${err?.message ?? String(e)}\n`);
  if (verbose && err?.stack) process.stderr.write(`${err.stack}\n`);
  else process.stderr.write('(internal error; rerun with --verbose for the stack trace)\n');
  process.exit(1);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function parseIntOption(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new RpOnnxError(`${flag} expects an integer, got '${v}'`);
    return n;
  };
}
export function parseNumberOption(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new RpOnnxError(`${flag} expects a number, got '${v}'`);
    return n;
  };
}
