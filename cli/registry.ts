/** The commands the CLI offers; each module exports `register(program)`. */
import type { Command } from 'commander';

export const commands: ((program: Command) => void)[] = [];
