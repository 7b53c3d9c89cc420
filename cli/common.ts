/**
 * What every command shares: the error boundary (one line + exit code, stack only with
 * --verbose), JSON output and small option parsers.
 *
 * Exit codes: 0 success; 2 every usage error (commander's own: missing argument, unknown
 * option, invalid choice; and a flag's value refused by a parser or by the action, UsageError)
 * and bad input (RpOnnxError's default); 1 runtime failures and internal errors; 130 interrupted.
 * A usage error is one line, `error: ... (see 'rp-onnx CMD --help')`.
 */
import { Command, CommanderError } from 'commander';
import { RpOnnxError } from '../src/errors.js';

export let verbose = process.argv.includes('--verbose');

export const USAGE_EXIT_CODE = 2;

/** A flag or argument the command cannot accept as given: printed with a hint to --help, exit 2. */
export class UsageError extends RpOnnxError {
  constructor(message: string) {
    super(message, { exitCode: USAGE_EXIT_CODE });
    this.name = 'UsageError';
  }
}

/** `rp-onnx models create` for the command object commander hands to an action. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** The deepest command `argv` names (for errors raised while commander parses it). */
export function commandFromArgv(program: Command, argv: readonly string[]): Command {
  let cmd = program;
  for (const token of argv.slice(2)) {
    if (token.startsWith('-')) continue;
    const sub = cmd.commands.find((c) => c.name() === token || c.aliases().includes(token));
    if (!sub) break;
    cmd = sub;
  }
  return cmd;
}

const hint = (cmd: Command | undefined) => (cmd ? ` (see '${commandPath(cmd)} --help')` : '');
const oneLine = (s: string) => s.replace(/^error:\s*/, '').replace(/\s*\n\s*/g, ' ').trim();

/** Wraps a command action: RpOnnxError -> `error: message` and its exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      // commander passes the command object last.
      const cmd = args[args.length - 1];
      reportError(e, cmd instanceof Command ? cmd : undefined);
    }
  };
}

/**
 * The error boundary. `cmd` is the command being run, for the --help hint of usage errors.
 * Commander's own errors arrive here through exitOverride (cli/main.ts).
 */
export function reportError(e: unknown, cmd?: Command): never {
  if (e instanceof CommanderError) {
    // --help, --version, and the help a bare `rp-onnx` / `rp-onnx models` prints (already written).
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(0);
    if (e.code === 'commander.help') process.exit(e.exitCode === 0 ? 0 : USAGE_EXIT_CODE);
    process.stderr.write(`error: ${oneLine(e.message)}${hint(cmd)}\n`);
    if (verbose && e.stack) process.stderr.write(`${e.stack}\n`);
    process.exit(USAGE_EXIT_CODE);
  }
  if (e instanceof RpOnnxError) {
    // Library errors name their parameters; the command's flags of the same name say it the
    // user's way (`noiseMultiplier` -> `--noise-multiplier`). Commands whose flags differ from
    // the parameter names map them first (withFlags with their own table).
    const shown = !(e instanceof UsageError) && cmd ? e.withFlags(flagsByParameter(cmd)) : e;
    process.stderr.write(`error: ${oneLine(shown.message)}${e instanceof UsageError ? hint(cmd) : ''}\n`);
    if (verbose && e.stack) process.stderr.write(`${e.stack}\n`);
    process.exit(e.exitCode);
  }
  const err = e as Error;
  process.stderr.write(`error: ${err?.message ?? String(e)}\n`);
  if (verbose && err?.stack) process.stderr.write(`${err.stack}\n`);
  else process.stderr.write('(internal error; rerun with --verbose for the stack trace)\n');
  process.exit(1);
}

/** A command's long flags by the parameter name commander stores them under (`--noise-multiplier` -> noiseMultiplier). */
export function flagsByParameter(cmd: Command): Record<string, string> {
  const table: Record<string, string> = {};
  for (const o of cmd.options) if (o.long && !o.negate) table[o.attributeName()] = o.long;
  return table;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function parseIntOption(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n)) throw new UsageError(`${flag} expects an integer, got '${v}'`);
    return n;
  };
}
export function parseNumberOption(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag} expects a number, got '${v}'`);
    return n;
  };
}
