import { FastifyRequest } from 'fastify';
import { OrderlyError, SegmentName } from '@orderly/shared';
import { Principal, PrincipalCredential, RUNNER_PERMISSIONS } from '../access/permissions';
import { permissionsOf } from '../access/roles';
import { Db } from '../db/db';
import { ApiTokens } from './api-tokens';
import type { LocalSignInPolicy } from './break-glass';
import { Clock, systemClock } from './clock';
import { IdentityDeps, IdentitySettings } from './deps';
import { DEFAULT_LOCKOUT } from './lockout';
import { STRONG_SCRYPT } from './passwords';
import { RunnerIdentities } from './runner-identities';
import { ServiceAccounts } from './service-accounts';
import { sessionCookie, Sessions } from './sessions';
import { hashesEqual, secretHash } from './tokens';
import { UserRow, Users } from './users';

export const DEFAULT_IDENTITY_SETTINGS: IdentitySettings = {
  sessionIdleMinutes: 15,
  sessionMaxHours: 12,
  tokenMaxDays: 90,
  stepUpMinutes: 5,
  enrolmentHours: 72,
  lockout: DEFAULT_LOCKOUT,
  scrypt: STRONG_SCRYPT,
};

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The header an API-token caller sends a current TOTP code in, for a step-up route. */
export const TOTP_HEADER = 'x-orderly-totp';
export const CSRF_HEADER = 'x-csrf-token';

export function userPrincipal(user: { id: string; username: string }, roles: readonly string[], credential: PrincipalCredential): Principal {
  return { kind: 'user', id: user.id, actor: `user:${user.username}`, permissions: permissionsOf(roles), roles: [...roles], credential };
}

/**
 * The identity store behind authentication: people, sessions, API tokens, service accounts and
 * runner identities, all in the control room's database.
 */
export class Identity {
  readonly users: Users;
  readonly sessions: Sessions;
  readonly tokens: ApiTokens;
  readonly serviceAccounts: ServiceAccounts;
  readonly runners: RunnerIdentities;
  readonly settings: IdentitySettings;
  readonly clock: Clock;
  /** Break-glass rules for local sign-in when single sign-on is configured (set at start). */
  localSignInPolicy: LocalSignInPolicy | undefined;

  constructor(deps: {
    db: Db;
    dataKey: Buffer;
    dataKeyId: string;
    segments: readonly SegmentName[];
    clock?: Clock;
    settings?: Partial<IdentitySettings>;
    onRunnerKeysChanged?: () => Promise<void>;
  }) {
    this.settings = { ...DEFAULT_IDENTITY_SETTINGS, ...deps.settings };
    this.clock = deps.clock ?? systemClock;
    const common: IdentityDeps = { db: deps.db, dataKey: deps.dataKey, dataKeyId: deps.dataKeyId, clock: this.clock, settings: this.settings };
    this.users = new Users(common);
    this.sessions = new Sessions(common);
    this.tokens = new ApiTokens(common);
    this.serviceAccounts = new ServiceAccounts(common);
    this.runners = new RunnerIdentities({
      ...common,
      segments: deps.segments,
      ...(deps.onRunnerKeysChanged ? { onKeysChanged: deps.onRunnerKeysChanged } : {}),
    });
  }

  /** A local sign-in (password and second factor), then the break-glass policy when one is set. */
  async signInLocally(
    username: string,
    password: string,
    code: string,
    via: 'console' | 'api' | 'cli',
    meta: { sourceIp?: string; requestId?: string },
  ): Promise<UserRow> {
    const user = await this.users.signIn(username, password, code);
    await this.localSignInPolicy?.admit(user, via, meta);
    return user;
  }

  /**
   * The principal of a database-backed credential: an API token or runner identity token in the
   * Authorization header, else the session cookie. Undefined when none is valid; an expired
   * session throws ORDERLY_E_SESSION_EXPIRED so the console can say why.
   */
  async authenticate(request: FastifyRequest, bearerToken: string | undefined): Promise<Principal | undefined> {
    if (bearerToken !== undefined) {
      // Bearer wins over a cookie: a CLI call never rides on a browser session.
      const token = await this.tokens.resolve(bearerToken);
      if (token) {
        const credential: PrincipalCredential = { kind: 'token', tokenId: token.tokenId };
        if (token.owner.kind === 'user') return userPrincipal({ id: token.owner.id, username: token.owner.name }, token.roles, credential);
        return {
          kind: 'service',
          id: token.owner.id,
          actor: `service:${token.owner.name}`,
          permissions: permissionsOf(token.roles),
          roles: token.roles,
          credential,
        };
      }
      const runner = await this.runners.resolve(bearerToken);
      if (runner)
        return {
          kind: 'runner',
          id: runner.id,
          actor: `runner:${runner.name}`,
          permissions: RUNNER_PERMISSIONS,
          segment: runner.segment,
          credential: { kind: 'token', tokenId: runner.id },
        };
      return undefined;
    }
    const cookie = sessionCookie(request.headers.cookie);
    if (cookie === undefined) return undefined;
    const session = await this.sessions.resolve(cookie);
    if (!session) return undefined;
    return userPrincipal(session.user, session.user.roles, {
      kind: 'session',
      sessionHash: session.sessionHash,
      csrfHash: session.csrfHash,
      steppedUpAt: session.steppedUpAt,
    });
  }

  /**
   * CSRF: a cookie is sent by the browser whoever wrote the page, so a state-changing request on
   * a session must also carry the session's CSRF token in a header no other site can set.
   */
  checkCsrf(request: FastifyRequest, principal: Principal | undefined): void {
    if (principal?.credential?.kind !== 'session' || SAFE_METHODS.has(request.method)) return;
    const header = request.headers[CSRF_HEADER];
    if (typeof header !== 'string' || header.length > 256 || !hashesEqual(secretHash(header), principal.credential.csrfHash)) {
      throw new OrderlyError('ORDERLY_E_CSRF_TOKEN_INVALID', `state-changing requests on a session need the ${CSRF_HEADER} header`);
    }
  }

  /**
   * Step-up for routes marked `stepUp`: a session stepped up (or signed in) within
   * `stepUpMinutes`, or an API token of a person with a current, unused TOTP code in the
   * X-Orderly-TOTP header. The bootstrap admin token passes (it is a file on the control room's
   * host: whoever holds it holds the host); service accounts and runners never do.
   */
  async checkStepUp(request: FastifyRequest, principal: Principal | undefined): Promise<void> {
    if (!principal || principal.kind === 'admin') return;
    const credential = principal.credential;
    if (principal.kind === 'user' && credential?.kind === 'session') {
      if (credential.steppedUpAt !== null && credential.steppedUpAt >= this.clock() - this.settings.stepUpMinutes * 60_000) return;
      throw new OrderlyError('ORDERLY_E_STEP_UP_REQUIRED', 'this action needs a fresh second factor: POST /v1/session/step-up');
    }
    if (principal.kind === 'user' && credential?.kind === 'token') {
      const code = request.headers[TOTP_HEADER];
      if (typeof code === 'string' && (await this.users.stepUp(principal.id, code))) return;
      throw new OrderlyError('ORDERLY_E_STEP_UP_REQUIRED', `this action needs a current TOTP code in the ${TOTP_HEADER} header`);
    }
    throw new OrderlyError('ORDERLY_E_STEP_UP_REQUIRED', 'this action needs a person with a second factor');
  }
}
