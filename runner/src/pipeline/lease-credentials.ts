import { ClaimResponse, OrderlyError } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { CredentialLease } from '../credentials/lease';
import type { VerifiedBot } from '../packages/cache';
import type { ControlRoomPort, CredentialLeaser } from './ports';

/** The longest a lease may take (it is also bounded by the run's timeout). */
const LEASE_TIMEOUT_MS = 60_000;

/**
 * Step 5: leases the credentials the bot declares (none: undefined), in the sandbox's shadow
 * (the sandbox exists already). The control room must be able to revoke the run's token: no
 * record of its accessor, no run, and the token is revoked at once.
 */
export async function leaseCredentialsStep(
  claim: Pick<ClaimResponse, 'runId' | 'attempt' | 'fence' | 'credentials'>,
  bot: VerifiedBot,
  deps: { leaser: CredentialLeaser | undefined; client: Pick<ControlRoomPort, 'recordLease'>; log: Logger; now?: () => number },
): Promise<CredentialLease | undefined> {
  if (!claim.credentials) return undefined;
  if (!deps.leaser) throw new OrderlyError('ORDERLY_E_VAULT_NOT_CONFIGURED', 'this bot declares credentials but the runner has no VAULT_ADDR');
  const now = deps.now ?? Date.now;
  const lease = await deps.leaser.lease({
    grant: claim.credentials,
    bot: bot.manifest.name,
    names: bot.manifest.credentials,
    deadline: now() + Math.min(bot.manifest.timeoutSeconds * 1000, LEASE_TIMEOUT_MS),
    log: deps.log,
  });
  try {
    await deps.client.recordLease(claim.runId, claim.attempt, claim.fence, lease.accessor);
  } catch (err) {
    await lease.release();
    throw err;
  }
  return lease;
}
