import { z } from 'zod';
import { Db, Queryable } from '../db/db';
import { AuditLog } from '../audit/audit';

export const DISPOSAL_KINDS = ['screenshots', 'audit_events', 'run_logs', 'runs'] as const;
export type DisposalKind = (typeof DISPOSAL_KINDS)[number];

/** One retention purge: what went, how many, the time range of the items, and the rule that allowed it. Never content. */
export const DisposalRecordView = z.object({
  id: z.number(),
  disposedAt: z.string(),
  kind: z.enum(DISPOSAL_KINDS),
  count: z.number(),
  rangeStart: z.string(),
  rangeEnd: z.string(),
  policy: z.string(),
  actor: z.string(),
  details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
});
export type DisposalRecord = z.infer<typeof DisposalRecordView>;
export const DisposalListView = z.object({ disposals: z.array(DisposalRecordView) });

interface NewDisposal { kind: DisposalKind; count: number; rangeStart: Date; rangeEnd: Date; policy: string; actor: string; details?: Record<string, string | number | boolean | null> }

const toView = (r: Record<string, unknown>): DisposalRecord => ({
  id: Number(r.id), disposedAt: new Date(r.disposed_at as string).toISOString(), kind: r.kind as DisposalKind, count: Number(r.count),
  rangeStart: new Date(r.range_start as string).toISOString(), rangeEnd: new Date(r.range_end as string).toISOString(),
  policy: String(r.policy), actor: String(r.actor), details: (r.details ?? {}) as DisposalRecord['details'],
});

/** Writes one disposal record, in the caller's transaction (the purge's own). */
export async function recordDisposal(q: Queryable, d: NewDisposal): Promise<DisposalRecord> {
  const [row] = await q.query(
    `INSERT INTO disposal_records (kind, count, range_start, range_end, policy, actor, details) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
    [d.kind, d.count, d.rangeStart.toISOString(), d.rangeEnd.toISOString(), d.policy, d.actor, JSON.stringify(d.details ?? {})],
  );
  return toView(row!);
}

/**
 * The retention purges and their disposal records (45 CFR 164.310(d)(2)(i)): expired screenshots,
 * and the oldest prefix of the audit chain past `ORDERLY_AUDIT_RETENTION_DAYS`. Each purge that
 * removes anything writes one record in its own transaction; a purge that finds nothing writes none.
 */
export class Retention {
  constructor(private readonly deps: { db: Db; audit: AuditLog; screenshotRetentionDays: number; auditRetentionDays: number; actor?: string }) {}

  private get actor(): string {
    return this.deps.actor ?? 'control-room';
  }

  /** Deletes the screenshots past their expiry (set from the retention when each was stored). */
  async purgeScreenshots(): Promise<DisposalRecord | undefined> {
    return this.deps.db.transaction(async (tx) => {
      const [gone] = await tx.query<{ n: string; first: string | null; last: string | null }>(
        'WITH gone AS (DELETE FROM run_screenshots WHERE expires_at <= now() RETURNING created_at) SELECT count(*) AS n, min(created_at) AS first, max(created_at) AS last FROM gone',
      );
      const count = Number(gone?.n ?? 0);
      if (count === 0) return undefined;
      return recordDisposal(tx, {
        kind: 'screenshots', count, rangeStart: new Date(gone!.first!), rangeEnd: new Date(gone!.last!),
        policy: `expired (ORDERLY_SCREENSHOT_RETENTION_DAYS=${this.deps.screenshotRetentionDays})`, actor: this.actor,
      });
    });
  }

  /** Expires the audit chain's oldest prefix (see `AuditLog.expire`) and records it. */
  async purgeAudit(): Promise<DisposalRecord | undefined> {
    let record: DisposalRecord | undefined;
    await this.deps.audit.expire(this.deps.auditRetentionDays, this.actor, async (tx, expired) => {
      record = await recordDisposal(tx, {
        kind: 'audit_events', count: expired.count, rangeStart: expired.firstAt, rangeEnd: expired.lastAt,
        policy: `older than ${expired.retentionDays} days (ORDERLY_AUDIT_RETENTION_DAYS)`, actor: this.actor,
        details: { firstSeq: expired.firstSeq, throughSeq: expired.throughSeq, before: expired.before },
      });
    });
    return record;
  }
}

/** The disposal records, newest first. */
export async function listDisposals(q: Queryable, options: { limit?: number | undefined; kind?: DisposalKind | undefined } = {}): Promise<DisposalRecord[]> {
  const rows = await q.query(
    'SELECT * FROM disposal_records WHERE ($1::text IS NULL OR kind = $1) ORDER BY disposed_at DESC, id DESC LIMIT $2', [options.kind ?? null, options.limit ?? 100],
  );
  return rows.map(toView);
}
