/**
 * The one user-facing error class. Its message is a single line that names the file or flag at
 * fault and, where there is one, the fix. The CLI prints `error: <message>` and exits non-zero;
 * anything else that escapes is a bug and is printed with its stack under --verbose.
 */
export class RpOnnxError extends Error {
  /** Process exit code the CLI uses for this error (2 = bad usage/input, 1 = runtime failure). */
  readonly exitCode: number;
  constructor(message: string, options?: { exitCode?: number; cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'RpOnnxError';
    this.exitCode = options?.exitCode ?? 2;
  }
}
