import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, OrderlyError, seal, SealedBox } from '@orderly/shared';
import { parseBinding } from '../../access/bindings';
import type { AuditLog } from '../../audit/audit';
import type { Db } from '../../db/db';
import type { Identity } from '../identity';
import { Username } from '../schemas';
import { secretHash } from '../tokens';
import type { UserRow } from '../users';
import type { SsoConfig } from './config';
import { CliFlow, openFlow, sameString, sealFlow, SSO_FLOW_MINUTES } from './flow';

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
  /** A console sign-in: the session to set. */
  session?: { sessionId: string; csrfToken: string; expiresAt: number };
  /** A CLI sign-in (`orderly login --sso`): the loopback URL, with the one-time code, to redirect to. */
  cliRedirect?: string;
}

/** How long the CLI has to redeem its one-time code (it is listening already: seconds suffice). */
export const CLI_CODE_SECONDS = 60;
const REFRESH_AAD = 'orderly:sso-refresh-token:v1';

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
  async start(cli?: CliFlow): Promise<{ url: string; flow: string }> {
    const { client, configuration } = await this.oidc();
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(configuration, {
      redirect_uri: this.deps.config.redirectUrl,
      // offline_access: a refresh token, which the leaver check presents at intervals.
      scope: 'openid profile email offline_access',
      // Providers grant offline_access only with consent asked (OIDC Core 11).
      prompt: 'consent',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const expiresAt = this.deps.identity.clock() + SSO_FLOW_MINUTES * 60_000;
    return {
      url: url.href,
      flow: sealFlow(this.deps.dataKey, this.deps.dataKeyId, { state, nonce, codeVerifier, expiresAt, ...(cli ? { cli } : {}) }),
    };
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
    let refreshToken: string | undefined;
    try {
      const tokens = await client.authorizationCodeGrant(configuration, currentUrl, {
        pkceCodeVerifier: flow.codeVerifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      });
      claims = (tokens.claims() as Record<string, unknown> | undefined) ?? {};
      refreshToken = tokens.refresh_token;
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
    await this.keepRefreshToken(issuer, subject, refreshToken, now);
    if (!linked || !sameRoles(linked.roles, roles)) await this.rolesChanged(user.username, issuer, subject, linked?.roles ?? [], roles, meta);
    trace.target = `user:${user.username}`;

    const details = { issuer, subject: subject.slice(0, 200), roles: roles.join(','), mfa, client: flow.cli ? 'cli' : 'console', refreshable: !!refreshToken };
    const audited = { actor: `user:${user.username}`, action: 'sso.sign_in', target: `user:${user.username}`, outcome: 'success' as const, ...meta, details };
    if (flow.cli) {
      const code = await this.issueCliCode(user.id, flow.cli.challenge);
      await this.deps.audit.append(audited);
      const back = new URL(flow.cli.redirect);
      back.search = new URLSearchParams({ code, state: flow.cli.state }).toString();
      return { user, roles, mfa, cliRedirect: back.href };
    }
    const session = await this.deps.identity.sessions.create(user.id);
    // Without a second factor at the provider the session is not stepped up (step-up routes refuse it).
    if (!mfa) await this.deps.db.query('UPDATE sessions SET stepped_up_at = NULL WHERE id_hash = $1', [secretHash(session.sessionId)]);
    await this.deps.audit.append(audited);
    return { user, roles, mfa, session };
  }

  /** A one-time code for the CLI's loopback listener, bound to the CLI process's PKCE challenge. */
  private async issueCliCode(userId: string, challenge: string): Promise<string> {
    const code = randomBytes(32).toString('base64url');
    const now = this.deps.identity.clock();
    await this.deps.db.query('INSERT INTO sso_cli_codes (code_hash, user_id, code_challenge, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)', [
      secretHash(code),
      userId,
      challenge,
      new Date(now).toISOString(),
      new Date(now + CLI_CODE_SECONDS * 1000).toISOString(),
    ]);
    return code;
  }

  /**
   * `POST /v1/login/sso/token`: the CLI's code and PKCE verifier for an API token of the person
   * who signed in at the provider. The code is deleted whatever the outcome (single use).
   */
  async redeemCliCode(code: string, verifier: string): Promise<UserRow> {
    const invalid = () =>
      new OrderlyError('ORDERLY_E_SSO_CLI_CODE_INVALID', "the sign-in code is unknown, used, expired or not this process's: run `orderly login --sso` again");
    const [row] = await this.deps.db.query<{ user_id: string; code_challenge: string; expires_at: Date }>(
      'DELETE FROM sso_cli_codes WHERE code_hash = $1 RETURNING user_id, code_challenge, expires_at',
      [secretHash(code)],
    );
    if (!row || row.expires_at.getTime() <= this.deps.identity.clock()) throw invalid();
    if (!sameString(createHash('sha256').update(verifier).digest('base64url'), row.code_challenge)) throw invalid();
    const [user] = await this.deps.db.query<UserRow>('SELECT * FROM users WHERE id = $1', [row.user_id]);
    if (!user || user.disabled_at !== null || user.roles.length === 0) throw invalid();
    return user;
  }

  private async keepRefreshToken(issuer: string, subject: string, refreshToken: string | undefined, now: string): Promise<void> {
    const sealed = refreshToken ? seal(this.deps.dataKey, this.deps.dataKeyId, Buffer.from(refreshToken), REFRESH_AAD) : null;
    // Without a new one the old is dropped too: it belongs to an earlier sign-in.
    await this.deps.db.query('UPDATE sso_identities SET refresh_token = $3, checked_at = $4 WHERE issuer = $1 AND subject = $2', [
      issuer,
      subject,
      sealed === null ? null : JSON.stringify(sealed),
      now,
    ]);
  }

  /**
   * The leaver check, every `checkSeconds` (leader only): for each linked person with a refresh
   * token and roles, a refresh at the provider. Refused (`invalid_grant`: the person was disabled,
   * deleted or their grant revoked there) ends every session and API token of theirs at once and
   * takes their roles (`sso.access_end`); a refreshed ID token's groups recompute the roles
   * (`sso.roles_change`; none mapped ends access too). A provider that cannot be reached changes
   * nothing (its outage must not log everyone out); the next interval asks again.
   */
  async checkLeavers(): Promise<{ checked: number; ended: number }> {
    const rows = await this.deps.db.query<{ issuer: string; subject: string; refresh_token: unknown; user_id: string; username: string; roles: string[] }>(
      `SELECT s.issuer, s.subject, s.refresh_token, u.id AS user_id, u.username, u.roles
       FROM sso_identities s JOIN users u ON u.id = s.user_id
       WHERE s.refresh_token IS NOT NULL AND cardinality(u.roles) > 0 AND u.disabled_at IS NULL`,
    );
    if (rows.length === 0) return { checked: 0, ended: 0 };
    const { client, configuration } = await this.oidc();
    let ended = 0;
    for (const row of rows) {
      let refreshToken: string;
      try {
        refreshToken = open(this.deps.dataKey, SealedBox.parse(row.refresh_token), REFRESH_AAD).toString('utf8');
      } catch {
        continue; // sealed with a retired data key: the person's next sign-in stores a new one
      }
      const now = new Date(this.deps.identity.clock()).toISOString();
      let claims: Record<string, unknown> | undefined;
      let next: string | undefined;
      try {
        const tokens = await client.refreshTokenGrant(configuration, refreshToken);
        claims = tokens.claims() as Record<string, unknown> | undefined;
        next = tokens.refresh_token;
      } catch (err) {
        if ((err as { error?: unknown }).error === 'invalid_grant') {
          await this.endAccess(row, 'provider_refused');
          ended++;
        }
        continue;
      }
      await this.keepRefreshToken(row.issuer, row.subject, next ?? refreshToken, now);
      if (!claims || !Object.hasOwn(claims, this.deps.config.groupsClaim)) continue;
      const groups = claimStrings(claims[this.deps.config.groupsClaim]);
      const roles = rolesForGroups(groups, this.deps.config.groupRoles);
      if (roles.length === 0) {
        await this.endAccess(row, 'no_role');
        ended++;
      } else if (!sameRoles(row.roles, roles)) {
        await this.deps.db.query('UPDATE users SET roles = $2 WHERE id = $1', [row.user_id, roles]);
        await this.deps.db.query('UPDATE sso_identities SET groups = $3 WHERE issuer = $1 AND subject = $2', [row.issuer, row.subject, groups]);
        await this.rolesChanged(row.username, row.issuer, row.subject, row.roles, roles, {});
      }
    }
    return { checked: rows.length, ended };
  }

  /** Ends a person's access: sessions deleted, API tokens revoked, roles and refresh token dropped. */
  private async endAccess(row: { issuer: string; subject: string; user_id: string; username: string; roles: string[] }, reason: string): Promise<void> {
    const at = new Date(this.deps.identity.clock()).toISOString();
    const counts = await this.deps.db.transaction(async (tx) => {
      const sessions = await tx.query('DELETE FROM sessions WHERE user_id = $1 RETURNING 1', [row.user_id]);
      const tokens = await tx.query(
        "UPDATE api_tokens SET revoked_at = $2, revoked_by = 'sso' WHERE owner_kind = 'user' AND owner_id = $1 AND revoked_at IS NULL RETURNING 1",
        [row.user_id, at],
      );
      await tx.query('UPDATE users SET roles = $2 WHERE id = $1', [row.user_id, []]);
      await tx.query('UPDATE sso_identities SET refresh_token = NULL, checked_at = $3 WHERE issuer = $1 AND subject = $2', [row.issuer, row.subject, at]);
      return { sessions: sessions.length, tokens: tokens.length };
    });
    await this.deps.audit.append({
      actor: 'sso',
      action: 'sso.access_end',
      target: `user:${row.username}`,
      outcome: 'success',
      details: { issuer: row.issuer, subject: row.subject.slice(0, 200), reason, from: [...row.roles].sort().join(','), ...counts },
    });
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
