import { z } from 'zod';
import { BotName } from '../ids';
import { CredentialName } from '../package/manifest';

/**
 * Wire shapes of the credential API, used by the routes (requests) and the CLI (responses). No
 * response shape has a field that could carry a value.
 */

/** Longest credential value accepted (a JWT or a PEM key fits; anything larger is not a password). */
export const MAX_CREDENTIAL_VALUE_CHARS = 8192;
/** Shorter values cannot be masked in logs without masking ordinary words: refused. */
export const MIN_CREDENTIAL_VALUE_CHARS = 8;

export const CredentialParams = z.strictObject({ bot: BotName, name: CredentialName });
export type CredentialParams = z.infer<typeof CredentialParams>;

const Value = z.string().min(1).max(MAX_CREDENTIAL_VALUE_CHARS);
export const MaxAgeDays = z.number().int().min(0).max(3650);

export const SetCredentialRequest = z.strictObject({ value: Value, maxAgeDays: MaxAgeDays.optional() });
export type SetCredentialRequest = z.infer<typeof SetCredentialRequest>;

export const RotateCredentialRequest = z.strictObject({ value: Value, expectedVersion: z.number().int().min(0).optional() });
export type RotateCredentialRequest = z.infer<typeof RotateCredentialRequest>;

/** `?bot=` (empty) is the same as no filter. */
export const CredentialStatusQuery = z.strictObject({ bot: z.preprocess((v) => (v === '' ? undefined : v), BotName.optional()) });

/** The answer to set and rotate: where and which version, never the value. */
export const CredentialWriteView = z.object({
  bot: z.string(),
  name: z.string(),
  version: z.number().int().positive(),
  createdAt: z.string(),
});
export type CredentialWriteView = z.infer<typeof CredentialWriteView>;

export const CredentialStatusView = z.object({
  bot: z.string(),
  name: z.string(),
  /** A readable current version exists in Vault. */
  exists: z.boolean(),
  version: z.number().int().nullable(),
  /** When the credential (version 1) was first written. */
  createdAt: z.string().nullable(),
  /** When the current version was written. */
  updatedAt: z.string().nullable(),
  /** Whole days since the current version was written. */
  ageDays: z.number().int().nullable(),
  /** Who wrote the latest version through Orderly, and when (null if never through Orderly). */
  rotatedBy: z.string().nullable(),
  rotatedAt: z.string().nullable(),
  maxAgeDays: z.number().int(),
  /** The current version is older than maxAgeDays. */
  overdue: z.boolean(),
});
export type CredentialStatusView = z.infer<typeof CredentialStatusView>;

export const CredentialStatusList = z.object({ credentials: z.array(CredentialStatusView) });

/** The answer to revoke-runs: how many active runs lost their Vault token. */
export const RevokeRunsView = z.object({ revoked: z.number().int().min(0), runs: z.array(z.string()) });
