/**
 * One typed parse per command. commander keeps option values by attribute name, untyped; each
 * command reads them once, in a small parse function, through `Flags`, which validates and
 * converts every value (numbers finite, whole or in range as the flag needs, names from a list,
 * paths non-empty) and refuses a bad one with a UsageError naming the flag the user typed. The
 * action then works on typed values only, and every refusal prints one line
 * `error: ... (see 'rp-onnx CMD --help')` and exits 2 (cli/common.ts).
 */
import type { Command } from 'commander';
import { UsageError } from './common.js';

/** What a number must be: whole, and within bounds (`min`/`max` inclusive, `above`/`below` exclusive). */
export interface NumberCheck {
  integer?: boolean;
  min?: number;
  max?: number;
  above?: number;
  below?: number;
  /** The range in words where the bounds read badly (`at least 500 ms`). */
  says?: string;
}

interface Required {
  /** The value is always there (a default, or a required option): never undefined. */
  required: true;
}

/** `must be ...` for a check: `a positive integer`, `an integer >= 2`, `in (0, 1]`, `>= 0`. */
function wording(c: NumberCheck): string {
  if (c.says) return c.says;
  const lo = c.above !== undefined ? `(${c.above}` : c.min !== undefined ? `[${c.min}` : undefined;
  const hi = c.below !== undefined ? `${c.below})` : c.max !== undefined ? `${c.max}]` : undefined;
  if (lo && hi) return `${c.integer ? 'an integer ' : ''}in ${lo}, ${hi}`;
  if (c.integer) {
    if (c.min === 1 || c.above === 0) return 'a positive integer';
    if (c.min !== undefined) return `an integer >= ${c.min}`;
    if (c.above !== undefined) return `an integer > ${c.above}`;
    return 'an integer';
  }
  if (c.min !== undefined) return `>= ${c.min}`;
  if (c.above !== undefined) return `> ${c.above}`;
  if (c.max !== undefined) return `<= ${c.max}`;
  if (c.below !== undefined) return `< ${c.below}`;
  return 'a finite number';
}

function within(x: number, c: NumberCheck): boolean {
  return Number.isFinite(x) && (!c.integer || Number.isInteger(x))
    && (c.min === undefined || x >= c.min) && (c.max === undefined || x <= c.max)
    && (c.above === undefined || x > c.above) && (c.below === undefined || x < c.below);
}

/** A list in words: `I or II`, `auto, global or per-example`; `one of prv, rdp` for registries. */
function listed(choices: readonly string[], how: 'or' | 'one of'): string {
  if (how === 'one of') return `one of ${choices.join(', ')}`;
  return choices.length <= 1 ? choices.join('') : `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}`;
}

/** The option bag of one command, read by attribute name with the checks each flag needs. */
export class Flags {
  private readonly values: Record<string, unknown>;

  constructor(private readonly cmd: Command) {
    this.values = cmd.opts();
  }

  /** The flag the user types for an attribute (`maxGradNorm` -> `--max-grad-norm`). */
  flag(key: string): string {
    const opt = this.cmd.options.find((o) => o.attributeName() === key);
    return opt?.long ?? opt?.short ?? `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  }

  /** Whether the user gave the option (not only its default). */
  given(key: string): boolean {
    const src = this.cmd.getOptionValueSource(key);
    return src !== undefined && src !== 'default';
  }

  /** A usage error about one flag: `--samples must be a positive integer, got 0`. */
  error(key: string, message: string): UsageError {
    return new UsageError(`${this.flag(key)} ${message}`);
  }

  /** A switch (`--force`; `--no-shuffle` reads false when given). */
  bool(key: string): boolean {
    const v = this.values[key];
    if (v === undefined) return false;
    if (typeof v !== 'boolean') throw this.error(key, `takes no value, got '${String(v)}'`);
    return v;
  }

  string(key: string, r: Required): string;
  string(key: string): string | undefined;
  string(key: string, r?: Required): string | undefined {
    const v = this.values[key];
    if (v === undefined) return this.missing(key, r);
    if (typeof v !== 'string') throw this.error(key, `expects a value, got '${String(v)}'`);
    return v;
  }

  /** A file or folder name: a non-empty string (whether it exists is the loader's to say). */
  path(key: string, r: Required): string;
  path(key: string): string | undefined;
  path(key: string, r?: Required): string | undefined {
    const v = r ? this.string(key, r) : this.string(key);
    if (v !== undefined && v.trim() === '') throw this.error(key, 'expects a path, got \'\'');
    return v;
  }

  /** A comma list, items trimmed, empty items dropped (`--blocks 0,2`, `--ensemble a.onnx,b.onnx`). */
  list(key: string): string[] | undefined {
    const v = this.string(key);
    return v?.split(',').map((s) => s.trim()).filter((s) => s !== '');
  }

  number(key: string, check: NumberCheck & Required): number;
  number(key: string, check?: NumberCheck): number | undefined;
  number(key: string, check: NumberCheck & Partial<Required> = {}): number | undefined {
    const v = this.values[key];
    if (v === undefined) return this.missing(key, check.required ? { required: true } : undefined);
    const x = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
    if (!within(x, check)) throw this.error(key, `must be ${wording(check)}, got ${typeof v === 'string' ? `'${v}'` : String(v)}`);
    return x;
  }

  int(key: string, check: NumberCheck & Required): number;
  int(key: string, check?: NumberCheck): number | undefined;
  int(key: string, check: NumberCheck & Partial<Required> = {}): number | undefined {
    return this.number(key, { ...check, integer: true });
  }

  /** One name from a fixed list; `how` words the refusal (`I or II`, or `one of prv, rdp` for registries). */
  choice<T extends string>(key: string, choices: readonly T[], o: Required & { how?: 'or' | 'one of' }): T;
  choice<T extends string>(key: string, choices: readonly T[], o?: { how?: 'or' | 'one of' }): T | undefined;
  choice<T extends string>(key: string, choices: readonly T[], o: Partial<Required> & { how?: 'or' | 'one of' } = {}): T | undefined {
    const v = o.required ? this.string(key, { required: true }) : this.string(key);
    if (v === undefined) return undefined;
    if (!(choices as readonly string[]).includes(v)) throw this.error(key, `must be ${listed(choices, o.how ?? 'or')}, got '${v}'`);
    return v as T;
  }

  private missing(key: string, r: Required | undefined): undefined {
    if (r) throw this.error(key, 'is required');
    return undefined;
  }
}
