import { ATTEMPT_LEASE_DEFAULT_MS, OrderlyError, reportsQueueName, runQueueName, SegmentName } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { Db } from '../db/db';
import type { DeadLettering } from '../dlq/dead-letter';
import type { DlqQueueEntry } from '../dlq/dead-letter';
import { AtRestCipher } from '../keys/at-rest';
import { backoffDelayMs } from './backoff';
import { backToWaiting } from './outcome';
import { RunQueues, settleWithin } from './queues';

/**
 * The lost-attempt sweep (issue 12): the backstop for an active run whose attempt ended with
 * nothing left to say so. Normally a dead runner's job stalls, BullMQ hands it to another runner,
 * and that claim records the attempt lost (claim.ts). But when the job itself is gone (a Redis
 * failover lost it, or lost the finished report after the runner completed the job), no claim
 * ever comes and the run would stay active forever. The sweep finds attempts whose fencing lease
 * lapsed more than one lease length ago and for which nothing in Redis can still come (no live
 * job, no finished report waiting: see `nothingLeftToCome`), and treats each exactly as a claim would: recorded lost, the run back to waiting with a
 * fresh job after the run's backoff, or dead-lettered when it was the last attempt.
 *
 * It takes the run's row lock and checks again under it, so a claim or a report racing the sweep
 * is serialised with it: the attempt is recorded lost once, and one attempt follows.
 */

export interface LostAttemptSweepDeps {
  db: Db;
  cipher: AtRestCipher;
  queues: RunQueues;
  /** The one way a run becomes dead-lettered. */
  deadLettering: DeadLettering;
  /** Queues a freshly signed job, after `delayMs`, for each of these runs that is waiting. */
  enqueueFresh: (ids: readonly string[], delayMs: number) => Promise<void>;
  log?: Logger | undefined;
}

/** How long queueing the fresh job may take after the commit (Redis down: the enqueue sweep queues it later). */
const QUEUE_TIMEOUT_MS = 2000;

/** Job states (BullMQ's `getJobState`) in which a job will bring nothing more: finished, or no such job. */
const FINISHED_OR_GONE = new Set<string>(['completed', 'failed', 'unknown']);

/** What one sweep did. */
export interface LostAttemptSweepResult {
  retried: number;
  deadLettered: number;
}

/** An unfinished latest attempt counts as lost this long (ms) past its lease: one more lease length (the default for rows without one). */
const LAPSED = `COALESCE(a.lease_expires_at, a.claimed_at) < now() - COALESCE(a.lease_ms, $1::integer) * interval '1 millisecond'`;

export class LostAttemptSweep {
  constructor(private readonly deps: LostAttemptSweepDeps) {}

  async sweep(limit = 100): Promise<LostAttemptSweepResult> {
    const candidates = await this.deps.db.query<{ id: string; segment: string; idempotency_key: string; attempts: number }>(
      `SELECT r.id, r.segment, r.idempotency_key, r.attempts FROM runs r JOIN run_attempts a ON a.run_id = r.id AND a.attempt = r.attempts AND a.finished_at IS NULL
       WHERE r.status = 'active' AND ${LAPSED} ORDER BY r.updated_at LIMIT $2`,
      [ATTEMPT_LEASE_DEFAULT_MS, limit],
    );
    const result: LostAttemptSweepResult = { retried: 0, deadLettered: 0 };
    for (const { id, segment, idempotency_key: key, attempts } of candidates) {
      if (!(await this.nothingLeftToCome(id, segment as SegmentName, key, attempts))) continue;
      const outcome = await this.recover(id);
      if (outcome === 'retried') result.retried++;
      if (outcome === 'dead_lettered') result.deadLettered++;
    }
    return result;
  }

  /**
   * Whether nothing in Redis can still end the attempt: the run's job is gone or finished (a live
   * one, held, waiting or delayed, brings a claim, which records a lost attempt itself; a held one
   * says its runner is alive even if it cannot reach us), and no finished report of the attempt
   * waits in the reports queue (its job id is the attempt's; one retried while the database was
   * away is on its way). Redis unreachable: not known, so the run is left for the next sweep.
   */
  private async nothingLeftToCome(runId: string, segment: SegmentName, idempotencyKey: string, attempt: number): Promise<boolean> {
    let quiet = false;
    const checked = await settleWithin(
      (async () => {
        const job = await this.deps.queues.queue(runQueueName(segment)).getJobState(this.deps.queues.jobIdOf(idempotencyKey));
        if (!FINISHED_OR_GONE.has(job)) return;
        const report = await this.deps.queues.queue(reportsQueueName(segment)).getJobState(`${runId}.${attempt}.finished`);
        quiet = FINISHED_OR_GONE.has(report);
      })(),
      QUEUE_TIMEOUT_MS,
    );
    return checked === 'done' && quiet;
  }

  /** One run: checked again under its row lock, then recorded lost (retry or dead letter), or left alone. */
  private async recover(id: string): Promise<'retried' | 'dead_lettered' | 'untouched'> {
    const decided = await this.deps.db.transaction(async (tx) => {
      const rows = await tx.query<{ attempts: number; max_attempts: number; segment: string; idempotency_key: string; lost: boolean }>(
        `SELECT r.attempts, r.max_attempts, r.segment, r.idempotency_key, a.run_id IS NOT NULL AS lost
         FROM runs r LEFT JOIN run_attempts a ON a.run_id = r.id AND a.attempt = r.attempts AND a.finished_at IS NULL AND ${LAPSED}
         WHERE r.id = $2 AND r.status = 'active' FOR UPDATE OF r`,
        [ATTEMPT_LEASE_DEFAULT_MS, id],
      );
      const row = rows[0];
      // A claim or a report got there first (or the lease was renewed after all).
      if (!row?.lost) return undefined;
      const attempt = row.attempts;
      const error = new OrderlyError('ORDERLY_E_ATTEMPT_LOST', `attempt ${attempt} ended without a report (its lease lapsed and no job is left to claim it)`, {
        attempt,
      }).toJSON();
      if (attempt >= row.max_attempts) {
        const entry: DlqQueueEntry | undefined = await this.deps.deadLettering.within(tx, id, { attempt, error });
        return { kind: 'dead_lettered' as const, attempt, entry };
      }
      await backToWaiting(tx, this.deps.cipher, id, { attempt, error });
      // "Needs a job": if this process stops before the job below is added, the enqueue sweep adds it.
      await tx.query(`UPDATE runs SET enqueued_at = NULL WHERE id = $1 AND status = 'waiting'`, [id]);
      return { kind: 'retried' as const, attempt, segment: row.segment as SegmentName, jobId: this.deps.queues.jobIdOf(row.idempotency_key) };
    });
    if (!decided) return 'untouched';
    if (decided.kind === 'dead_lettered') {
      this.deps.log?.warn(
        { runId: id, attempt: decided.attempt, code: 'ORDERLY_E_ATTEMPT_LOST' },
        'attempt lost with no report; it was the last: dead-lettered',
      );
      await this.deps.deadLettering.publish(decided.entry);
      return 'dead_lettered';
    }
    const delayMs = backoffDelayMs(decided.attempt);
    this.deps.log?.warn(
      { runId: id, attempt: decided.attempt, code: 'ORDERLY_E_ATTEMPT_LOST', retryInMs: delayMs },
      'attempt lost with no report; the run is retried after the backoff',
    );
    // A finished job under the run's id would make the add a no-op. One a runner still holds
    // (its dead runner's lock not yet lapsed) is left: BullMQ redelivers it and it claims the
    // waiting run; the enqueue sweep queues the run should that job finish instead.
    // Bounded: with Redis down the client would hold these commands; the run is recorded either way.
    const queued = await settleWithin(
      (async () => {
        if ((await this.deps.queues.removeFinished(decided.segment, decided.jobId)) !== 'held') await this.deps.enqueueFresh([id], delayMs);
      })(),
      QUEUE_TIMEOUT_MS,
    );
    if (queued !== 'done')
      this.deps.log?.warn({ runId: id, outcome: queued }, 'lost attempt recorded; its fresh job is not queued yet (the enqueue sweep queues it)');
    return 'retried';
  }
}
