/**
 * Accountants by name, as Opacus's `accountants/registry.py`: the CLI and the training loop name
 * an accountant and never switch on it. PRV is the default (tight, certified upper bound).
 */
import { RpOnnxError } from '../../errors.js';
import type { Accountant, AccountantState } from './accountant.js';
import { RdpAccountant } from './rdp.js';
import { PrvAccountant } from './prv.js';

export type AccountantName = 'prv' | 'rdp';

const FACTORIES: ReadonlyMap<AccountantName, () => Accountant> = new Map<AccountantName, () => Accountant>([
  ['prv', () => new PrvAccountant()],
  ['rdp', () => new RdpAccountant()],
]);

export const ACCOUNTANT_NAMES: readonly AccountantName[] = [...FACTORIES.keys()];
export const DEFAULT_ACCOUNTANT: AccountantName = 'prv';

export function createAccountant(name: string = DEFAULT_ACCOUNTANT): Accountant {
  const f = FACTORIES.get(name as AccountantName);
  if (!f) throw new RpOnnxError(`unknown accountant '${name}': use one of ${ACCOUNTANT_NAMES.join(', ')}`);
  return f();
}

/** An accountant restored from its saved state. */
export function loadAccountant(state: AccountantState): Accountant {
  const a = createAccountant(state.accountant);
  a.load(state);
  return a;
}
