/**
 * Progress output on stderr: a live bar on a terminal, a line every few seconds otherwise
 * (CI logs, pipes), so long runs always show signs of life without flooding logs. Every update
 * carries an ETA from the recent rate of progress (no dependency: fraction done over time).
 */

export interface ProgressOptions {
  enabled?: boolean;
  /** Off a terminal: at most one line per this many ms (default 5000). */
  intervalMs?: number;
  /** The rate behind the ETA is measured over about this many ms of recent updates (default 60 s). */
  windowMs?: number;
  /** For tests: the clock, the sink, and whether it is a terminal. */
  now?: () => number;
  write?: (s: string) => void;
  tty?: boolean;
}

/** 42s, 3m 05s, 1h 02m. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Samples closer together than this are not kept (bounded memory however often update is called). */
const SAMPLE_SPACING_MS = 200;
/** No ETA before progress has been watched this long: the first steps include start-up costs. */
const MIN_WATCH_MS = 1000;

export class ProgressLine {
  private last = 0;
  private readonly enabled: boolean;
  private readonly intervalMs: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly write: (s: string) => void;
  private readonly tty: boolean;
  /** (time, fraction) of recent updates, oldest first; reset when the fraction goes back. */
  private samples: { t: number; f: number }[] = [];

  /** `new ProgressLine(enabled, intervalMs)` as before, or an options object. */
  constructor(enabled: boolean | ProgressOptions = true, intervalMs = 5000) {
    const o: ProgressOptions = typeof enabled === 'object' ? enabled : { enabled, intervalMs };
    this.enabled = o.enabled ?? true;
    this.intervalMs = o.intervalMs ?? 5000;
    this.windowMs = o.windowMs ?? 60_000;
    this.now = o.now ?? Date.now;
    this.write = o.write ?? ((s) => void process.stderr.write(s));
    this.tty = o.tty ?? process.stderr.isTTY === true;
  }

  /** Forgets the rate: the next updates belong to a new phase with a pace of its own. */
  reset(): void {
    this.samples = [];
  }

  /**
   * Seconds left at the recent rate, or null while unknown (no progress yet, watched for less
   * than a second, or done). A fraction lower than the last one starts a new phase (e.g. a
   * per-epoch fraction at the next epoch): the ETA is then to the end of that phase.
   */
  eta(fraction: number, now = this.now()): number | null {
    const f = Math.max(0, Math.min(1, fraction));
    const tail = this.samples[this.samples.length - 1];
    if (tail && f < tail.f) this.samples = [];
    if (!tail || now - tail.t >= SAMPLE_SPACING_MS || f < tail.f) this.samples.push({ t: now, f });
    while (this.samples.length > 2 && now - this.samples[1]!.t >= this.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    const dt = now - first.t, df = f - first.f;
    if (f >= 1 || dt < MIN_WATCH_MS || df <= 0) return null;
    return ((1 - f) * dt) / df / 1000;
  }

  update(fraction: number, text: string, force = false): void {
    if (!this.enabled) return;
    const now = this.now();
    const eta = this.eta(fraction, now);
    const line = eta === null ? text : `${text}, ETA ${formatDuration(eta)}`;
    if (this.tty) {
      if (!force && now - this.last < 100) return;
      const width = 24;
      const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
      this.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line}\x1b[K`);
    } else {
      if (!force && now - this.last < this.intervalMs) return;
      this.write(`${line}\n`);
    }
    this.last = now;
  }

  /** Ends the live line (terminal) and prints a permanent one. */
  done(text: string): void {
    if (!this.enabled) return;
    this.write(this.tty ? `\r${text}\x1b[K\n` : `${text}\n`);
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
