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

interface NewDisposal {
  kind: DisposalKind;
  count: number;
  rangeStart: Date;
  rangeEnd: Date;
  policy: string;
  actor: string;
  details?: Record<string, string | number | boolean | null>;
}

const toView = (r: Record<string, unknown>): DisposalRecord => ({
  id: Number(r.id),
  disposedAt: new Date(r.disposed_at as string).toISOString(),
  kind: r.kind as DisposalKind,
  count: Number(r.count),
  rangeStart: new Date(r.range_start as string).toISOString(),
  rangeEnd: new Date(r.range_end as string).toISOString(),
  policy: String(r.policy),
  actor: String(r.actor),
  details: (r.details ?? {}) as DisposalRecord['details'],
});

/** Writes one disposal record, in the caller's transaction (the purge's own). */
export async function recordDisposal(q: Queryable, d: NewDisposal): Promise<DisposalRecord> {
  const [row] = await q.query(
    `INSERT INTO disposal_records (kind, count, range_start, range_end, policy, actor, details) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
    [d.kind, d.count, d.rangeStart.toISOString(), d.rangeEnd.toISOString(), d.policy, d.actor, JSON.stringify(d.details ?? {})],
  );
  return toView(row!);
}

/** The statuses a run's PHI may be purged in: finished for good. A dead letter is not: an operator still has to work it. */
export const PURGEABLE_STATUSES = ['succeeded', 'failed', 'cancelled', 'discarded'] as const;
/** The audit action of a finished runs' PHI purge. */
export const RUN_PHI_PURGE_ACTION = 'retention.run_phi_purge';
const RUN_PURGE_BATCH = 500;

/**
 * The retention purges and their disposal records (45 CFR 164.310(d)(2)(i)): expired screenshots,
 * the oldest prefix of the audit chain past `ORDERLY_AUDIT_RETENTION_DAYS`, and the PHI of runs
 * finished over `ORDERLY_RUN_RETENTION_DAYS` ago. Each purge that removes anything writes its
 * records in its own transaction; a purge that finds nothing writes none.
 */
export class Retention {
  constructor(
    private readonly deps: {
      db: Db;
      audit: AuditLog;
      screenshotRetentionDays: number;
      auditRetentionDays: number;
      /** Days a finished run keeps its PHI; 0 keeps it forever. */
      runRetentionDays?: number;
      actor?: string;
      runBatchSize?: number;
    },
  ) {}

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
        kind: 'screenshots',
        count,
        rangeStart: new Date(gone!.first!),
        rangeEnd: new Date(gone!.last!),
        policy: `expired (ORDERLY_SCREENSHOT_RETENTION_DAYS=${this.deps.screenshotRetentionDays})`,
        actor: this.actor,
      });
    });
  }

  /** Expires the audit chain's oldest prefix (see `AuditLog.expire`) and records it. */
  async purgeAudit(): Promise<DisposalRecord | undefined> {
    let record: DisposalRecord | undefined;
    await this.deps.audit.expire(this.deps.auditRetentionDays, this.actor, async (tx, expired) => {
      record = await recordDisposal(tx, {
        kind: 'audit_events',
        count: expired.count,
        rangeStart: expired.firstAt,
        rangeEnd: expired.lastAt,
        policy: `older than ${expired.retentionDays} days (ORDERLY_AUDIT_RETENTION_DAYS)`,
        actor: this.actor,
        details: { firstSeq: expired.firstSeq, throughSeq: expired.throughSeq, before: expired.before },
      });
    });
    return record;
  }

  /**
   * Purges the PHI of finished runs past `ORDERLY_RUN_RETENTION_DAYS`, in batches, each batch one
   * transaction: the runs' sealed input and result are emptied and `phi_purged_at` set (the row
   * stays: ids, bot, status, times), their step results emptied, their screenshots and log lines
   * deleted, and the disposal records (`runs`, and `run_logs`/`screenshots` when there were any) and
   * one audit event written. Anything failing rolls the batch back whole: nothing is purged without
   * its record. A run counts from its last change (a discarded dead letter from its discard).
   */
  async purgeRuns(): Promise<RunPurge[]> {
    const days = this.deps.runRetentionDays ?? 0;
    if (!(days > 0)) return [];
    const batch = this.deps.runBatchSize ?? RUN_PURGE_BATCH;
    const purges: RunPurge[] = [];
    for (;;) {
      const purge = await this.deps.db.transaction((tx) => this.purgeRunBatch(tx, days, batch));
      if (!purge) return purges;
      purges.push(purge);
      if (purge.runs.count < batch) return purges;
    }
  }

  private async purgeRunBatch(tx: Queryable, days: number, batch: number): Promise<RunPurge | undefined> {
    const actor = this.actor;
    const policy = `finished over ${days} days ago (ORDERLY_RUN_RETENTION_DAYS=${days})`;
    const due = await tx.query<{ id: string }>(
      `SELECT id FROM runs
       WHERE phi_purged_at IS NULL AND status = ANY($1) AND finished_at < now() - ($2::double precision * interval '1 day')
         AND updated_at < now() - ($2::double precision * interval '1 day')
       ORDER BY updated_at, id LIMIT $3 FOR UPDATE SKIP LOCKED`,
      [[...PURGEABLE_STATUSES], days, batch],
    );
    if (due.length === 0) return undefined;
    const ids = due.map((r) => r.id);
    type Gone = { n: string; first: string | null; last: string | null };
    const [logs] = await tx.query<Gone>(
      'WITH gone AS (DELETE FROM run_logs WHERE run_id = ANY($1) RETURNING at) SELECT count(*) AS n, min(at) AS first, max(at) AS last FROM gone',
      [ids],
    );
    const [shots] = await tx.query<Gone>(
      'WITH gone AS (DELETE FROM run_screenshots WHERE run_id = ANY($1) RETURNING created_at) SELECT count(*) AS n, min(created_at) AS first, max(created_at) AS last FROM gone',
      [ids],
    );
    const [steps] = await tx.query<{ n: string }>(
      'WITH emptied AS (UPDATE run_steps SET result_sealed = NULL WHERE run_id = ANY($1) AND result_sealed IS NOT NULL RETURNING 1) SELECT count(*) AS n FROM emptied',
      [ids],
    );
    const [runs] = await tx.query<Gone>(
      `WITH purged AS (UPDATE runs SET input_sealed = NULL, result_sealed = NULL, phi_purged_at = now(), updated_at = now() WHERE id = ANY($1) RETURNING created_at)
       SELECT count(*) AS n, min(created_at) AS first, max(created_at) AS last FROM purged`,
      [ids],
    );
    const logLines = Number(logs?.n ?? 0);
    const screenshots = Number(shots?.n ?? 0);
    const stepResults = Number(steps?.n ?? 0);
    const purge: RunPurge = {
      runs: await recordDisposal(tx, {
        kind: 'runs',
        count: Number(runs!.n),
        rangeStart: new Date(runs!.first!),
        rangeEnd: new Date(runs!.last!),
        policy,
        actor,
        details: { purged: 'input, result, step results, screenshots, logs', stepResults, logLines, screenshots },
      }),
      stepResults,
    };
    if (logLines > 0)
      purge.runLogs = await recordDisposal(tx, {
        kind: 'run_logs',
        count: logLines,
        rangeStart: new Date(logs!.first!),
        rangeEnd: new Date(logs!.last!),
        policy,
        actor,
      });
    if (screenshots > 0)
      purge.screenshots = await recordDisposal(tx, {
        kind: 'screenshots',
        count: screenshots,
        rangeStart: new Date(shots!.first!),
        rangeEnd: new Date(shots!.last!),
        policy,
        actor,
      });
    await this.deps.audit.append(
      {
        actor,
        action: RUN_PHI_PURGE_ACTION,
        target: 'runs',
        outcome: 'success',
        details: {
          runs: purge.runs.count,
          logLines,
          screenshots,
          stepResults,
          retentionDays: days,
          rangeStart: purge.runs.rangeStart,
          rangeEnd: purge.runs.rangeEnd,
          disposalId: purge.runs.id,
        },
      },
      tx,
    );
    return purge;
  }
}

/** The records of one batch of the finished runs' PHI purge. */
export interface RunPurge {
  runs: DisposalRecord;
  runLogs?: DisposalRecord;
  screenshots?: DisposalRecord;
  /** Step checkpoints whose sealed results were emptied (the step rows stay). */
  stepResults: number;
}

/** The disposal records, newest first. */
export async function listDisposals(q: Queryable, options: { limit?: number | undefined; kind?: DisposalKind | undefined } = {}): Promise<DisposalRecord[]> {
  const rows = await q.query('SELECT * FROM disposal_records WHERE ($1::text IS NULL OR kind = $1) ORDER BY disposed_at DESC, id DESC LIMIT $2', [
    options.kind ?? null,
    options.limit ?? 100,
  ]);
  return rows.map(toView);
}
