/** The commands the CLI offers, in help order; each module exports `register(program)`. */
import type { Command } from 'commander';
import { register as account } from './account.js';

export const commands: ((program: Command) => void)[] = [
  account,
];
