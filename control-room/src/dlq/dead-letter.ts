import { z } from 'zod';
import type { Logger } from '@orderly/shared';
import type { AlertOutbox } from '../alerts/outbox';
import { Db, Queryable } from '../db/db';
import { AtRestCipher } from '../keys/at-rest';
import { AttemptOutcome, moveToDeadLetters } from '../runs/outcome';
import { dlqQueueName, RunQueues, settleWithin } from '../runs/queues';

/**
 * The entry a dead-lettered run leaves on `orderly.dlq.<segment>` (BullMQ job name `dead-letter`,
 * job id the run id). Versioned: a consumer of the queue checks `v`. Ids, names, codes and counts
 * only, never PHI.
 */
export const DlqQueueEntry = z.strictObject({
  v: z.literal(1),
  runId: z.uuid(),
  bot: z.string().min(1),
  segment: z.string().min(1),
  errorCode: z.string().nullable(),
  attempts: z.number().int().min(0),
  deadLetteredAt: z.iso.datetime({ offset: true }),
});
export type DlqQueueEntry = z.infer<typeof DlqQueueEntry>;

export const DLQ_JOB_NAME = 'dead-letter';
/** How long adding the queue entry may take after commit before it is given up (Redis down). */
export const DLQ_PUBLISH_TIMEOUT_MS = 2000;

export interface DeadLetteringDeps {
  db: Db;
  queues: RunQueues;
  cipher: AtRestCipher;
  /** The alert outbox: the alert is a row written in the transaction that dead-letters the run. */
  alerts: Pick<AlertOutbox, 'deadLettered'>;
  log: Logger;
  publishTimeoutMs?: number;
}

/** Why a run is dead-lettered: the attempt that ended and its error (a failed report may carry none). */
export type DeadLetterCause = AttemptOutcome;

/**
 * The one way a run becomes dead-lettered (a source test checks that nothing else moves a run
 * there). In one transaction: the run's state (along the transition table, so a run already
 * finished is not moved), the attempt's outcome and the `run.dead_lettered` alert in the outbox.
 * After commit, the `orderly.dlq.<segment>` entry, which mirrors the database for operators'
 * tools; its add is bounded in time, and a failure is logged: the database stays the truth
 * (`GET /v1/dlq` reads it).
 */
export class DeadLettering {
  constructor(private readonly deps: DeadLetteringDeps) {}

  /**
   * Dead-letters the run inside `tx` (the caller's transaction, e.g. the claim's, which holds the
   * run's row lock). Returns the queue entry to `publish` after commit, or undefined when the run
   * was not in a state that allows it (nothing was written).
   */
  async within(tx: Queryable, runId: string, cause: DeadLetterCause): Promise<DlqQueueEntry | undefined> {
    const moved = await moveToDeadLetters(tx, this.deps.cipher, runId, cause);
    if (moved?.status !== 'dead_lettered') return undefined;
    await this.deps.alerts.deadLettered(tx, runId, cause.error?.code ?? null);
    // Unpublished until `publish` has added the entry (a run dead-lettered again after a requeue too).
    const [run] = await tx.query<{ bot_name: string; attempts: number; finished_at: Date }>(
      'UPDATE runs SET dlq_published_at = NULL WHERE id = $1 RETURNING bot_name, attempts, finished_at',
      [runId],
    );
    return DlqQueueEntry.parse({
      v: 1,
      runId,
      bot: run!.bot_name,
      segment: moved.segment,
      errorCode: cause.error?.code ?? null,
      attempts: run!.attempts,
      deadLetteredAt: run!.finished_at.toISOString(),
    });
  }

  /**
   * Adds the entry to `orderly.dlq.<segment>` (after the commit that wrote it) and records that it
   * went out. Never throws: an entry not added is left for `publishPending`. Answers whether the
   * entry was added.
   */
  async publish(entry: DlqQueueEntry | undefined): Promise<boolean> {
    if (!entry) return false;
    const added = this.deps.queues.queue(dlqQueueName(entry.segment)).add(DLQ_JOB_NAME, DlqQueueEntry.parse(entry), { jobId: entry.runId });
    const outcome = await settleWithin(added, this.deps.publishTimeoutMs ?? DLQ_PUBLISH_TIMEOUT_MS);
    if (outcome !== 'done') {
      this.deps.log.warn(
        { runId: entry.runId, segment: entry.segment, outcome },
        'dead letter recorded; its dlq queue entry is not added yet (the sweep retries)',
      );
      return false;
    }
    // Only while the run is still a dead letter: one requeued meanwhile keeps no entry.
    await this.deps.db
      .query("UPDATE runs SET dlq_published_at = now() WHERE id = $1 AND status = 'dead_lettered' AND dlq_published_at IS NULL", [entry.runId])
      .catch((err: Error) =>
        this.deps.log.warn(
          { runId: entry.runId, err: { message: err.message } },
          'dlq entry added; not yet recorded as added (the sweep adds it again, a no-op)',
        ),
      );
    return true;
  }

  /**
   * The entries of dead letters older than `olderThanMs` that did not go out (Redis was down
   * after the commit, or the control room stopped between the two), added now (the enqueue
   * sweep calls it). Returns how many were added.
   */
  async publishPending(olderThanMs = 5000, limit = 500): Promise<number> {
    const rows = await this.deps.db.query<{ id: string; bot_name: string; segment: string; error_code: string | null; attempts: number; finished_at: Date }>(
      `SELECT id, bot_name, segment, error->>'code' AS error_code, attempts, finished_at FROM runs
       WHERE status = 'dead_lettered' AND dlq_published_at IS NULL AND finished_at < now() - make_interval(secs => $1::double precision / 1000)
       ORDER BY finished_at LIMIT $2`,
      [olderThanMs, limit],
    );
    let added = 0;
    for (const row of rows) {
      const entry = DlqQueueEntry.parse({
        v: 1,
        runId: row.id,
        bot: row.bot_name,
        segment: row.segment,
        errorCode: row.error_code,
        attempts: row.attempts,
        deadLetteredAt: row.finished_at.toISOString(),
      });
      if (!(await this.publish(entry))) break; // Redis still down: the next sweep tries again
      added++;
    }
    return added;
  }

  /** Dead-letters the run in a transaction of its own (with `alsoInTx`, e.g. the report's log lines), then publishes. */
  async deadLetter(runId: string, cause: DeadLetterCause, alsoInTx?: (tx: Queryable) => Promise<void>): Promise<DlqQueueEntry | undefined> {
    const entry = await this.deps.db.transaction(async (tx) => {
      await alsoInTx?.(tx);
      return this.within(tx, runId, cause);
    });
    await this.publish(entry);
    return entry;
  }
}
