import { randomUUID } from 'node:crypto';
import { OrderlyError } from '@orderly/shared';
import type { AlertOutbox } from '../alerts/outbox';
import type { AuditLog } from '../audit/audit';
import type { Db } from '../db/db';
import type { UserRow } from './users';

/**
 * Local accounts (password and TOTP) once single sign-on is configured: people come in through
 * the provider, so a local sign-in is the break-glass way in (the provider is down, or locked
 * everyone out). It is off by default: only the usernames in ORDERLY_BREAK_GLASS_USERS may sign in
 * locally, and every such sign-in alerts the security team through the alert outbox and is
 * audited as `auth.break_glass`, in one transaction. Without single sign-on local accounts are the
 * normal way in and nothing here applies.
 */
export class LocalSignInPolicy {
  constructor(
    private readonly deps: { db: Db; audit: AuditLog; alerts: AlertOutbox | undefined; ssoConfigured: boolean; breakGlassUsers: readonly string[] },
  ) {}

  /** Called after the password and second factor verified; refuses or records the sign-in. */
  async admit(user: UserRow, via: 'console' | 'api' | 'cli', meta: { sourceIp?: string; requestId?: string }): Promise<void> {
    if (!this.deps.ssoConfigured) return;
    if (!this.deps.breakGlassUsers.includes(user.username)) {
      throw new OrderlyError(
        'ORDERLY_E_LOCAL_SIGN_IN_DISABLED',
        'single sign-on is configured: sign in through your identity provider (Sign in with SSO, or orderly login --sso)',
      );
    }
    const at = new Date().toISOString();
    await this.deps.db.transaction(async (tx) => {
      await this.deps.alerts?.breakGlassSignIn(tx, { kind: 'auth.break_glass', useId: randomUUID(), username: user.username, via, at });
      await this.deps.audit.append(
        { actor: `user:${user.username}`, action: 'auth.break_glass', target: `user:${user.username}`, outcome: 'success', ...meta, details: { via } },
        tx,
      );
    });
  }
}
