import { randomUUID } from 'node:crypto';
import { OrderlyError, open, seal, SealedBox } from '@orderly/shared';
import type { Principal } from '../access/permissions';
import { Queryable } from '../db/db';
import { IdentityDeps, iso, ms } from './deps';
import { lockSeconds } from './lockout';
import { decoyHash, hashPassword, verifyPassword } from './passwords';
import { UserView } from './schemas';
import { base32Encode, matchTotp, newTotpSecret, otpauthUri } from './totp';
import { hashesEqual, newRecoveryCodes, newSecret, RECOVERY_CODE, recoveryCodeHash, secretHash } from './tokens';

export interface UserRow {
  id: string;
  username: string;
  roles: string[];
  password_hash: string | null;
  totp_sealed: SealedBox | null;
  enrolment_hash: string | null;
  enrolment_expires_at: Date | null;
  enrolled_at: Date | null;
  disabled_at: Date | null;
  created_at: Date;
  locked_until?: Date | null;
}

const SELECT_USER = `SELECT u.*, t.locked_until FROM users u LEFT JOIN sign_in_throttle t ON t.username = u.username`;
const totpAad = (userId: string) => `orderly:totp:${userId}`;
const failed = () => new OrderlyError('ORDERLY_E_SIGN_IN_FAILED', 'sign-in failed: wrong username, password or code');

/** True for PostgreSQL's (and PGlite's) unique-violation error. */
const isUniqueViolation = (err: unknown) => (err as { code?: unknown }).code === '23505';

/**
 * People: creation with a one-time enrolment secret, TOTP enrolment, sign-in with a second factor
 * and brute-force lockout, roles, disable and unlock.
 */
export class Users {
  private decoy: Promise<string> | undefined;

  constructor(private readonly deps: IdentityDeps) {}

  view(row: UserRow): UserView {
    const lockedUntil = ms(row.locked_until);
    return {
      id: row.id,
      username: row.username,
      roles: row.roles,
      enrolled: row.enrolled_at !== null,
      disabled: row.disabled_at !== null,
      lockedUntil: lockedUntil !== null && lockedUntil > this.deps.clock() ? iso(lockedUntil) : null,
      createdAt: iso(ms(row.created_at)!),
    };
  }

  /** Creates a person; the enrolment secret is returned once, to be handed over out of band. */
  async create(
    username: string,
    roles: readonly string[],
    createdBy: string,
    db: Queryable = this.deps.db,
  ): Promise<{ user: UserView; enrolmentSecret: string; enrolmentExpiresAt: string }> {
    const enrolmentSecret = newSecret();
    const expiresAt = this.deps.clock() + this.deps.settings.enrolmentHours * 3600_000;
    try {
      const [row] = await db.query<UserRow>(
        `INSERT INTO users (id, username, roles, enrolment_hash, enrolment_expires_at, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [randomUUID(), username, [...new Set(roles)], secretHash(enrolmentSecret), iso(expiresAt), createdBy],
      );
      return { user: this.view(row!), enrolmentSecret, enrolmentExpiresAt: iso(expiresAt) };
    } catch (err) {
      if (isUniqueViolation(err)) throw new OrderlyError('ORDERLY_E_IDENTITY_CONFLICT', `user ${username} already exists`, { username });
      throw err;
    }
  }

  async list(): Promise<UserView[]> {
    return (await this.deps.db.query<UserRow>(`${SELECT_USER} ORDER BY u.username`)).map((r) => this.view(r));
  }

  /** By id or username (usernames cannot look like ids). */
  async find(idOrUsername: string, db: Queryable = this.deps.db): Promise<UserRow> {
    const [row] = await db.query<UserRow>(`${SELECT_USER} WHERE u.id::text = $1 OR u.username = $1`, [idOrUsername]);
    if (!row) throw new OrderlyError('ORDERLY_E_NOT_FOUND', 'no such user');
    return row;
  }

  /** Replaces a person's roles; takes effect on their sessions and tokens at the next request. */
  async setRoles(idOrUsername: string, roles: readonly string[], by: Principal): Promise<UserView> {
    const user = await this.find(idOrUsername);
    // Nobody widens or narrows their own access: a second person must do it.
    if (by.kind === 'user' && by.id === user.id)
      throw new OrderlyError('ORDERLY_E_FORBIDDEN', 'you cannot change your own roles', { permission: 'users.manage' });
    await this.deps.db.query('UPDATE users SET roles = $2 WHERE id = $1', [user.id, [...new Set(roles)]]);
    return this.view(await this.find(user.id));
  }

  /** Disables a person and ends their sessions; their tokens stop working at once (checked per request). */
  async disable(idOrUsername: string): Promise<UserView> {
    const user = await this.find(idOrUsername);
    await this.deps.db.transaction(async (tx) => {
      await tx.query('UPDATE users SET disabled_at = COALESCE(disabled_at, $2) WHERE id = $1', [user.id, iso(this.deps.clock())]);
      await tx.query('DELETE FROM sessions WHERE user_id = $1', [user.id]);
    });
    return this.view(await this.find(user.id));
  }

  /** Clears the lockout of a username. */
  async unlock(idOrUsername: string): Promise<UserView> {
    const user = await this.find(idOrUsername);
    await this.deps.db.query('DELETE FROM sign_in_throttle WHERE username = $1', [user.username]);
    return this.view(await this.find(user.id));
  }

  /** First step of enrolment: a fresh TOTP secret, as an otpauth URI for the authenticator app. */
  async startEnrolment(username: string, enrolmentSecret: string): Promise<{ otpauthUri: string; secret: string }> {
    await this.assertNotLocked(username);
    const user = await this.enrollable(username, enrolmentSecret);
    const secret = newTotpSecret();
    await this.deps.db.query('UPDATE users SET totp_sealed = $2 WHERE id = $1', [
      user.id,
      JSON.stringify(seal(this.deps.dataKey, this.deps.dataKeyId, secret, totpAad(user.id))),
    ]);
    return { otpauthUri: otpauthUri(secret, username), secret: base32Encode(secret) };
  }

  /**
   * Second step: a code from the app proves the secret was stored; the password is set, the
   * enrolment secret is spent, and the recovery codes are returned (once; only HMACs are kept).
   */
  async confirmEnrolment(username: string, enrolmentSecret: string, password: string, code: string): Promise<string[]> {
    await this.assertNotLocked(username);
    const user = await this.enrollable(username, enrolmentSecret);
    const step = user.totp_sealed ? matchTotp(this.totpSecret(user), code, this.deps.clock()) : undefined;
    if (step === undefined) return this.fail(username);
    const passwordHash = await hashPassword(password, this.deps.settings.scrypt);
    const codes = newRecoveryCodes();
    const done = await this.deps.db.transaction(async (tx) => {
      const rows = await tx.query(
        `UPDATE users SET password_hash = $2, enrolled_at = $3, totp_last_step = $4, enrolment_hash = NULL, enrolment_expires_at = NULL
         WHERE id = $1 AND enrolled_at IS NULL AND enrolment_hash = $5 RETURNING id`,
        [user.id, passwordHash, iso(this.deps.clock()), step, user.enrolment_hash],
      );
      if (rows.length === 0) return false; // a concurrent confirmation won
      for (const c of codes)
        await tx.query('INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)', [user.id, recoveryCodeHash(this.deps.dataKey, user.id, c)]);
      return true;
    });
    if (!done) return this.fail(username);
    await this.clearFailures(username);
    return codes;
  }

  /**
   * Password plus a second factor (a TOTP code, or one unused recovery code). Every failure counts
   * towards the username's lockout, and the answer is the same whether or not the user exists.
   */
  async signIn(username: string, password: string, code: string): Promise<UserRow> {
    await this.assertNotLocked(username);
    const [user] = await this.deps.db.query<UserRow>(`${SELECT_USER} WHERE u.username = $1`, [username]);
    // An unknown or not-yet-enrolled user still costs one scrypt, so timing does not tell them apart.
    const passwordOk = await verifyPassword(password, user?.password_hash ?? (await this.decoyHash()));
    if (!user || !passwordOk || user.enrolled_at === null || user.disabled_at !== null) return this.fail(username);
    if (!(await this.spendSecondFactor(user, code))) return this.fail(username);
    await this.clearFailures(username);
    return user;
  }

  /** A fresh TOTP code for a step-up (recovery codes do not count); failures count towards lockout. */
  async stepUp(userId: string, code: string): Promise<boolean> {
    const user = await this.find(userId);
    await this.assertNotLocked(user.username);
    if (user.disabled_at !== null || !(await this.spendTotp(user, code))) {
      await this.recordFailure(user.username);
      return false;
    }
    return true;
  }

  private async spendSecondFactor(user: UserRow, code: string): Promise<boolean> {
    if (RECOVERY_CODE.test(code.toLowerCase())) {
      const rows = await this.deps.db.query(
        'UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING user_id',
        [user.id, recoveryCodeHash(this.deps.dataKey, user.id, code), iso(this.deps.clock())],
      );
      return rows.length === 1;
    }
    return this.spendTotp(user, code);
  }

  /** Accepts a code at most once: its step must be newer than the last accepted one (replay refused). */
  private async spendTotp(user: UserRow, code: string): Promise<boolean> {
    if (!user.totp_sealed || user.enrolled_at === null) return false;
    const step = matchTotp(this.totpSecret(user), code, this.deps.clock());
    if (step === undefined) return false;
    // Conditional update: two requests racing with the same code cannot both win.
    const rows = await this.deps.db.query(
      'UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2) RETURNING id',
      [user.id, step],
    );
    return rows.length === 1;
  }

  private totpSecret(user: UserRow): Buffer {
    return open(this.deps.dataKey, SealedBox.parse(user.totp_sealed), totpAad(user.id));
  }

  private async enrollable(username: string, enrolmentSecret: string): Promise<UserRow> {
    const [user] = await this.deps.db.query<UserRow>(`${SELECT_USER} WHERE u.username = $1`, [username]);
    const ok =
      user !== undefined &&
      user.enrolled_at === null &&
      user.disabled_at === null &&
      user.enrolment_hash !== null &&
      hashesEqual(user.enrolment_hash, secretHash(enrolmentSecret)) &&
      (ms(user.enrolment_expires_at) ?? 0) > this.deps.clock();
    if (!ok) return this.fail(username);
    return user;
  }

  private decoyHash(): Promise<string> {
    this.decoy ??= decoyHash(this.deps.settings.scrypt);
    return this.decoy;
  }

  private async assertNotLocked(username: string): Promise<void> {
    const [row] = await this.deps.db.query<{ locked_until: Date | null }>('SELECT locked_until FROM sign_in_throttle WHERE username = $1', [username]);
    const until = ms(row?.locked_until);
    const now = this.deps.clock();
    if (until !== null && until > now) {
      throw new OrderlyError('ORDERLY_E_SIGN_IN_LOCKED', 'too many failed sign-ins: try again later', { retryAfterSeconds: Math.ceil((until - now) / 1000) });
    }
  }

  private async recordFailure(username: string): Promise<void> {
    const now = this.deps.clock();
    const [row] = await this.deps.db.query<{ failures: number }>(
      `INSERT INTO sign_in_throttle (username, failures, last_failure_at) VALUES ($1, 1, $2)
       ON CONFLICT (username) DO UPDATE SET failures = sign_in_throttle.failures + 1, last_failure_at = $2 RETURNING failures`,
      [username, iso(now)],
    );
    const seconds = lockSeconds(row!.failures, this.deps.settings.lockout);
    if (seconds > 0) await this.deps.db.query('UPDATE sign_in_throttle SET locked_until = $2 WHERE username = $1', [username, iso(now + seconds * 1000)]);
  }

  private async fail(username: string): Promise<never> {
    await this.recordFailure(username);
    throw failed();
  }

  private async clearFailures(username: string): Promise<void> {
    await this.deps.db.query('DELETE FROM sign_in_throttle WHERE username = $1', [username]);
  }
}
