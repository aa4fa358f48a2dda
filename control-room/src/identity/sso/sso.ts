import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { OrderlyError } from '@orderly/shared';
import { parseBinding } from '../../access/bindings';
import type { AuditLog } from '../../audit/audit';
import type { Db } from '../../db/db';
import type { Identity } from '../identity';
import { Username } from '../schemas';
import { secretHash } from '../tokens';
import type { UserRow } from '../users';
import type { SsoConfig } from './config';
import { openFlow, sameString, sealFlow, SSO_FLOW_MINUTES } from './flow';

// openid-client is ECMAScript-module only: loaded with import() (Node keeps it in CommonJS output).
type OidcClient = typeof import('openid-client', { with: { 'resolution-mode': 'import' } });
type OidcConfiguration = import('openid-client', { with: { 'resolution-mode': 'import' } }).Configuration;

/** The client secret from its file (ORDERLY_OIDC_CLIENT_SECRET_FILE), read once at start. */
export function readClientSecret(file: string): string {
  let secret = '';
  try {
    secret = readFileSync(file, 'utf8').trim();
  } catch {
    // reported below
  }
  if (!secret) throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `single sign-on needs the OIDC client secret in ${file} (ORDERLY_OIDC_CLIENT_SECRET_FILE)`);
  return secret;
}

export interface SsoDeps {
  config: SsoConfig;
  clientSecret: string;
  db: Db;
  identity: Identity;
  audit: AuditLog;
  dataKey: Buffer;
  dataKeyId: string;
}

/** What a refusal is recorded with (the request audit hook writes 401/403 events). */
export interface SsoTrace {
  target?: string;
  details?: Record<string, string | number | boolean | null>;
}

export interface SsoSignIn {
  user: UserRow;
  roles: string[];
  mfa: boolean;
  session: { sessionId: string; csrfToken: string; expiresAt: number };
}

interface SsoIdentityRow {
  user_id: string;
}

const refused = (code: 'ORDERLY_E_SSO_CALLBACK_INVALID', reason: string) =>
  new OrderlyError(code, `the provider's answer does not verify: ${reason}`, { reason });

/** The role bindings a set of groups maps to, in a stable order. */
export function rolesForGroups(groups: readonly string[], mapping: SsoConfig['groupRoles']): string[] {
  const roles = new Set<string>();
  for (const group of groups) for (const binding of Object.hasOwn(mapping, group) ? mapping[group]! : []) roles.add(binding);
  return [...roles].sort();
}

/** True when the ID token's `amr` names a second factor the policy accepts. */
export function hasSecondFactor(amr: unknown, accepted: readonly string[]): boolean {
  return Array.isArray(amr) && amr.some((v) => typeof v === 'string' && accepted.includes(v));
}

/** True when one of the bindings is of a role the MFA policy covers. */
export function needsSecondFactor(roles: readonly string[], mfaRoles: SsoConfig['mfaRoles']): boolean {
  return roles.some((r) => {
    const role = parseBinding(r)?.role;
    return role !== undefined && mfaRoles.has(role);
  });
}

function claimStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && v.length <= 256).slice(0, 500) : [];
}

/**
 * OpenID Connect sign-in (authorization code flow with PKCE, state and nonce) through
 * `openid-client`: discovery at first use, ID token checks (issuer, audience, expiry, nonce, and
 * the signature against the provider's JWKS, refetched when an unknown key id shows up, so the
 * provider rotates keys without a restart). A person is linked by issuer and subject; their roles
 * are recomputed from the groups claim at every sign-in; no mapped group is no access; roles the
 * MFA policy covers need a second factor in `amr`. Tokens of the provider are never stored or
 * audited: events carry its subject.
 */
export class SsoLogin {
  private discovered: Promise<{ client: OidcClient; configuration: OidcConfiguration }> | undefined;

  constructor(private readonly deps: SsoDeps) {}

  private oidc(): Promise<{ client: OidcClient; configuration: OidcConfiguration }> {
    this.discovered ??= (async () => {
      const client = await import('openid-client');
      const { config } = this.deps;
      const configuration = await client.discovery(
        new URL(config.issuer),
        config.clientId,
        { client_secret: this.deps.clientSecret, redirect_uris: [config.redirectUrl], response_types: ['code'] },
        undefined,
        {
          ...(config.allowInsecureIssuer ? { execute: [client.allowInsecureRequests] } : {}),
        },
      );
      // Verify ID token signatures against the provider's JWKS too, not only trust the TLS channel.
      client.enableNonRepudiationChecks(configuration);
      return { client, configuration };
    })().catch((err: unknown) => {
      this.discovered = undefined; // the next sign-in tries discovery again
      throw new OrderlyError('ORDERLY_E_SSO_PROVIDER_UNAVAILABLE', 'the identity provider could not be reached', {
        reason: (err as { code?: string }).code ?? 'discovery',
      });
    });
    return this.discovered;
  }

  /** The provider's authorization URL and the sealed flow cookie value for it. */
  async start(): Promise<{ url: string; flow: string }> {
    const { client, configuration } = await this.oidc();
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(configuration, {
      redirect_uri: this.deps.config.redirectUrl,
      scope: 'openid profile email',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const expiresAt = this.deps.identity.clock() + SSO_FLOW_MINUTES * 60_000;
    return { url: url.href, flow: sealFlow(this.deps.dataKey, this.deps.dataKeyId, { state, nonce, codeVerifier, expiresAt }) };
  }

  /**
   * The provider's redirect back: checks the flow, redeems the code, maps groups to roles, applies
   * the MFA policy, links or updates the person and opens a session. Refusals throw coded errors
   * and leave what they were about in `trace`.
   */
  async callback(query: string, flowValue: string | undefined, trace: SsoTrace, meta: { sourceIp?: string; requestId?: string }): Promise<SsoSignIn> {
    const { config } = this.deps;
    trace.details = { issuer: config.issuer };
    const flow = openFlow(this.deps.dataKey, flowValue, this.deps.identity.clock());
    const params = new URLSearchParams(query);
    const state = params.get('state');
    if (!flow || state === null || !sameString(state, flow.state))
      throw new OrderlyError('ORDERLY_E_SSO_STATE_INVALID', 'no matching single sign-on was started here, or it expired: start again');
    const { client, configuration } = await this.oidc();
    const currentUrl = new URL(config.redirectUrl);
    currentUrl.search = params.toString();
    let claims: Record<string, unknown>;
    try {
      const tokens = await client.authorizationCodeGrant(configuration, currentUrl, {
        pkceCodeVerifier: flow.codeVerifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      });
      claims = (tokens.claims() as Record<string, unknown> | undefined) ?? {};
    } catch (err) {
      throw refused('ORDERLY_E_SSO_CALLBACK_INVALID', callbackReason(err));
    }
    const subject = typeof claims.sub === 'string' ? claims.sub : '';
    const issuer = typeof claims.iss === 'string' ? claims.iss : config.issuer;
    if (!subject) throw refused('ORDERLY_E_SSO_CALLBACK_INVALID', 'sub');
    trace.target = `sso:${subject.slice(0, 200)}`;
    trace.details = { issuer, subject: subject.slice(0, 200) };

    const groups = claimStrings(claims[config.groupsClaim]);
    const roles = rolesForGroups(groups, config.groupRoles);
    const mfa = hasSecondFactor(claims.amr, config.mfaAmr);
    const [linked] = await this.deps.db.query<SsoIdentityRow & UserRow>(
      'SELECT s.user_id, u.* FROM sso_identities s JOIN users u ON u.id = s.user_id WHERE s.issuer = $1 AND s.subject = $2',
      [issuer, subject],
    );
    if (linked) trace.target = `user:${linked.username}`;
    if (roles.length === 0) {
      // A linked person whose groups no longer map to anything loses their access now.
      if (linked && linked.roles.length > 0) {
        await this.deps.db.transaction(async (tx) => {
          await tx.query('UPDATE users SET roles = $2 WHERE id = $1', [linked.id, []]);
          await tx.query('DELETE FROM sessions WHERE user_id = $1', [linked.id]);
        });
        await this.rolesChanged(linked.username, issuer, subject, linked.roles, [], meta);
      }
      throw new OrderlyError('ORDERLY_E_SSO_NO_ROLE', 'none of your groups at the identity provider grants access to Orderly');
    }
    if (needsSecondFactor(roles, config.mfaRoles) && !mfa) {
      throw new OrderlyError('ORDERLY_E_SSO_MFA_REQUIRED', 'your roles need a second factor at the identity provider: sign in there with MFA', {
        accepted: config.mfaAmr.join(','),
      });
    }
    if (linked && linked.disabled_at !== null) throw new OrderlyError('ORDERLY_E_SIGN_IN_FAILED', 'sign-in failed: this person is disabled');

    const now = new Date(this.deps.identity.clock()).toISOString();
    const user = linked
      ? await this.update(linked, roles, groups, mfa, issuer, subject, now)
      : await this.link(claims, roles, groups, mfa, issuer, subject, now);
    if (!linked || !sameRoles(linked.roles, roles)) await this.rolesChanged(user.username, issuer, subject, linked?.roles ?? [], roles, meta);
    trace.target = `user:${user.username}`;

    const session = await this.deps.identity.sessions.create(user.id);
    // Without a second factor at the provider the session is not stepped up (step-up routes refuse it).
    if (!mfa) await this.deps.db.query('UPDATE sessions SET stepped_up_at = NULL WHERE id_hash = $1', [secretHash(session.sessionId)]);
    await this.deps.audit.append({
      actor: `user:${user.username}`,
      action: 'sso.sign_in',
      target: `user:${user.username}`,
      outcome: 'success',
      ...meta,
      details: { issuer, subject: subject.slice(0, 200), roles: roles.join(','), mfa },
    });
    return { user, roles, mfa, session };
  }

  private async update(linked: UserRow, roles: string[], groups: string[], mfa: boolean, issuer: string, subject: string, now: string): Promise<UserRow> {
    return this.deps.db.transaction(async (tx) => {
      const [user] = await tx.query<UserRow>('UPDATE users SET roles = $2 WHERE id = $1 RETURNING *', [linked.id, roles]);
      await tx.query('UPDATE sso_identities SET groups = $3, last_sign_in_at = $4, last_mfa = $5 WHERE issuer = $1 AND subject = $2', [
        issuer,
        subject,
        groups,
        now,
        mfa,
      ]);
      return user!;
    });
  }

  /** A first sign-in: a person (no password, no TOTP: they sign in at the provider) and the link. */
  private async link(
    claims: Record<string, unknown>,
    roles: string[],
    groups: string[],
    mfa: boolean,
    issuer: string,
    subject: string,
    now: string,
  ): Promise<UserRow> {
    const fallback = `sso-${createHash('sha256').update(`${issuer}\n${subject}`).digest('hex').slice(0, 12)}`;
    const wanted = typeof claims.preferred_username === 'string' ? claims.preferred_username.toLowerCase() : '';
    return this.deps.db.transaction(async (tx) => {
      // A local account with the same name is never taken over: the person gets the fallback name.
      const candidate = Username.safeParse(wanted).success ? wanted : fallback;
      const [taken] = await tx.query('SELECT 1 FROM users WHERE username = $1', [candidate]);
      const username = taken ? fallback : candidate;
      const [user] = await tx.query<UserRow>('INSERT INTO users (id, username, roles, enrolled_at, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING *', [
        randomUUID(),
        username,
        roles,
        now,
        `sso:${issuer}`.slice(0, 300),
      ]);
      await tx.query('INSERT INTO sso_identities (issuer, subject, user_id, groups, last_sign_in_at, last_mfa) VALUES ($1, $2, $3, $4, $5, $6)', [
        issuer,
        subject,
        user!.id,
        groups,
        now,
        mfa,
      ]);
      return user!;
    });
  }

  private async rolesChanged(
    username: string,
    issuer: string,
    subject: string,
    from: readonly string[],
    to: readonly string[],
    meta: { sourceIp?: string; requestId?: string },
  ): Promise<void> {
    await this.deps.audit.append({
      actor: 'sso',
      action: 'sso.roles_change',
      target: `user:${username}`,
      outcome: 'success',
      ...meta,
      details: { issuer, subject: subject.slice(0, 200), from: [...from].sort().join(','), to: [...to].sort().join(',') },
    });
  }
}

const sameRoles = (a: readonly string[], b: readonly string[]) => [...a].sort().join(',') === [...b].sort().join(',');

/** A short, token-free reason for a failed callback: the provider's error or the check that failed. */
function callbackReason(err: unknown): string {
  const e = err as { code?: unknown; error?: unknown };
  if (typeof e.error === 'string') return e.error.slice(0, 64); // the provider's OAuth error (invalid_grant: a replayed code)
  // A failed ID token check names its claim (nonce, aud, iss, exp…), possibly a cause or two down.
  for (let cause: unknown = err, depth = 0; cause && depth < 4; cause = (cause as { cause?: unknown }).cause, depth++) {
    const claim = (cause as { claim?: unknown }).claim;
    if (typeof claim === 'string') return claim.slice(0, 32);
  }
  return typeof e.code === 'string' ? e.code.slice(0, 64) : 'invalid';
}
