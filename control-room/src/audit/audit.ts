import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '@orderly/shared';
import { ADVISORY_LOCKS } from '../db/locks';
import { Db, Queryable, Transaction } from '../db/db';

/**
 * The audit log (invariant 5): append-only (a trigger refuses UPDATE, DELETE and TRUNCATE) and
 * hash-chained: each event's hash is sha256(prev_hash + canonical JSON of the event), so editing
 * or removing an event in the middle breaks every later link. Signed chain heads (`heads.ts`)
 * detect a cut tail; `verify.ts` checks both. Expiry (`expire`) removes a prefix only, through a
 * transaction-local setting the trigger checks (migration 9), and records itself as an event.
 *
 * Events name who did what to which target, never a value: no secret, no PHI. Details are flat
 * scalars so a caller cannot hand over a whole request body by accident.
 */

/** What one expiry removed: bounds and counts only (for the disposal record). */
export interface ExpiredPrefix {
  count: number;
  firstSeq: number;
  throughSeq: number;
  firstAt: Date;
  lastAt: Date;
  before: string;
  retentionDays: number;
}

/** The hash the first event follows. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/** `denied`: the caller was not authenticated or not allowed (401/403); `failure`: any other refusal or error. */
export const AUDIT_OUTCOMES = ['success', 'failure', 'denied'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** The action of the event that records an expiry; verification anchors the first retained event on it. */
export const AUDIT_EXPIRE_ACTION = 'audit.expire';

export const Scalar = z.union([z.string().max(500), z.number(), z.boolean(), z.null()]);

export const AuditEvent = z.strictObject({
  /** Who or what acted: `admin`, `runner:<segment>`, later a user id. */
  actor: z.string().min(1).max(200),
  /** Dotted verb: `credential.set`, `credential.rotate`. */
  action: z
    .string()
    .regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/)
    .max(100),
  /** What was acted on, e.g. `<bot>/<credential>`. */
  target: z.string().min(1).max(300),
  outcome: z.enum(AUDIT_OUTCOMES),
  sourceIp: z.string().max(100).optional(),
  requestId: z.string().max(100).optional(),
  details: z.record(z.string().max(64), Scalar).default({}),
});
export type AuditEvent = z.input<typeof AuditEvent>;

/** One stored event, as read back. */
export interface AuditRecord {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  outcome: AuditOutcome;
  sourceIp: string | null;
  requestId: string | null;
  details: Record<string, z.infer<typeof Scalar>>;
  prevHash: string;
  hash: string;
}

interface AuditRow {
  seq: string | number;
  at: Date;
  actor: string;
  action: string;
  target: string;
  outcome: AuditOutcome;
  source_ip: string | null;
  request_id: string | null;
  details: Record<string, z.infer<typeof Scalar>>;
  prev_hash: string;
  hash: string;
}

/** The hashed content of an event: everything but its sequence number and its own hash. */
function hashedContent(r: Omit<AuditRecord, 'seq' | 'hash' | 'prevHash'>): string {
  return canonicalJson({
    at: r.at,
    actor: r.actor,
    action: r.action,
    target: r.target,
    outcome: r.outcome,
    sourceIp: r.sourceIp,
    requestId: r.requestId,
    details: r.details,
  });
}

/** sha256(prev_hash + canonical JSON of the event), hex. */
export function auditHash(prevHash: string, event: Omit<AuditRecord, 'seq' | 'hash'>): string {
  return createHash('sha256').update(prevHash).update(hashedContent(event)).digest('hex');
}

const toRecord = (r: AuditRow): AuditRecord => ({
  seq: Number(r.seq),
  at: r.at.toISOString(),
  actor: r.actor,
  action: r.action,
  target: r.target,
  outcome: r.outcome,
  sourceIp: r.source_ip,
  requestId: r.request_id,
  details: r.details,
  prevHash: r.prev_hash,
  hash: r.hash,
});

/** Checks the chain of `records` (in seq order, from the first event); returns the seq of the first bad link, or undefined. */
export function verifyAuditChain(records: readonly AuditRecord[]): { ok: true } | { ok: false; seq: number; reason: string } {
  let prev = AUDIT_GENESIS_HASH;
  for (const r of records) {
    if (r.prevHash !== prev) return { ok: false, seq: r.seq, reason: 'prev_hash does not match the previous event' };
    if (auditHash(r.prevHash, r) !== r.hash) return { ok: false, seq: r.seq, reason: 'hash does not match the event' };
    prev = r.hash;
  }
  return { ok: true };
}

export class AuditLog {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Appends one event. With `tx` it joins the caller's transaction (so the event commits or rolls
   * back with the change it records); otherwise it opens its own.
   */
  async append(event: AuditEvent, tx?: Queryable): Promise<void> {
    const parsed = AuditEvent.parse(event);
    // Millisecond precision survives timestamptz unchanged, so the stored row re-hashes the same.
    const record = {
      at: this.now().toISOString(),
      actor: parsed.actor,
      action: parsed.action,
      target: parsed.target,
      outcome: parsed.outcome,
      sourceIp: parsed.sourceIp ?? null,
      requestId: parsed.requestId ?? null,
      details: parsed.details,
    };
    // One round trip: audit_append (migration 11) takes the chain's advisory lock to the end of the
    // transaction (the caller's, or the statement's own), reads the last hash and inserts the event
    // with sha256(prev_hash || content), the same hash auditHash computes.
    await (tx ?? this.db).query('SELECT audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
      record.at,
      record.actor,
      record.action,
      record.target,
      record.outcome,
      record.sourceIp,
      record.requestId,
      JSON.stringify(record.details),
      hashedContent(record),
    ]);
  }

  /** Events in order, optionally after `afterSeq` and within [since, until). */
  async list(options: { afterSeq?: number; limit?: number; since?: Date | undefined; until?: Date | undefined } = {}): Promise<AuditRecord[]> {
    const rows = await this.db.query<AuditRow>(
      `SELECT * FROM audit_events WHERE seq > $1 AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4) ORDER BY seq LIMIT $2`,
      [options.afterSeq ?? 0, options.limit ?? 10_000, options.since?.toISOString() ?? null, options.until?.toISOString() ?? null],
    );
    return rows.map(toRecord);
  }

  /** The last event's seq and hash, or undefined for an empty log. */
  async head(q: Queryable = this.db): Promise<{ seq: number; hash: string } | undefined> {
    const rows = await q.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1');
    return rows[0] ? { seq: Number(rows[0].seq), hash: rows[0].hash } : undefined;
  }

  /**
   * Retention: removes the events older than `retentionDays`, oldest first and only as a prefix of
   * the chain (the newest event always stays, so the chain continues), then appends an
   * `audit.expire` event naming how many went and the seq and hash of the last one: verification
   * starts at the first retained event and anchors its prev_hash on that record. The trigger lets a
   * DELETE through only for rows at or below the transaction-local `orderly.audit_expire_through`
   * and older than `orderly.audit_expire_before` (migration 9); any other DELETE still fails.
   */
  async expire(
    retentionDays: number,
    actor = 'control-room',
    onExpired?: (tx: Transaction, expired: ExpiredPrefix) => Promise<void>,
  ): Promise<{ count: number; throughSeq: number; throughHash: string } | undefined> {
    if (retentionDays <= 0) return undefined;
    const before = new Date(this.now().getTime() - retentionDays * 24 * 3600 * 1000).toISOString();
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCKS.auditChain]);
      // The last event of the longest prefix that is entirely older than the cut-off, never the newest event.
      const last = await tx.query<{ seq: string; hash: string }>(
        `SELECT seq, hash FROM audit_events
         WHERE at < $1
           AND seq < COALESCE((SELECT min(seq) FROM audit_events WHERE at >= $1), 9223372036854775807)
           AND seq < (SELECT max(seq) FROM audit_events)
         ORDER BY seq DESC LIMIT 1`,
        [before],
      );
      if (!last[0]) return undefined;
      const throughSeq = Number(last[0].seq);
      await tx.query("SELECT set_config('orderly.audit_expire_through', $1, true), set_config('orderly.audit_expire_before', $2, true)", [
        String(throughSeq),
        before,
      ]);
      const [deleted] = await tx.query<{ n: string; first_seq: string; first_at: Date | string; last_at: Date | string }>(
        'WITH gone AS (DELETE FROM audit_events WHERE seq <= $1 RETURNING seq, at) SELECT count(*) AS n, min(seq) AS first_seq, min(at) AS first_at, max(at) AS last_at FROM gone',
        [throughSeq],
      );
      const result = { count: Number(deleted!.n), throughSeq, throughHash: last[0].hash };
      await this.append({ actor, action: AUDIT_EXPIRE_ACTION, target: 'audit_events', outcome: 'success', details: { ...result, before, retentionDays } }, tx);
      // The disposal record, in the same transaction: no expiry without its record.
      if (onExpired && result.count > 0) {
        await onExpired(tx, {
          count: result.count,
          firstSeq: Number(deleted!.first_seq),
          throughSeq,
          firstAt: new Date(deleted!.first_at),
          lastAt: new Date(deleted!.last_at),
          before,
          retentionDays,
        });
      }
      return result;
    });
  }
}
