import { BotManifest, credentialPath, CredentialGrant, OrderlyError, versionRoleName } from '@orderly/shared';
import type { VaultClient } from '@orderly/shared/vault';

/**
 * The control room's side of Vault's "trusted orchestrator" AppRole pattern: it provisions one role
 * and policy per package version (read exactly what that version declares), and at run start
 * hands the runner a RoleID and a response-wrapped, single-use SecretID of the run's own
 * version's role — never the SecretID itself. Roles are per version so that an upload can never
 * widen (or narrow) what an already released version leases.
 */
export interface CredentialBroker {
  /**
   * Creates or updates the role and policy of `manifest`'s version and returns the role name.
   * Called only once the version was accepted (every publish check passed).
   */
  provision(manifest: BotManifest): Promise<string>;
  /** Deletes a role `provision` wrote whose version was then not stored (its transaction failed). */
  withdraw(roleName: string): Promise<void>;
  /** A fresh grant for one run attempt, from the role of the run's own package version. */
  grant(roleName: string): Promise<CredentialGrant>;
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
      const roleName = versionRoleName(manifest.name, manifest.version);
      await options.vault.upsertBotRole({
        roleName,
        kvPaths: manifest.credentials.map((name) => credentialPath(manifest.name, name)),
        kvMount: 'secret',
        tokenTtlSeconds: Math.min(manifest.timeoutSeconds, options.runTokenTtlSeconds),
        // The hard cap: a run cannot hold its token (by renewing) much past its own timeout.
        tokenMaxTtlSeconds: manifest.timeoutSeconds + 60,
        secretIdTtlSeconds: Math.max(options.wrapTtlSeconds, 30),
        secretIdBoundCidrs: options.runnerCidrs ?? [],
        tokenBoundCidrs: options.runnerCidrs ?? [],
      });
      roleIds.delete(roleName);
      return roleName;
    },
    async withdraw(roleName) {
      roleIds.delete(roleName);
      await options.vault.deleteBotRole(roleName);
    },
    async grant(roleName) {
      let roleId = roleIds.get(roleName);
      if (!roleId) {
        roleId = await options.vault.readRoleId(roleName);
        roleIds.set(roleName, roleId);
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
  async withdraw() {
    // Nothing was provisioned without a Vault.
  },
  async grant() {
    throw new OrderlyError('ORDERLY_E_VAULT_NOT_CONFIGURED', 'the control room has no Vault (set VAULT_ADDR)');
  },
};
