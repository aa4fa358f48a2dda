import { z } from 'zod';

/**
 * zod schemas of the Vault responses Orderly reads. They check what Orderly relies on and let
 * the rest through, so a newer Vault adding fields does not break us, but a missing or
 * mistyped field that we use is a validation failure instead of an `undefined` downstream.
 */

export const VaultWrapInfo = z.object({
  token: z.string().min(1),
  accessor: z.string(),
  ttl: z.number().int().nonnegative(),
  creation_time: z.string(),
  creation_path: z.string(),
  wrapped_accessor: z.string().optional(),
});
export type VaultWrapInfo = z.infer<typeof VaultWrapInfo>;

export const VaultAuth = z.object({
  client_token: z.string().min(1),
  accessor: z.string(),
  policies: z.array(z.string()).nullable(),
  token_policies: z.array(z.string()).nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  lease_duration: z.number().int().nonnegative(),
  renewable: z.boolean(),
  token_type: z.string().optional(),
  orphan: z.boolean().optional(),
  num_uses: z.number().int().optional(),
});
export type VaultAuth = z.infer<typeof VaultAuth>;

/** The logical envelope around `data`. */
export function vaultEnvelope<T extends z.ZodType>(data: T) {
  return z.object({
    request_id: z.string().optional(),
    lease_id: z.string().optional(),
    renewable: z.boolean().optional(),
    lease_duration: z.number().optional(),
    data,
    warnings: z.array(z.string()).nullish(),
    wrap_info: VaultWrapInfo.nullish(),
    auth: VaultAuth.nullish(),
  });
}

export const WrappedResponse = z.object({ wrap_info: VaultWrapInfo });
export const AuthResponse = z.object({ auth: VaultAuth, warnings: z.array(z.string()).nullish() });

export const RoleIdData = z.object({ role_id: z.string().min(1) });
export const SecretIdData = z.object({
  secret_id: z.string().min(1),
  secret_id_accessor: z.string().min(1),
  secret_id_ttl: z.number().int().nonnegative(),
  secret_id_num_uses: z.number().int().nonnegative(),
});
export const WrappingLookupData = z.object({
  creation_path: z.string(),
  creation_time: z.string(),
  creation_ttl: z.number().int().nonnegative(),
});

export const KvVersionMetadata = z.object({
  created_time: z.string(),
  custom_metadata: z.record(z.string(), z.string()).nullish(),
  deletion_time: z.string(),
  destroyed: z.boolean(),
  version: z.number().int().positive(),
});
export const KvReadData = z.object({ data: z.record(z.string(), z.unknown()), metadata: KvVersionMetadata });
export const KvMetadataData = z.object({
  cas_required: z.boolean(),
  created_time: z.string(),
  current_version: z.number().int().nonnegative(),
  custom_metadata: z.record(z.string(), z.string()).nullish(),
  max_versions: z.number().int().nonnegative(),
  oldest_version: z.number().int().nonnegative(),
  updated_time: z.string(),
  versions: z.record(z.string(), z.object({ created_time: z.string(), deletion_time: z.string(), destroyed: z.boolean() })),
});

export const TokenLookupData = z.object({
  accessor: z.string(),
  creation_time: z.number().int(),
  creation_ttl: z.number().int(),
  display_name: z.string().optional(),
  expire_time: z.string().nullable(),
  explicit_max_ttl: z.number().int(),
  num_uses: z.number().int(),
  orphan: z.boolean(),
  path: z.string(),
  policies: z.array(z.string()),
  renewable: z.boolean(),
  ttl: z.number().int(),
  type: z.string().optional(),
});

const VersionedString = z.string().regex(/^vault:v\d+:/, 'expected vault:v<N>:...');
export const TransitCiphertextData = z.object({ ciphertext: VersionedString, key_version: z.number().int().positive().optional() });
export const TransitDataKeyData = TransitCiphertextData.extend({ plaintext: z.base64().optional() });
export const TransitPlaintextData = z.object({ plaintext: z.base64() });
export const TransitSignData = z.object({ signature: VersionedString, key_version: z.number().int().positive().optional() });
export const TransitVerifyData = z.object({ valid: z.boolean() });
export const TransitKeyData = z.object({
  name: z.string(),
  type: z.string(),
  latest_version: z.number().int().positive(),
  min_decryption_version: z.number().int(),
  min_encryption_version: z.number().int(),
  deletion_allowed: z.boolean(),
  supports_encryption: z.boolean(),
  supports_signing: z.boolean(),
  keys: z.record(z.string(), z.unknown()),
});

export const HealthBody = z.object({
  initialized: z.boolean(),
  sealed: z.boolean(),
  standby: z.boolean(),
  version: z.string(),
  server_time_utc: z.number().int(),
  cluster_name: z.string().optional(),
  cluster_id: z.string().optional(),
});
