import { canTransition, ErrorBody, RUN_STATUSES, RunStatus, SegmentName } from '@orderly/shared';
import { Queryable } from '../db/db';
import { AtRestCipher } from '../keys/at-rest';
import { resultAad, RunRow } from './repository';

/**
 * Outcomes: the only module that writes a run's status (a source test checks it). Each move goes
 * only along the transition table. Dead-lettering is one of them, but only `dlq/dead-letter.ts`
 * calls it: that is the one way a run becomes dead-lettered (with its DLQ entry and alert).
 */

/** States a run may move to `to` from, straight from the transition table. */
const fromStates = (to: RunStatus): RunStatus[] => RUN_STATUSES.filter((s) => canTransition(s, to));

/** What an attempt's end records. */
export interface AttemptOutcome {
  attempt: number;
  result?: unknown;
  error?: ErrorBody;
  flags?: readonly string[];
}

export type Moved = { status: RunStatus; segment: SegmentName } | undefined;

/** A claim starts attempt `attempt`: the run is active (the caller holds the row lock and checked the state). */
export async function startAttempt(tx: Queryable, id: string, attempt: number): Promise<void> {
  await tx.query(`UPDATE runs SET status = 'active', attempts = $2, started_at = COALESCE(started_at, now()), updated_at = now() WHERE id = $1`, [id, attempt]);
}

/**
 * Records the end of an attempt and moves the run to `status`. A late or repeated report cannot
 * move a finished run. The report of an attempt that a newer one replaced (recorded lost, then
 * reported after all) moves nothing: the attempt keeps the outcome recorded first (its row is
 * written only while unfinished), and the run keeps the newer attempt's state; the report itself
 * is recorded by the caller (its logs, the `run.result` audit event with `applied: false`).
 */
async function move(tx: Queryable, cipher: AtRestCipher, id: string, status: RunStatus, outcome: AttemptOutcome): Promise<Moved> {
  const terminal = status !== 'waiting';
  const sealedResult = outcome.result === undefined ? null : JSON.stringify(await cipher.seal(outcome.result, resultAad(id)));
  // The runner revokes its token before it reports: the attempt's lease is over either way.
  await tx.query('UPDATE run_leases SET released_at = now() WHERE run_id = $1 AND attempt = $2 AND released_at IS NULL', [id, outcome.attempt]);
  // `finished_at IS NULL`: an attempt already finished (recorded lost, or reported before) keeps what it has.
  await tx.query('UPDATE run_attempts SET finished_at = now(), outcome = $3, error = $4 WHERE run_id = $1 AND attempt = $2 AND finished_at IS NULL', [
    id,
    outcome.attempt,
    status === 'succeeded' ? 'succeeded' : 'failed',
    outcome.error ? JSON.stringify(outcome.error) : null,
  ]);
  const rows = await tx.query<RunRow>(
    `UPDATE runs SET status = $2, result_sealed = $3, error = $4, attempts = GREATEST(attempts, $5), updated_at = now(),
       finished_at = CASE WHEN $6 THEN now() ELSE NULL END,
       flags = ARRAY(SELECT DISTINCT f FROM unnest(flags || $8::text[]) AS f ORDER BY f)
     WHERE id = $1 AND status = ANY($7) AND attempts <= $5 RETURNING status, segment`,
    [id, status, sealedResult, outcome.error ? JSON.stringify(outcome.error) : null, outcome.attempt, terminal, fromStates(status), [...(outcome.flags ?? [])]],
  );
  return rows[0] ? { status: rows[0].status, segment: rows[0].segment as SegmentName } : undefined;
}

/** An attempt ended for good: the run succeeded, or failed (a business failure on its last attempt). */
export function finishRun(tx: Queryable, cipher: AtRestCipher, id: string, status: 'succeeded' | 'failed', outcome: AttemptOutcome): Promise<Moved> {
  return move(tx, cipher, id, status, outcome);
}

/** An attempt failed (or was lost) with attempts left: the run goes back to waiting for the next one. */
export function backToWaiting(tx: Queryable, cipher: AtRestCipher, id: string, outcome: AttemptOutcome): Promise<Moved> {
  return move(tx, cipher, id, 'waiting', outcome);
}

/** Moves the run to the dead letters. Call `DeadLettering` (dlq/dead-letter.ts) instead: it alone calls this. */
export function moveToDeadLetters(tx: Queryable, cipher: AtRestCipher, id: string, outcome: AttemptOutcome): Promise<Moved> {
  return move(tx, cipher, id, 'dead_lettered', outcome);
}

/**
 * An operator requeues a dead letter: `dead_lettered → waiting` with a fresh attempt budget (the
 * manifest's attempts again, numbered on from the last one, so the history is kept). Of two
 * concurrent requeues the conditional UPDATE lets one win.
 */
export function requeueDeadLetter<T extends object>(tx: Queryable, id: string): Promise<T[]> {
  return tx.query<T>(
    `UPDATE runs SET status = 'waiting', enqueued_at = NULL, finished_at = NULL, requeues = requeues + 1, updated_at = now(),
       max_attempts = attempts + (SELECT (p.manifest->>'attempts')::int FROM packages p WHERE p.digest = runs.digest)
     WHERE id = $1 AND status = 'dead_lettered' RETURNING *`,
    [id],
  );
}

/** An operator discards a dead letter for good: `dead_lettered → discarded`, with the reason. */
export function discardDeadLetter<T extends object>(tx: Queryable, id: string, reason: string): Promise<T[]> {
  return tx.query<T>(`UPDATE runs SET status = 'discarded', discard_reason = $2, updated_at = now() WHERE id = $1 AND status = 'dead_lettered' RETURNING *`, [
    id,
    reason,
  ]);
}

const CANCELLABLE_FROM: RunStatus[] = fromStates('cancelled');

/** Cancels a waiting or active run; answers nothing when the run is in another state (or missing). */
export function cancelRun(q: Queryable, id: string): Promise<{ previous: RunStatus; segment: string; idempotency_key: string }[]> {
  return q.query<{ previous: RunStatus; segment: string; idempotency_key: string }>(
    `WITH prev AS (SELECT id, status FROM runs WHERE id = $1 FOR UPDATE)
     UPDATE runs r SET status = 'cancelled', finished_at = now(), updated_at = now()
     FROM prev WHERE r.id = prev.id AND prev.status = ANY($2)
     RETURNING prev.status AS previous, r.segment, r.idempotency_key`,
    [id, CANCELLABLE_FROM],
  );
}
