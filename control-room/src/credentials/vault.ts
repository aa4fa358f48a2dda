import { readFileSync } from 'node:fs';
import { OrderlyError } from '@orderly/shared';
import { createVaultClientFactory, VaultClient } from '@orderly/shared/vault';

/** The control room's own Vault client, with its narrow token read from a 0600 file. */
/** Unreachable, sealed or standby Vault is retried within `budgetMs` per operation, then fails with a code. */
export function vaultClient(options: { address: string; tokenFile: string; budgetMs: number }): VaultClient {
  let token: string;
  try {
    token = readFileSync(options.tokenFile, 'utf8').trim();
  } catch {
    throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `cannot read the Vault token file ${options.tokenFile}`);
  }
  return createVaultClientFactory({ address: options.address, defaultBudgetMs: options.budgetMs }).withToken(token);
}
