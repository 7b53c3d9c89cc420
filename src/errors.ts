/**
 * The one user-facing error class. Its message is a single line that names the file or parameter
 * at fault and, where there is one, the fix. The CLI prints `error: <message>` and exits non-zero;
 * anything else that escapes is a bug and is printed with its stack under --verbose.
 *
 * Library code names its own parameters (`gamma`, `checkpointDir`), never a command-line flag: an
 * error about parameters carries them in `params`, and the CLI, which knows which flag sets each,
 * renames them with `withFlags` and the command's parameter -> flag table. That is the only
 * renaming there is: a message is never searched for anything but the parameters it declares.
 */
export class RpOnnxError extends Error {
  /** Process exit code the CLI uses for this error (2 = bad usage/input, 1 = runtime failure). */
  readonly exitCode: number;
  /** The library parameters (identifiers) the message is about, each mentioned in it. */
  readonly params: readonly string[];
  constructor(message: string, options?: { exitCode?: number; cause?: unknown; param?: string | readonly string[] }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'RpOnnxError';
    this.exitCode = options?.exitCode ?? 2;
    const p = options?.param;
    this.params = p === undefined ? [] : typeof p === 'string' ? [p] : [...p];
  }

  /** The first (or only) parameter the message is about. */
  get param(): string | undefined {
    return this.params[0];
  }

  /**
   * The same error with its parameters written as the flags that set them (`gamma` -> `--gamma`):
   * every whole-word mention of a parameter the table maps becomes its flag, except inside a path
   * or file name (`/data/index/`, `index.json`); a message that mentions none of them gets the
   * first one's flag in front.
   */
  withFlags(flags: Readonly<Record<string, string>>): RpOnnxError {
    const mapped = this.params.filter((p) => flags[p] !== undefined);
    if (mapped.length === 0) return this;
    let message = this.message;
    for (const p of mapped) {
      // Not preceded by a word, path or name character; not followed by one, nor by '.' + word (an extension).
      const word = new RegExp(`(^|[^\\w\\-/.\\\\])${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w\\-/\\\\]|\\.\\w)`, 'g');
      message = message.replace(word, (_, pre: string) => pre + flags[p]!);
    }
    if (message === this.message) message = `${flags[mapped[0]!]!}: ${message}`;
    return new RpOnnxError(message, { exitCode: this.exitCode, cause: this.cause ?? this });
  }
}

/**
 * Runs library code for a command (sync or async), renaming the parameters in its errors to the
 * command's flags.
 */
export function withFlags<T>(flags: Readonly<Record<string, string>>, fn: () => T): T {
  const rename = (e: unknown) => (e instanceof RpOnnxError ? e.withFlags(flags) : e);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    throw rename(e);
  }
  if (result instanceof Promise) return result.catch((e: unknown) => { throw rename(e); }) as T;
  return result;
}
