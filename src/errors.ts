/**
 * The one user-facing error class. Its message is a single line that names the file or parameter
 * at fault and, where there is one, the fix. The CLI prints `error: <message>` and exits non-zero;
 * anything else that escapes is a bug and is printed with its stack under --verbose.
 *
 * Library code names its own parameters (`gamma`, `blocks`), never a command-line flag: an error
 * about a parameter carries `param`, and the CLI, which knows which flag sets it, renames it.
 */
export class RpOnnxError extends Error {
  /** Process exit code the CLI uses for this error (2 = bad usage/input, 1 = runtime failure). */
  readonly exitCode: number;
  /** The library parameter (an identifier) the message is about, mentioned in the message. */
  readonly param: string | undefined;
  constructor(message: string, options?: { exitCode?: number; cause?: unknown; param?: string }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'RpOnnxError';
    this.exitCode = options?.exitCode ?? 2;
    this.param = options?.param;
  }

  /** The same error with its parameter written as the flag that sets it (`gamma` -> `--gamma`). */
  withFlags(flags: Readonly<Record<string, string>>): RpOnnxError {
    const flag = this.param !== undefined ? flags[this.param] : undefined;
    if (flag === undefined) return this;
    // The parameter's first mention as a whole word becomes the flag; a message that does not
    // mention it gets the flag in front.
    const word = new RegExp(`(^|[^\\w-])${this.param!}(?![\\w-])`);
    const message = word.test(this.message) ? this.message.replace(word, (_, pre: string) => pre + flag) : `${flag}: ${this.message}`;
    return new RpOnnxError(message, { exitCode: this.exitCode, cause: this.cause });
  }
}

/** Runs library code for a command, renaming parameters in its errors to the command's flags. */
export function withFlags<T>(flags: Readonly<Record<string, string>>, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw e instanceof RpOnnxError ? e.withFlags(flags) : e;
  }
}
