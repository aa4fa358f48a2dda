import { randomUUID } from 'node:crypto';
import { OrderlyError } from '@orderly/shared';
import { Db, Queryable } from '../db/db';
import { AuditLog } from '../audit/audit';
import { recordEvidence } from './evidence';

export type AccessReviewItemKind = 'person' | 'service_account' | 'runner_identity' | 'api_token' | 'bot_credential';
export type AccessDecision = 'confirmed' | 'revoked';

export interface AccessReviewItem {
  itemId: number;
  kind: AccessReviewItemKind;
  subjectId: string;
  label: string;
  roles: string[];
  lastUsedAt: string | null;
  decision: AccessDecision | null;
  decidedBy: string | null;
  decidedAt: string | null;
}

export interface AccessReview {
  id: string;
  startedAt: string;
  startedBy: string;
  dueAt: string;
  completedAt: string | null;
  items: AccessReviewItem[];
}

const iso = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string).toISOString());

/**
 * Access review campaigns. Starting one snapshots every principal and credential that can act; a
 * reviewer confirms or revokes each. Revoking takes effect at once (the person or account is
 * disabled and its sessions and tokens end, the token or runner identity is revoked); a bot
 * credential is marked for rotation by the security team, which holds its value in Vault. When the
 * last item is decided the campaign completes and is recorded as `access_review` evidence.
 */
export class AccessReviews {
  constructor(private readonly deps: { db: Db; audit: AuditLog }) {}

  async start(actor: string, dueInDays: number, now = new Date()): Promise<AccessReview> {
    if (!Number.isInteger(dueInDays) || dueInDays < 1 || dueInDays > 90) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'dueInDays must be 1-90');
    const id = randomUUID();
    await this.deps.db.transaction(async (tx) => {
      await tx.query('INSERT INTO access_reviews (id, started_at, started_by, due_at) VALUES ($1, $2, $3, $4)', [
        id,
        now,
        actor,
        new Date(now.getTime() + dueInDays * 86_400_000),
      ]);
      // One statement: the snapshot is consistent across the five kinds.
      await tx.query(
        `INSERT INTO access_review_items (review_id, item_id, kind, subject_id, label, roles, last_used_at)
         SELECT $1, row_number() OVER (ORDER BY kind, label, subject_id), kind, subject_id, label, roles, last_used FROM (
           SELECT 'person' AS kind, u.id::text AS subject_id, u.username AS label, u.roles,
             GREATEST((SELECT max(last_seen_at) FROM sessions s WHERE s.user_id = u.id), (SELECT max(last_used_at) FROM api_tokens t WHERE t.owner_kind = 'user' AND t.owner_id = u.id)) AS last_used
             FROM users u WHERE u.disabled_at IS NULL
           UNION ALL SELECT 'service_account', a.id::text, a.name, a.roles, (SELECT max(last_used_at) FROM api_tokens t WHERE t.owner_kind = 'service' AND t.owner_id = a.id) FROM service_accounts a WHERE a.disabled_at IS NULL
           UNION ALL SELECT 'runner_identity', r.id::text, r.name || ' (' || r.segment || ')', ARRAY['runner'], r.last_used_at FROM runner_identities r WHERE r.revoked_at IS NULL
           UNION ALL SELECT 'api_token', t.id::text, t.owner_kind || ':' || t.name, t.scopes, t.last_used_at FROM api_tokens t WHERE t.revoked_at IS NULL AND t.expires_at > $2
           UNION ALL SELECT DISTINCT ON (c.bot, c.name) 'bot_credential', c.bot || '/' || c.name, c.bot || '/' || c.name, '{}'::text[], c.at FROM credential_rotations c ORDER BY 1, 2
         ) AS items`,
        [id, now],
      );
      await this.deps.audit.append({ actor, action: 'access_review.start', target: id, outcome: 'success', details: { dueInDays } }, tx);
    });
    return this.get(id);
  }

  async get(id: string, q: Queryable = this.deps.db): Promise<AccessReview> {
    const [review] = await q.query<Record<string, unknown>>('SELECT * FROM access_reviews WHERE id = $1', [id]).catch(() => []);
    if (!review) throw new OrderlyError('ORDERLY_E_NOT_FOUND', 'no such access review');
    const items = await q.query<Record<string, unknown>>('SELECT * FROM access_review_items WHERE review_id = $1 ORDER BY item_id', [id]);
    return {
      id,
      startedAt: iso(review.started_at)!,
      startedBy: String(review.started_by),
      dueAt: iso(review.due_at)!,
      completedAt: iso(review.completed_at),
      items: items.map((r) => ({
        itemId: Number(r.item_id),
        kind: r.kind as AccessReviewItemKind,
        subjectId: String(r.subject_id),
        label: String(r.label),
        roles: r.roles as string[],
        lastUsedAt: iso(r.last_used_at),
        decision: (r.decision as AccessDecision | null) ?? null,
        decidedBy: (r.decided_by as string | null) ?? null,
        decidedAt: iso(r.decided_at),
      })),
    };
  }

  /** Confirms or revokes one item; completes the campaign when it was the last one open. */
  async decide(id: string, itemId: number, decision: AccessDecision, actor: string): Promise<AccessReview> {
    const completed = await this.deps.db.transaction(async (tx) => {
      const [item] = await tx
        .query<{ kind: AccessReviewItemKind; subject_id: string; decision: string | null }>(
          'SELECT i.kind, i.subject_id, i.decision FROM access_review_items i JOIN access_reviews r ON r.id = i.review_id WHERE i.review_id = $1 AND i.item_id = $2 FOR UPDATE',
          [id, itemId],
        )
        .catch(() => []);
      if (!item) throw new OrderlyError('ORDERLY_E_NOT_FOUND', 'no such access review item');
      if (item.decision !== null) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', `item ${itemId} was already ${item.decision}`);
      await tx.query('UPDATE access_review_items SET decision = $3, decided_by = $4, decided_at = now() WHERE review_id = $1 AND item_id = $2', [
        id,
        itemId,
        decision,
        actor,
      ]);
      if (decision === 'revoked') await revoke(tx, item.kind, item.subject_id, actor);
      await this.deps.audit.append(
        {
          actor,
          action: `access_review.${decision === 'revoked' ? 'revoke' : 'confirm'}`,
          target: `${id}/${itemId}`,
          outcome: 'success',
          details: { kind: item.kind },
        },
        tx,
      );
      const [open] = await tx.query<{ n: string }>('SELECT count(*) AS n FROM access_review_items WHERE review_id = $1 AND decision IS NULL', [id]);
      if (Number(open?.n ?? 0) > 0) return false;
      const done = await tx.query('UPDATE access_reviews SET completed_at = now() WHERE id = $1 AND completed_at IS NULL RETURNING id', [id]);
      return done.length > 0;
    });
    if (completed) {
      const review = await this.get(id);
      await recordEvidence(this.deps.db, this.deps.audit, 'access_review', actor, {
        reviewId: id,
        items: review.items.length,
        revoked: review.items.filter((i) => i.decision === 'revoked').length,
      });
    }
    return this.get(id);
  }

  /** Items of open campaigns past their due date, and when the last campaign completed. */
  async status(now = new Date()): Promise<{ overdueItems: number; lastCompletedAt: Date | null }> {
    const [row] = await this.deps.db.query<{ overdue: string; last: unknown }>(
      `SELECT (SELECT count(*) FROM access_review_items i JOIN access_reviews r ON r.id = i.review_id WHERE r.completed_at IS NULL AND r.due_at < $1 AND i.decision IS NULL) AS overdue,
              (SELECT max(completed_at) FROM access_reviews) AS last`,
      [now],
    );
    return { overdueItems: Number(row?.overdue ?? 0), lastCompletedAt: row?.last ? new Date(row.last as string) : null };
  }
}

/** Takes the access away at once (the identity module's own revocations do the same rows). */
async function revoke(tx: Queryable, kind: AccessReviewItemKind, subjectId: string, actor: string): Promise<void> {
  switch (kind) {
    case 'person':
      await tx.query('UPDATE users SET disabled_at = now() WHERE id = $1 AND disabled_at IS NULL', [subjectId]);
      await tx.query('DELETE FROM sessions WHERE user_id = $1', [subjectId]);
      await tx.query("UPDATE api_tokens SET revoked_at = now(), revoked_by = $2 WHERE owner_kind = 'user' AND owner_id = $1 AND revoked_at IS NULL", [
        subjectId,
        actor,
      ]);
      return;
    case 'service_account':
      await tx.query('UPDATE service_accounts SET disabled_at = now() WHERE id = $1 AND disabled_at IS NULL', [subjectId]);
      await tx.query("UPDATE api_tokens SET revoked_at = now(), revoked_by = $2 WHERE owner_kind = 'service' AND owner_id = $1 AND revoked_at IS NULL", [
        subjectId,
        actor,
      ]);
      return;
    case 'runner_identity':
      await tx.query('UPDATE runner_identities SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [subjectId]);
      return;
    case 'api_token':
      await tx.query('UPDATE api_tokens SET revoked_at = now(), revoked_by = $2 WHERE id = $1 AND revoked_at IS NULL', [subjectId, actor]);
      return;
    case 'bot_credential':
      // The value lives in Vault; the decision is the security team's instruction to rotate it.
      return;
  }
}
