import { OrderlyError } from '@orderly/shared';
import { IdentityDeps, iso, ms } from './deps';
import { newSecret, secretHash } from './tokens';
import type { UserRow } from './users';

export const SESSION_COOKIE = 'orderly_session';

export interface ResolvedSession {
  sessionHash: string;
  csrfHash: string;
  steppedUpAt: number | null;
  user: UserRow;
}

interface SessionRow {
  id_hash: string;
  csrf_hash: string;
  created_at: Date;
  last_seen_at: Date;
  expires_at: Date;
  stepped_up_at: Date | null;
}

/**
 * Console sessions: the cookie holds a random id, the table its SHA-256. A session ends after
 * `sessionIdleMinutes` without a request (automatic logoff) and at `sessionMaxHours` regardless.
 */
export class Sessions {
  constructor(private readonly deps: IdentityDeps) {}

  /** A new session for a user who just proved password and second factor (which counts as a step-up). */
  async create(userId: string): Promise<{ sessionId: string; csrfToken: string; expiresAt: number }> {
    const sessionId = newSecret();
    const csrfToken = newSecret();
    const now = this.deps.clock();
    const expiresAt = now + this.deps.settings.sessionMaxHours * 3600_000;
    await this.deps.db.query(
      'INSERT INTO sessions (id_hash, user_id, csrf_hash, created_at, last_seen_at, expires_at, stepped_up_at) VALUES ($1, $2, $3, $4, $4, $5, $4)',
      [secretHash(sessionId), userId, secretHash(csrfToken), iso(now), iso(expiresAt)],
    );
    return { sessionId, csrfToken, expiresAt };
  }

  /**
   * The live session for a cookie value, touching its idle clock; an idle or expired session is
   * deleted and answered with ORDERLY_E_SESSION_EXPIRED, an unknown one with undefined.
   */
  async resolve(sessionId: string): Promise<ResolvedSession | undefined> {
    const idHash = secretHash(sessionId);
    const [row] = await this.deps.db.query<SessionRow & { user_id: string }>('SELECT * FROM sessions WHERE id_hash = $1', [idHash]);
    if (!row) return undefined;
    const now = this.deps.clock();
    const idleLimit = ms(row.last_seen_at)! + this.deps.settings.sessionIdleMinutes * 60_000;
    if (now >= idleLimit || now >= ms(row.expires_at)!) {
      await this.deps.db.query('DELETE FROM sessions WHERE id_hash = $1', [idHash]);
      throw new OrderlyError('ORDERLY_E_SESSION_EXPIRED', 'the session has expired: sign in again');
    }
    const [user] = await this.deps.db.query<UserRow>('SELECT * FROM users WHERE id = $1', [row.user_id]);
    if (!user || user.disabled_at !== null) return undefined;
    await this.deps.db.query('UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1', [idHash, iso(now)]);
    return { sessionHash: idHash, csrfHash: row.csrf_hash, steppedUpAt: ms(row.stepped_up_at), user };
  }

  async markSteppedUp(sessionHash: string): Promise<void> {
    await this.deps.db.query('UPDATE sessions SET stepped_up_at = $2 WHERE id_hash = $1', [sessionHash, iso(this.deps.clock())]);
  }

  async end(sessionHash: string): Promise<void> {
    await this.deps.db.query('DELETE FROM sessions WHERE id_hash = $1', [sessionHash]);
  }

  /** The Set-Cookie value: never readable by scripts, never sent cross-site, HTTPS only. */
  cookie(sessionId: string): string {
    return `${SESSION_COOKIE}=${sessionId}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=${this.deps.settings.sessionMaxHours * 3600}`;
  }

  static clearCookie(): string {
    return `${SESSION_COOKIE}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
  }
}

/** The session cookie's value from a Cookie header, if well-formed. */
export function sessionCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [name, value] = part.trim().split('=', 2);
    if (name === SESSION_COOKIE && value && /^[A-Za-z0-9_-]{16,128}$/.test(value)) return value;
  }
  return undefined;
}
