import { botRoleName, BotManifest, credentialPath, CredentialGrant, OrderlyError } from '@orderly/shared';
import type { VaultClient } from '@orderly/shared/vault';

/**
 * The control room's side of Vault's "trusted orchestrator" AppRole pattern: it provisions one role
 * and policy per bot (read exactly the declared credentials), and at run start hands the runner a
 * RoleID and a response-wrapped, single-use SecretID — never the SecretID itself.
 */
export interface CredentialBroker {
  /** Creates or updates the bot's role and policy. Called before a package is stored. */
  provision(manifest: BotManifest): Promise<void>;
  /** A fresh grant for one run attempt of `bot`. */
  grant(bot: string): Promise<CredentialGrant>;
}

export interface VaultBrokerOptions {
  vault: VaultClient;
  /** How long the wrapping token lives: the runner unwraps it right after claiming. */
  wrapTtlSeconds: number;
  /** Upper bound of a run token's TTL; shorter than the timeout means it is renewed during the run. */
  runTokenTtlSeconds: number;
  /** The runners' network: SecretIDs and tokens of bot roles work only from there (empty: anywhere). */
  runnerCidrs?: readonly string[];
}

export function vaultCredentialBroker(options: VaultBrokerOptions): CredentialBroker {
  const roleIds = new Map<string, string>();
  return {
    async provision(manifest) {
      await options.vault.upsertBotRole({
        roleName: botRoleName(manifest.name),
        kvPaths: manifest.credentials.map((name) => credentialPath(manifest.name, name)),
        kvMount: 'secret',
        tokenTtlSeconds: Math.min(manifest.timeoutSeconds, options.runTokenTtlSeconds),
        // The hard cap: a run cannot hold its token (by renewing) much past its own timeout.
        tokenMaxTtlSeconds: manifest.timeoutSeconds + 60,
        secretIdTtlSeconds: Math.max(options.wrapTtlSeconds, 30),
        secretIdBoundCidrs: options.runnerCidrs ?? [],
        tokenBoundCidrs: options.runnerCidrs ?? [],
      });
      roleIds.delete(manifest.name);
    },
    async grant(bot) {
      const roleName = botRoleName(bot);
      let roleId = roleIds.get(bot);
      if (!roleId) {
        roleId = await options.vault.readRoleId(roleName);
        roleIds.set(bot, roleId);
      }
      const wrapped = await options.vault.createWrappedSecretId(roleName, { wrapTtlSeconds: options.wrapTtlSeconds });
      return { roleName, roleId, wrappingToken: wrapped.wrappingToken };
    },
  };
}

/** Without Vault, bots that declare credentials are refused rather than run without them. */
export const noVaultBroker: CredentialBroker = {
  async provision() {
    throw new OrderlyError('ORDERLY_E_VAULT_NOT_CONFIGURED', 'this bot declares credentials, but the control room has no Vault (set VAULT_ADDR)');
  },
  async grant() {
    throw new OrderlyError('ORDERLY_E_VAULT_NOT_CONFIGURED', 'the control room has no Vault (set VAULT_ADDR)');
  },
};
