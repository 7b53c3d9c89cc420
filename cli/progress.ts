/**
 * Progress output on stderr: a live bar on a terminal, a line every few seconds otherwise
 * (CI logs, pipes), so long runs always show signs of life without flooding logs.
 */
export class ProgressLine {
  private last = 0;
  private readonly tty = process.stderr.isTTY === true;
  constructor(private readonly enabled = true, private readonly intervalMs = 5000) {}

  update(fraction: number, text: string, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (this.tty) {
      if (!force && now - this.last < 100) return;
      const width = 24;
      const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K`);
    } else {
      if (!force && now - this.last < this.intervalMs) return;
      process.stderr.write(`${text}\n`);
    }
    this.last = now;
  }

  /** Ends the live line (terminal) and prints a permanent one. */
  done(text: string): void {
    if (!this.enabled) return;
    process.stderr.write(this.tty ? `\r${text}\x1b[K\n` : `${text}\n`);
    this.last = 0;
  }
}

/**
 * Ctrl-C during a long run: the first SIGINT aborts `signal` (the loop stops after the current
 * step and nothing partial is written); call `release()` when the run is over.
 */
export function interruptOnSigint(progress: ProgressLine): { signal: AbortSignal; release: () => void } {
  const abort = new AbortController();
  const onSigint = () => {
    progress.done('interrupted: finishing the current step; no output will be written');
    abort.abort();
  };
  process.once('SIGINT', onSigint);
  return { signal: abort.signal, release: () => process.off('SIGINT', onSigint) };
}
