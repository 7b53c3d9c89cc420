/** The commands the CLI offers, in help order; each module exports `register(program)`. */
import type { Command } from 'commander';
import { register as account } from './account.js';
import { register as inspect } from './inspect.js';
import { register as models } from './models.js';

export const commands: ((program: Command) => void)[] = [
  inspect,
  account,
  models,
];
