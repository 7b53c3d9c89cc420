/** The commands the CLI offers, in help order; each module exports `register(program)`. */
import type { Command } from 'commander';
import { register as account } from './account.js';
import { register as attack } from './attack.js';
import { register as audit } from './audit.js';
import { register as convert } from './convert.js';
import { register as demo } from './demo.js';
import { register as experiment } from './experiment.js';
import { register as inspect } from './inspect.js';
import { register as models } from './models.js';
import { register as perturb } from './perturb.js';
import { register as predict } from './predict.js';
import { register as serve } from './serve.js';
import { register as strip } from './strip.js';
import { register as train } from './train.js';
import { register as worker } from './worker.js';

export const commands: ((program: Command) => void)[] = [
  demo,
  inspect,
  account,
  models,
  convert,
  perturb,
  strip,
  predict,
  serve,
  train,
  audit,
  attack,
  experiment,
  worker,
];
