import { resolve } from 'node:path';
import { z } from 'zod';
import { parseBinding } from '../../access/bindings';
import type { Role } from '../../access/roles';
import { PersonBinding, PersonRole } from '../schemas';

/**
 * Single sign-on configuration (OpenID Connect). The variables are declared in config.ts (the
 * configuration reference test reads them there); their checks and shape live here.
 */

/** `{ "<provider group>": ["operator@dev", "auditor"], … }`: what each group grants. */
export const SsoGroupRoles = z.record(z.string().min(1).max(256), z.array(PersonBinding).min(1).max(10));
export type SsoGroupRoles = z.infer<typeof SsoGroupRoles>;

/** Roles whose holders need a second factor at the provider whatever ORDERLY_OIDC_MFA_ROLES says. */
export const ALWAYS_MFA_ROLES: readonly Role[] = ['security', 'approver', 'admin'];

export interface SsoConfig {
  issuer: string;
  clientId: string;
  /** A file holding the client secret (read once at start, surrounding whitespace trimmed). */
  clientSecretFile: string;
  redirectUrl: string;
  groupsClaim: string;
  groupRoles: SsoGroupRoles;
  /** `amr` values that count as a second factor. */
  mfaAmr: readonly string[];
  /** Roles whose holders need one (always including ALWAYS_MFA_ROLES). */
  mfaRoles: ReadonlySet<Role>;
  /** http:// issuers are allowed for loopback addresses outside production only (tests, local providers). */
  allowInsecureIssuer: boolean;
  /** Seconds between two leaver checks (a refresh at the provider per linked person), 1-300. */
  checkSeconds: number;
}

export const MfaRole = PersonRole;

interface SsoEnv {
  ORDERLY_OIDC_ISSUER?: string | undefined;
  ORDERLY_OIDC_CLIENT_ID?: string | undefined;
  ORDERLY_OIDC_CLIENT_SECRET_FILE?: string | undefined;
  ORDERLY_OIDC_REDIRECT_URL?: string | undefined;
  ORDERLY_OIDC_GROUPS_CLAIM: string;
  ORDERLY_OIDC_GROUP_ROLES?: string | undefined;
  ORDERLY_OIDC_MFA_AMR: string[];
  ORDERLY_OIDC_MFA_ROLES: string[];
  ORDERLY_OIDC_CHECK_SECONDS: number;
  ORDERLY_SEGMENTS: string[];
  ORDERLY_ENV: string;
}

function groupRoles(text: string | undefined): SsoGroupRoles | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = SsoGroupRoles.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

const isLoopback = (url: string) => ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname);

/** The cross-variable checks of the SSO variables (all or none; mapping valid; https issuer). */
export function ssoRefinements(env: SsoEnv, ctx: z.RefinementCtx): void {
  const named = [env.ORDERLY_OIDC_ISSUER, env.ORDERLY_OIDC_CLIENT_ID, env.ORDERLY_OIDC_REDIRECT_URL, env.ORDERLY_OIDC_GROUP_ROLES];
  if (named.every((v) => v === undefined)) return;
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (!env.ORDERLY_OIDC_ISSUER)
    issue('ORDERLY_OIDC_ISSUER', 'single sign-on needs ORDERLY_OIDC_ISSUER, ORDERLY_OIDC_CLIENT_ID, ORDERLY_OIDC_REDIRECT_URL and ORDERLY_OIDC_GROUP_ROLES');
  if (!env.ORDERLY_OIDC_CLIENT_ID) issue('ORDERLY_OIDC_CLIENT_ID', 'required with ORDERLY_OIDC_ISSUER');
  if (!env.ORDERLY_OIDC_REDIRECT_URL) issue('ORDERLY_OIDC_REDIRECT_URL', 'required with ORDERLY_OIDC_ISSUER');
  const mapping = groupRoles(env.ORDERLY_OIDC_GROUP_ROLES);
  if (!mapping) {
    issue('ORDERLY_OIDC_GROUP_ROLES', 'a JSON object of provider group to 1-10 role bindings (`operator@dev`, `auditor`; never admin)');
  } else {
    for (const binding of Object.values(mapping).flat()) {
      const segment = parseBinding(binding)?.segment;
      if (segment && !env.ORDERLY_SEGMENTS.includes(segment)) issue('ORDERLY_OIDC_GROUP_ROLES', `${binding}: ${segment} is not one of ORDERLY_SEGMENTS`);
    }
  }
  if (
    env.ORDERLY_OIDC_ISSUER &&
    new URL(env.ORDERLY_OIDC_ISSUER).protocol !== 'https:' &&
    (env.ORDERLY_ENV === 'production' || !isLoopback(env.ORDERLY_OIDC_ISSUER))
  ) {
    issue('ORDERLY_OIDC_ISSUER', 'the issuer must be https:// (http:// only for a loopback provider outside production)');
  }
}

/** The SSO settings, or undefined when single sign-on is not configured. */
export function ssoConfig(env: SsoEnv, secretsDir: string): SsoConfig | undefined {
  if (!env.ORDERLY_OIDC_ISSUER) return undefined;
  return {
    issuer: env.ORDERLY_OIDC_ISSUER,
    clientId: env.ORDERLY_OIDC_CLIENT_ID!,
    clientSecretFile: resolve(env.ORDERLY_OIDC_CLIENT_SECRET_FILE ?? `${secretsDir}/oidc-client.secret`),
    redirectUrl: env.ORDERLY_OIDC_REDIRECT_URL!,
    groupsClaim: env.ORDERLY_OIDC_GROUPS_CLAIM,
    groupRoles: groupRoles(env.ORDERLY_OIDC_GROUP_ROLES)!,
    mfaAmr: env.ORDERLY_OIDC_MFA_AMR,
    mfaRoles: new Set<Role>([...(env.ORDERLY_OIDC_MFA_ROLES as Role[]), ...ALWAYS_MFA_ROLES]),
    allowInsecureIssuer: new URL(env.ORDERLY_OIDC_ISSUER).protocol === 'http:' && env.ORDERLY_ENV !== 'production' && isLoopback(env.ORDERLY_OIDC_ISSUER),
    checkSeconds: env.ORDERLY_OIDC_CHECK_SECONDS,
  };
}
