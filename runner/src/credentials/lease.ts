import { credentialPath, CredentialGrant, hasCode, OrderlyError } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { secretIdCreationPath, VaultClient, VaultClientFactory } from '@orderly/shared/vault';

export interface CredentialLease {
  /** The declared credentials, by name. */
  readonly secrets: Readonly<Record<string, string>>;
  /** Token accessor (not the token): lets the control room revoke this run's token. */
  readonly accessor: string;
  /** Revokes the run's token; idempotent, never throws. Call it in `finally`. */
  release(): Promise<void>;
}

/**
 * Leases a run's credentials: check that the wrapping token was minted for this bot's SecretID
 * path, unwrap it (once), log in with RoleID + SecretID, read only the declared secrets, renew the
 * token while the run needs it, revoke it on release. One Vault client per lease: node-vault's
 * login would overwrite a shared client's token.
 */
export async function leaseCredentials(options: {
  factory: VaultClientFactory;
  grant: CredentialGrant;
  bot: string;
  names: readonly string[];
  deadline: number;
  log: Logger;
}): Promise<CredentialLease> {
  const { grant, log } = options;
  const anonymous = options.factory.anonymous();
  const expectedPath = secretIdCreationPath(grant.roleName);
  let secretId: string;
  try {
    // unwrapSecretId looks the wrapping token up first and refuses one not minted at expectedPath.
    secretId = (await anonymous.unwrapSecretId(grant.wrappingToken, expectedPath, { deadline: options.deadline })).secretId;
  } catch (err) {
    // A wrapping token that was already unwrapped means someone else saw the SecretID.
    if (hasCode(err, 'ORDERLY_E_VAULT_WRAP_INVALID'))
      log.error({ event: 'security.wrapping_token_invalid', role: grant.roleName }, 'wrapping token was already used, expired or not minted for this role');
    throw err;
  }
  const login = await anonymous.approleLogin({ roleId: grant.roleId, secretId }, { deadline: options.deadline });
  const client: VaultClient = login.client;
  let renewal: NodeJS.Timeout | undefined;
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    clearTimeout(renewal);
    await client
      .revokeSelf()
      .catch((err: unknown) => log.warn({ code: (err as { code?: string }).code }, 'could not revoke the run token; it expires with its TTL'));
  };
  try {
    const secrets: Record<string, string> = {};
    // Read side by side: each read is a round trip to Vault on the path to the bot's start.
    const values = await Promise.all(
      options.names.map((name) => client.kvRead(credentialPath(options.bot, name), { deadline: options.deadline, mount: 'secret' })),
    );
    for (const [i, name] of options.names.entries()) {
      const value = values[i]?.data.value;
      if (typeof value !== 'string')
        throw new OrderlyError('ORDERLY_E_VAULT_ERROR', `credential ${name} of ${options.bot} is missing or has no string "value"`, { credential: name });
      secrets[name] = value;
    }
    // Renew at two thirds of the TTL, up to the role's max TTL (Vault caps it), while the run goes on.
    const scheduleRenewal = (ttlSeconds: number) => {
      if (!login.renewable || ttlSeconds <= 0) return;
      renewal = setTimeout(
        () => {
          client.renewSelf().then(
            (renewed) => scheduleRenewal(renewed.leaseDurationSeconds),
            (err: unknown) => log.warn({ code: (err as { code?: string }).code }, 'run token renewal failed'),
          );
        },
        Math.max(1000, (ttlSeconds * 1000 * 2) / 3),
      );
      renewal.unref();
    };
    scheduleRenewal(login.leaseDurationSeconds);
    return { secrets: Object.freeze(secrets), accessor: login.accessor, release };
  } catch (err) {
    await release();
    throw err;
  }
}
