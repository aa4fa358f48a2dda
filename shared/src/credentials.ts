import { z } from 'zod';

/**
 * Where a bot's credentials live in Vault, and how a run is granted them. One convention, shared by
 * the control room (which provisions roles and policies) and the runner (which reads).
 */
export const CREDENTIALS_KV_MOUNT = 'secret';

/** KV v2 path (under the mount) of credential `name` of bot `bot`. Its data is `{ value }`. */
export const credentialPath = (bot: string, name: string): string => `orderly/bots/${bot}/${name}`;

/** The AppRole of a bot: its tokens can read exactly the bot's declared credentials. */
export const botRoleName = (bot: string): string => `orderly-bot-${bot}`;

/** Handed to the runner that claims a run of a bot with credentials: never the SecretID itself. */
export const CredentialGrant = z.object({
  roleName: z.string().min(1).max(128),
  roleId: z.string().min(1).max(200),
  /** Response-wrapping token around a single-use SecretID; unwrapped once by the runner. */
  wrappingToken: z.string().min(1).max(500),
  vaultAddress: z.string().url().optional(),
});
export type CredentialGrant = z.infer<typeof CredentialGrant>;
