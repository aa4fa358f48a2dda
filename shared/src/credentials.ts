import { z } from 'zod';

/**
 * Where a bot's credentials live in Vault, and how a run is granted them. One convention, shared by
 * the control room (which provisions roles and policies) and the runner (which reads).
 */
export const CREDENTIALS_KV_MOUNT = 'secret';

/** KV v2 path (under the mount) of credential `name` of bot `bot`. Its data is `{ value }`. */
export const credentialPath = (bot: string, name: string): string => `orderly/bots/${bot}/${name}`;

/** The AppRole of a bot before roles were per version (kept to name and clean up old roles). */
export const botRoleName = (bot: string): string => `orderly-bot-${bot}`;

/**
 * The AppRole of one package version: its tokens read exactly what that version declares, so a
 * new upload never widens what a released version leases. Semver's `+` (and any other character
 * a Vault role name cannot hold) becomes `_`; bot names are already lower-case letters, digits
 * and dashes. Example: `orderly-bot-eligibility-check.v1.2.0-rc.1_build.5`.
 */
export const versionRoleName = (bot: string, version: string): string => `orderly-bot-${bot}.v${version.replace(/[^A-Za-z0-9.-]/g, '_')}`;

/** Handed to the runner that claims a run of a bot with credentials: never the SecretID itself. */
export const CredentialGrant = z.object({
  roleName: z.string().min(1).max(128),
  roleId: z.string().min(1).max(200),
  /** Response-wrapping token around a single-use SecretID; unwrapped once by the runner. */
  wrappingToken: z.string().min(1).max(500),
  vaultAddress: z.string().url().optional(),
});
export type CredentialGrant = z.infer<typeof CredentialGrant>;
