/**
 * The rp-onnx command tree and its one entry point, apart from cli/main.ts so tests can drive
 * the real parser in process.
 */
import { Command } from 'commander';
import { commandFromArgv, reportError, UsageError } from './common.js';
import { commands } from './registry.js';
import { RpOnnxError } from '../src/errors.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('rp-onnx')
    .description('Make ONNX neural networks private: residual perturbation, private training, audits.')
    .version('0.1.0')
    .option('--verbose', 'print stack traces for errors')
    // Usage errors are one line with a hint, exit 2 (cli/common.ts): commander throws instead
    // of printing and exiting; every command registered below inherits both settings.
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    .addHelpText('after', `
Errors are one line on stderr. Exit codes: 0 success, 2 usage errors (each names the fix or
'rp-onnx CMD --help') and bad input, 1 runtime failures, 130 interrupted.`);
  for (const register of commands) register(program);
  return program;
}

/** Parses argv and runs the command; every error ends in reportError (one line, exit code). */
export async function runCli(argv: readonly string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
  } catch (e) {
    // Errors from actions are reported inside action(); what arrives here was raised while
    // parsing the command line (commander's own errors, option parsers): all usage errors.
    const usage = e instanceof RpOnnxError && !(e instanceof UsageError) ? new UsageError(e.message) : e;
    reportError(usage, commandFromArgv(program, argv));
  }
}
