import { z } from 'zod';
import { OrderlyError } from '../errors';

/**
 * Per-bot Vault policies, rendered from the list of KV secrets a bot declares. A bot gets
 * `read` on exactly those KV v2 data paths (invariant 3, minimum necessary): no list, no
 * metadata, nothing else. The token's `default` policy adds only lookup/renew/revoke of itself.
 */

const SEGMENT = '[A-Za-z0-9_.@-]+';

/** A KV secret path under the mount: `bots/eligibility/portal`, or `bots/eligibility/*` for a subtree. */
export const KvSecretPath = z
  .string()
  .regex(new RegExp(`^${SEGMENT}(/${SEGMENT})*(/\\*)?$`), 'segments of letters, digits, . _ @ -, optionally ending in /*')
  .refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), 'no . or .. segments')
  .max(512);
export type KvSecretPath = z.infer<typeof KvSecretPath>;

export const MountPath = z.string().regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, 'a mount path without leading or trailing slashes');
export const RoleName = z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,126}[A-Za-z0-9])?$/, 'letters, digits, . _ - (1-128)');

/** Parses caller input, failing with ORDERLY_E_BAD_REQUEST that names the field, never the value. */
export function checked<T>(schema: z.ZodType<T>, value: unknown, field: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new OrderlyError('ORDERLY_E_BAD_REQUEST', `invalid ${field}: ${result.error.issues[0]?.message ?? 'invalid'}`, { field });
}

/** The HCL of a bot's policy: read on `<kvMount>/data/<path>` for each declared path. */
export function renderBotPolicy(input: { roleName: string; kvMount: string; kvPaths: readonly string[] }): string {
  const roleName = checked(RoleName, input.roleName, 'role name');
  const kvMount = checked(MountPath, input.kvMount, 'KV mount');
  const paths = [...new Set(input.kvPaths.map((p) => checked(KvSecretPath, p, 'KV secret path')))].sort();
  const stanzas = paths.map((p) => `path "${kvMount}/data/${p}" {\n  capabilities = ["read"]\n}\n`);
  return `# Orderly bot role "${roleName}": read-only access to exactly these KV v2 secrets.\n${stanzas.join('\n')}`;
}

/** The creation path of a wrapped SecretID for `roleName`; the runner checks a token against it. */
export function secretIdCreationPath(roleName: string, approleMount = 'approle'): string {
  return `auth/${checked(MountPath, approleMount, 'AppRole mount')}/role/${checked(RoleName, roleName, 'role name')}/secret-id`;
}
