import { randomBytes } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import { OrderlyError, SegmentName } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { RunnerEvents } from '../audit/runner-events';
import { Queryable } from '../db/db';

/**
 * Fencing of attempts (issue 12). Each claim gives its attempt a random fencing token and a lease;
 * the runner renews the lease while the run is active. The token, with the attempt number, names
 * that one claim: a write that carries any other (a replaced attempt, a requeued run's old claim,
 * a guess) is refused with nothing changed. The lease tells a live attempt (a second claim is a
 * duplicate delivery: refused) from a lost one (its runner stopped renewing: recorded lost).
 */

/** A new fencing token: 144 random bits, URL-safe. */
export const newFence = (): string => randomBytes(18).toString('base64url');

interface AttemptRow {
  segment: string;
  status: string;
  attempts: number;
  fence: string | null;
  finished_at: Date | null;
  claimed: boolean;
}

/**
 * Throws the refusal a write of (`attempt`, `fence`) gets: no run, another segment's run, a run that
 * is not active, or an attempt that is not the current one or holds another token.
 */
export async function assertCurrentAttempt(db: Queryable, runId: string, segment: SegmentName, attempt: number, fence: string): Promise<void> {
  const rows = await db.query<AttemptRow>(
    `SELECT r.segment, r.status, r.attempts, a.fence, a.finished_at, a.run_id IS NOT NULL AS claimed
     FROM runs r LEFT JOIN run_attempts a ON a.run_id = r.id AND a.attempt = $2 WHERE r.id = $1`,
    [runId, attempt],
  );
  const row = rows[0];
  if (!row) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${runId}`);
  if (row.segment !== segment) throw new OrderlyError('ORDERLY_E_FORBIDDEN', `this runner serves ${segment}, not the run's segment`);
  if (row.status !== 'active') throw new OrderlyError('ORDERLY_E_RUN_NOT_CLAIMABLE', `the run is ${row.status}`, { status: row.status });
  if (row.attempts !== attempt || !row.claimed || row.finished_at || row.fence === null || row.fence !== fence) {
    throw new OrderlyError('ORDERLY_E_ATTEMPT_STALE', `attempt ${attempt} with this fencing token is not the run's current claim`, {
      attempt,
      current: row.attempts,
    });
  }
}

/**
 * Extends the lease of the current attempt by its own length, from now. Refused like any fenced
 * write; an attempt whose lease lapsed but that nobody replaced is still current and renews.
 */
export async function renewLease(db: Queryable, runId: string, segment: SegmentName, attempt: number, fence: string): Promise<{ leaseMs: number }> {
  const rows = await db.query<{ lease_ms: number }>(
    `UPDATE run_attempts a SET lease_expires_at = now() + a.lease_ms * interval '1 millisecond'
     FROM runs r
     WHERE a.run_id = r.id AND r.id = $1 AND r.segment = $2 AND r.status = 'active' AND r.attempts = $3
       AND a.attempt = $3 AND a.fence = $4 AND a.finished_at IS NULL AND a.lease_ms IS NOT NULL
     RETURNING a.lease_ms`,
    [runId, segment, attempt, fence],
  );
  if (rows[0]) return { leaseMs: rows[0].lease_ms };
  await assertCurrentAttempt(db, runId, segment, attempt, fence);
  throw new OrderlyError('ORDERLY_E_ATTEMPT_STALE', `attempt ${attempt} has no lease to renew`, { attempt });
}

/**
 * True when `fence` is the token of attempt `attempt` of the run, whatever the run's state now: a
 * finished report of an older attempt (recorded lost, then reported after all) still records that
 * attempt's outcome, but a report with a missing or foreign token records nothing.
 */
export async function fenceHolds(db: Queryable, runId: string, attempt: number, fence: string | undefined): Promise<boolean> {
  if (!fence) return false;
  const rows = await db.query<{ fence: string | null }>('SELECT fence FROM run_attempts WHERE run_id = $1 AND attempt = $2', [runId, attempt]);
  return rows[0]?.fence != null && rows[0].fence === fence;
}

/**
 * Refuses a finished report whose fencing token is not its attempt's: recorded like any refused
 * report (a refusal row, an audit event, a warning), and the run is left as it was.
 */
export async function refuseUnfencedReport(
  deps: { db: Queryable; log: Logger; runnerEvents?: Pick<RunnerEvents, 'jobRefused'> | undefined },
  report: { kind: string; runId: string; attempt: number; runnerId: string; fence?: string | undefined },
): Promise<never> {
  const reason = report.fence
    ? `attempt ${report.attempt}: the fencing token is not its claim's`
    : `attempt ${report.attempt}: the report carries no fencing token`;
  await deps.db.query('INSERT INTO job_refusals (job_id, run_id, runner_id, error_code, reason) VALUES ($1, $2, $3, $4, $5)', [
    `report:${report.kind}`,
    report.runId,
    report.runnerId,
    'ORDERLY_E_ATTEMPT_STALE',
    reason,
  ]);
  deps.log.warn(
    { kind: report.kind, runId: report.runId, attempt: report.attempt, runnerId: report.runnerId, code: 'ORDERLY_E_ATTEMPT_STALE' },
    "report refused: not fenced by its attempt's claim",
  );
  await deps.runnerEvents?.jobRefused({ jobId: `report:${report.kind}`, runId: report.runId, runnerId: report.runnerId, errorCode: 'ORDERLY_E_ATTEMPT_STALE' });
  throw new UnrecoverableError('ORDERLY_E_ATTEMPT_STALE');
}
