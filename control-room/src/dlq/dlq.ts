import { canTransition, createRedactor, ErrorBody, OrderlyError, Redactor, RunId, RunStatus, SegmentName } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { AuditLog } from '../audit/audit';
import { Db, Queryable } from '../db/db';
import { discardDeadLetter, requeueDeadLetter } from '../runs/outcome';
import { dlqQueueName, RunQueues } from '../runs/queues';
import { Runs } from '../runs/runs';
import { BulkRequeueRequest, DlqDetail, DlqEntry, DlqFilter, DlqListQuery } from '@orderly/shared';

export interface DeadLettersDeps {
  db: Db;
  runs: Runs;
  queues: RunQueues;
  audit: AuditLog;
  log: Logger;
  /** How long a requeue waits for a runner to let go of the run's previous job. */
  jobUnlockWaitMs?: number;
}

/** Who asked, for the audit event. */
export interface DlqActor {
  actor: string;
  sourceIp?: string | undefined;
  requestId?: string | undefined;
}

interface DlqRow {
  id: string;
  idempotency_key: string;
  bot_name: string;
  bot_version: string;
  segment: string;
  status: RunStatus;
  error: ErrorBody | null;
  attempts: number;
  requeues: number;
  created_at: Date;
  finished_at: Date | null;
  discard_reason: string | null;
}

const COLUMNS = 'id, idempotency_key, bot_name, bot_version, segment, status, error, attempts, requeues, created_at, finished_at, discard_reason';

const toEntry = (r: DlqRow): DlqEntry => ({
  runId: r.id,
  idempotencyKey: r.idempotency_key,
  bot: r.bot_name,
  version: r.bot_version,
  segment: r.segment,
  status: r.status,
  error: r.error,
  attempts: r.attempts,
  requeues: r.requeues,
  createdAt: r.created_at.toISOString(),
  deadLetteredAt: r.finished_at?.toISOString() ?? null,
});

/** Keyset paging on (dead-lettered at, id), newest first; the cursor is opaque to clients. */
const encodeCursor = (r: DlqRow) => Buffer.from(JSON.stringify([r.finished_at?.toISOString() ?? null, r.id])).toString('base64url');
function decodeCursor(cursor: string): [string | null, string] {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && value.length === 2 && (value[0] === null || typeof value[0] === 'string') && RunId.safeParse(value[1]).success)
      return [value[0] as string | null, value[1] as string];
  } catch {
    // fall through
  }
  throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'invalid cursor');
}

function whereClause(filter: DlqFilter, values: unknown[]): string {
  const conditions = ["status = 'dead_lettered'"];
  const add = (sql: (n: number) => string, value: unknown) => {
    values.push(value);
    conditions.push(sql(values.length));
  };
  if (filter.segment) add((n) => `segment = $${n}`, filter.segment);
  if (filter.bot) add((n) => `bot_name = $${n}`, filter.bot);
  if (filter.errorCode) add((n) => `error->>'code' = $${n}`, filter.errorCode);
  if (filter.since) add((n) => `finished_at >= $${n}`, filter.since);
  if (filter.until) add((n) => `finished_at < $${n}`, filter.until);
  return conditions.join(' AND ');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Dead letters: runs whose attempts are exhausted or that failed for a non-retryable system
 * reason. Operators list and inspect them, requeue them (same idempotency key, checkpoints kept,
 * a fresh attempt budget and a freshly signed job) or discard them with a reason. Every requeue
 * and discard is audited in the transaction that makes it.
 */
export class DeadLetters {
  /** Masks PHI shapes an operator may have typed into a reason, before it is stored or audited. */
  private readonly reasons: Redactor = createRedactor();

  constructor(private readonly deps: DeadLettersDeps) {}

  async list(query: DlqListQuery): Promise<{ entries: DlqEntry[]; nextCursor: string | null }> {
    const values: unknown[] = [];
    let where = whereClause(query, values);
    if (query.cursor) {
      const [at, id] = decodeCursor(query.cursor);
      values.push(at, id);
      const a = values.length - 1;
      // NULL dead-letter times (none are expected) sort last, as in the ORDER BY.
      where +=
        at === null ? ` AND finished_at IS NULL AND id < $${a + 1}` : ` AND ((finished_at, id) < ($${a}::timestamptz, $${a + 1}::uuid) OR finished_at IS NULL)`;
    }
    values.push(query.limit + 1);
    const rows = await this.deps.db.query<DlqRow>(
      `SELECT ${COLUMNS} FROM runs WHERE ${where} ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT $${values.length}`,
      values,
    );
    const page = rows.slice(0, query.limit);
    return { entries: page.map(toEntry), nextCursor: rows.length > query.limit ? encodeCursor(page[page.length - 1]!) : null };
  }

  /** A run's segment (undefined when there is no such run): the routes check role bindings with it. */
  async segmentOf(runId: string): Promise<string | undefined> {
    const rows = await this.deps.db.query<{ segment: string }>('SELECT segment FROM runs WHERE id = $1', [runId]);
    return rows[0]?.segment;
  }

  /** One dead letter (or discarded one): the run, its attempts, redacted errors, its last screenshot. */
  async show(runId: string): Promise<DlqDetail> {
    const row = await this.row(runId);
    if (row.status !== 'dead_lettered' && row.status !== 'discarded')
      throw new OrderlyError('ORDERLY_E_NOT_FOUND', `run ${runId} is not in the dead letter queue (it is ${row.status})`, { status: row.status });
    const attempts = await this.deps.db.query<{
      attempt: number;
      runner_id: string;
      claimed_at: Date;
      finished_at: Date | null;
      outcome: 'succeeded' | 'failed' | null;
      error: ErrorBody | null;
    }>('SELECT attempt, runner_id, claimed_at, finished_at, outcome, error FROM run_attempts WHERE run_id = $1 ORDER BY attempt', [runId]);
    const shots = await this.deps.db.query<{ id: string }>('SELECT id FROM run_screenshots WHERE run_id = $1 AND expires_at > now() ORDER BY id DESC LIMIT 1', [
      runId,
    ]);
    return {
      ...toEntry(row),
      attemptsHistory: attempts.map((a) => ({
        attempt: a.attempt,
        runnerId: a.runner_id,
        claimedAt: a.claimed_at.toISOString(),
        finishedAt: a.finished_at?.toISOString() ?? null,
        outcome: a.outcome,
        error: a.error,
      })),
      lastScreenshotId: shots[0] ? Number(shots[0].id) : null,
      discardReason: row.discard_reason,
    };
  }

  private async row(runId: string, q: Queryable = this.deps.db): Promise<DlqRow> {
    if (!RunId.safeParse(runId).success) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'run ids are UUIDs');
    const rows = await q.query<DlqRow>(`SELECT ${COLUMNS} FROM runs WHERE id = $1`, [runId]);
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${runId}`);
    return rows[0];
  }

  /** A refused requeue or discard is audited too (who tried, why, what the run was), then answered 409. */
  private async refused(
    action: 'dlq.requeue' | 'dlq.discard',
    runId: string,
    who: DlqActor,
    details: { reason: string; ticket?: string | null },
    status: RunStatus,
  ): Promise<OrderlyError> {
    await this.deps.audit.append({
      actor: who.actor,
      action,
      target: `run:${runId}`,
      outcome: 'failure',
      sourceIp: who.sourceIp,
      requestId: who.requestId,
      details: { ...details, code: 'ORDERLY_E_RUN_NOT_DEAD_LETTERED', status },
    });
    return new OrderlyError('ORDERLY_E_RUN_NOT_DEAD_LETTERED', `run ${runId} is ${status}, not dead-lettered`, { status });
  }

  /**
   * BullMQ ignores `add` for a job id that still exists, and a dead letter's failed job is kept
   * for days under the run's idempotency key: it must go before the fresh job is added. Only a
   * finished (failed or completed) job is removed; an active one is waited for (its runner is
   * about to fail it), and a waiting or delayed one is left alone: it is live, maybe the fresh job
   * of a requeue that beat this one, and removing it would strand that run.
   */
  private async removeFinishedJob(segment: string, jobId: string): Promise<void> {
    const deadline = Date.now() + (this.deps.jobUnlockWaitMs ?? 5000);
    for (;;) {
      if ((await this.deps.queues.removeFinished(segment as SegmentName, jobId)) !== 'held') return;
      if (Date.now() >= deadline)
        throw new OrderlyError('ORDERLY_E_JOB_LOCKED', "a runner still holds the run's previous job; try again shortly", { runId: jobId });
      await sleep(200);
    }
  }

  /**
   * Requeues one dead letter: `dead_lettered → waiting` (the transition table), same idempotency
   * key, `run_steps` untouched, a fresh attempt budget and a freshly signed job. Of two operators
   * requeueing the same run, the conditional UPDATE lets exactly one win; the other gets 409
   * ORDERLY_E_RUN_NOT_DEAD_LETTERED.
   */
  async requeue(
    runId: string,
    who: DlqActor,
    reason: string,
    ticket?: string,
  ): Promise<{ runId: string; status: 'waiting'; idempotencyKey: string; requeues: number }> {
    const before = await this.row(runId);
    const safeReason = this.reasons.redact(reason);
    if (!canTransition(before.status, 'waiting') || before.status !== 'dead_lettered')
      throw await this.refused('dlq.requeue', runId, who, { reason: safeReason, ticket: ticket ?? null }, before.status);
    await this.removeFinishedJob(before.segment, this.deps.queues.jobIdOf(before.idempotency_key));
    const moved = await this.deps.db.transaction(async (tx) => {
      // A fresh budget, numbered on from the last attempt (outcome.ts).
      const rows = await requeueDeadLetter<DlqRow>(tx, runId);
      const row = rows[0];
      if (!row) return undefined;
      await this.deps.audit.append(
        {
          actor: who.actor,
          action: 'dlq.requeue',
          target: `run:${runId}`,
          outcome: 'success',
          sourceIp: who.sourceIp,
          requestId: who.requestId,
          details: {
            reason: safeReason,
            ticket: ticket ?? null,
            bot: row.bot_name,
            segment: row.segment,
            errorCode: before.error?.code ?? null,
            requeues: row.requeues,
          },
        },
        tx,
      );
      return row;
    });
    if (!moved) throw await this.refused('dlq.requeue', runId, who, { reason: safeReason, ticket: ticket ?? null }, (await this.row(runId)).status);
    await this.dropDlqEntry(moved.segment, runId);
    // After commit: if Redis fails here the run is `waiting` with no `enqueued_at`, and the
    // pending sweep queues it (its old job is already gone, so that add is not ignored).
    await this.deps.runs
      .enqueueFresh([runId])
      .catch((err: Error) => this.deps.log.warn({ runId, err: { message: err.message } }, 'requeued run not queued yet; the sweep will'));
    this.deps.log.info({ runId, actor: who.actor, requeues: moved.requeues }, 'dead letter requeued');
    return { runId, status: 'waiting', idempotencyKey: moved.idempotency_key, requeues: moved.requeues };
  }

  /** Requeues the dead letters matching `filter`, at most `limit`, oldest first; or only counts them. */
  async requeueMany(
    request: BulkRequeueRequest,
    who: DlqActor,
  ): Promise<{ dryRun: boolean; matched: number; requeued: string[]; skipped: { runId: string; code: string }[] }> {
    const values: unknown[] = [];
    const where = whereClause(request.filter, values);
    const [count] = await this.deps.db.query<{ n: string }>(`SELECT count(*) AS n FROM runs WHERE ${where}`, values);
    const matched = Number(count?.n ?? 0);
    if (request.dryRun) return { dryRun: true, matched, requeued: [], skipped: [] };
    values.push(request.limit);
    const ids = await this.deps.db.query<{ id: string }>(
      `SELECT id FROM runs WHERE ${where} ORDER BY finished_at ASC NULLS FIRST, id LIMIT $${values.length}`,
      values,
    );
    const requeued: string[] = [];
    const skipped: { runId: string; code: string }[] = [];
    for (const { id } of ids) {
      try {
        await this.requeue(id, who, request.reason, request.ticket);
        requeued.push(id);
      } catch (err) {
        // One run another operator took, or whose job is still held, does not stop the rest.
        const code = err instanceof OrderlyError ? err.code : 'ORDERLY_E_INTERNAL';
        if (code === 'ORDERLY_E_INTERNAL') this.deps.log.error({ runId: id, err: { message: (err as Error).message } }, 'bulk requeue of one run failed');
        skipped.push({ runId: id, code });
      }
    }
    return { dryRun: false, matched, requeued, skipped };
  }

  /** Discards a dead letter for good: `dead_lettered → discarded`, the reason stored and audited. */
  async discard(runId: string, who: DlqActor, reason: string): Promise<{ runId: string; status: 'discarded'; reason: string }> {
    const before = await this.row(runId);
    const safeReason = this.reasons.redact(reason);
    if (before.status !== 'dead_lettered' || !canTransition(before.status, 'discarded'))
      throw await this.refused('dlq.discard', runId, who, { reason: safeReason }, before.status);
    const moved = await this.deps.db.transaction(async (tx) => {
      const rows = await discardDeadLetter<DlqRow>(tx, runId, safeReason);
      const row = rows[0];
      if (!row) return undefined;
      await this.deps.audit.append(
        {
          actor: who.actor,
          action: 'dlq.discard',
          target: `run:${runId}`,
          outcome: 'success',
          sourceIp: who.sourceIp,
          requestId: who.requestId,
          details: { reason: safeReason, bot: row.bot_name, segment: row.segment, errorCode: before.error?.code ?? null },
        },
        tx,
      );
      return row;
    });
    if (!moved) throw await this.refused('dlq.discard', runId, who, { reason: safeReason }, (await this.row(runId)).status);
    await this.dropDlqEntry(moved.segment, runId);
    this.deps.log.info({ runId, actor: who.actor }, 'dead letter discarded');
    return { runId, status: 'discarded', reason: safeReason };
  }

  /** The `orderly.dlq.<segment>` entry mirrors the database; a failure to drop it is logged, not fatal. */
  private async dropDlqEntry(segment: string, runId: string): Promise<void> {
    await this.deps.queues
      .queue(dlqQueueName(segment))
      .remove(runId)
      .catch((err: Error) => this.deps.log.warn({ runId, err: { message: err.message } }, 'dlq queue entry not removed'));
  }
}
