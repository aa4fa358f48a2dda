import { z } from 'zod';
import { OrderlyError, SegmentName, STEP_RESULT_MAX_BYTES, StepBeginResponse } from '@orderly/shared';
import { Db } from '../db/db';
import { AtRestBox, AtRestCipher } from '../keys/at-rest';

/** Binds a sealed step result to its run and step: copied onto another row, it does not open. */
export const stepAad = (runId: string, name: string) => `run-step:${runId}:${name}`;

/** A step's recorded result, sealed as `{ value }` so that "returned nothing" survives the round trip. */
const SealedStepValue = z.object({ value: z.unknown().optional() });

interface StepRow {
  status: 'started' | 'done';
  attempt: number;
  started_at: Date;
  result_sealed: AtRestBox | null;
}

/** Where a step stands for the asking attempt. */
export type StepStanding = 'absent' | 'done' | 'ours' | 'uncertain';

/**
 * The step state machine, from the asking attempt's point of view. A step started by this very
 * attempt (same number, started after this attempt was claimed) is its own; started by any
 * other attempt and never recorded done it is uncertain: that attempt died somewhere between
 * starting the side effect and recording it, so it may or may not have happened. Comparing the
 * claim time, not only the number, keeps this right for a run requeued with attempts reset.
 */
export function stepStanding(
  step: Pick<StepRow, 'status' | 'attempt' | 'started_at'> | undefined,
  attempt: { attempt: number; claimedAt: Date },
): StepStanding {
  if (!step) return 'absent';
  if (step.status === 'done') return 'done';
  return step.attempt === attempt.attempt && step.started_at.getTime() >= attempt.claimedAt.getTime() ? 'ours' : 'uncertain';
}

interface CurrentRow {
  segment: string;
  status: string;
  attempts: number;
  claimed_at: Date | null;
  finished_at: Date | null;
  fence: string | null;
  step_status: StepRow['status'] | null;
  step_attempt: number | null;
  step_started_at: Date | null;
  result_sealed: AtRestBox | null;
}

/**
 * Step checkpoints (invariant 6). A bot's `ctx.step(name, fn)` begins the step here before it
 * runs `fn` and completes it after; a completed step is never run again, its recorded result is
 * returned instead. Only the run's current attempt, of an active run of the runner's own
 * segment, may begin or complete a step: a runner that lost its attempt (stalled, replaced)
 * cannot record anything for the attempt that replaced it. Results are sealed at rest.
 */
export class RunSteps {
  constructor(
    private readonly db: Db,
    private readonly cipher: AtRestCipher,
  ) {}

  /** One round trip: the run, the asking attempt and the step, checked for the asking runner. */
  private async current(
    runId: string,
    segment: SegmentName,
    attempt: number,
    fence: string,
    name: string,
  ): Promise<{ step: StepRow | undefined; claimedAt: Date }> {
    const rows = await this.db.query<CurrentRow>(
      `SELECT r.segment, r.status, r.attempts, a.claimed_at, a.finished_at, a.fence,
              s.status AS step_status, s.attempt AS step_attempt, s.started_at AS step_started_at, s.result_sealed
       FROM runs r
       LEFT JOIN run_attempts a ON a.run_id = r.id AND a.attempt = $2
       LEFT JOIN run_steps s ON s.run_id = r.id AND s.name = $3
       WHERE r.id = $1`,
      [runId, attempt, name],
    );
    const row = rows[0];
    if (!row) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${runId}`);
    if (row.segment !== segment) throw new OrderlyError('ORDERLY_E_FORBIDDEN', `this runner serves ${segment}, not the run's segment`);
    if (row.status !== 'active')
      throw new OrderlyError('ORDERLY_E_RUN_NOT_CLAIMABLE', `steps are recorded for active runs only; the run is ${row.status}`, { status: row.status });
    if (row.attempts !== attempt || !row.claimed_at || row.finished_at) {
      throw new OrderlyError('ORDERLY_E_ATTEMPT_STALE', `attempt ${attempt} is not the run's current attempt`, { attempt, current: row.attempts });
    }
    // The number alone is not enough: the same number may have been claimed again (a requeued run).
    if (row.fence === null || row.fence !== fence) {
      throw new OrderlyError('ORDERLY_E_ATTEMPT_STALE', `attempt ${attempt}: the fencing token is not the current claim's`, { attempt, current: row.attempts });
    }
    const step = row.step_status
      ? { status: row.step_status, attempt: row.step_attempt!, started_at: row.step_started_at!, result_sealed: row.result_sealed }
      : undefined;
    return { step, claimedAt: row.claimed_at };
  }

  /**
   * Begins step `name` for `attempt`: `new` (run it), `done` (skip it, here is its result) or
   * `uncertain` (an earlier attempt started it and never finished). With `rerun`, an uncertain
   * step is taken over by this attempt and answered `new`: the bot's policy chose to run it again.
   */
  async begin(runId: string, segment: SegmentName, attempt: number, fence: string, name: string, rerun: boolean): Promise<StepBeginResponse> {
    const { step, claimedAt } = await this.current(runId, segment, attempt, fence, name);
    switch (stepStanding(step, { attempt, claimedAt })) {
      case 'done': {
        if (!step?.result_sealed) return { state: 'done' };
        const opened = SealedStepValue.parse(await this.cipher.open(step.result_sealed, stepAad(runId, name)));
        return opened.value === undefined ? { state: 'done' } : { state: 'done', result: opened.value };
      }
      case 'ours':
        return { state: 'new' }; // this attempt's own begin, repeated (its first answer was lost)
      case 'uncertain': {
        if (!rerun) return { state: 'uncertain' };
        const taken = await this.db.query(
          `UPDATE run_steps SET attempt = $3, started_at = now() WHERE run_id = $1 AND name = $2 AND status = 'started' RETURNING name`,
          [runId, name, attempt],
        );
        if (taken.length === 0) return this.begin(runId, segment, attempt, fence, name, rerun); // recorded done meanwhile
        return { state: 'new' };
      }
      case 'absent': {
        const inserted = await this.db.query(
          `INSERT INTO run_steps (run_id, name, attempt, status) VALUES ($1, $2, $3, 'started') ON CONFLICT (run_id, name) DO NOTHING RETURNING name`,
          [runId, name, attempt],
        );
        // Lost a race with another writer (only a replaced attempt could be one): ask again.
        if (inserted.length === 0) return this.begin(runId, segment, attempt, fence, name, rerun);
        return { state: 'new' };
      }
    }
  }

  /** Records step `name`, begun by `attempt`, done with its result (JSON, at most 64 KiB). */
  async complete(runId: string, segment: SegmentName, attempt: number, fence: string, name: string, result: unknown): Promise<void> {
    const text = result === undefined ? undefined : JSON.stringify(result);
    if (text !== undefined && Buffer.byteLength(text) > STEP_RESULT_MAX_BYTES) {
      throw new OrderlyError('ORDERLY_E_STEP_INVALID', `the result of step ${name} is over ${STEP_RESULT_MAX_BYTES} bytes`, { step: name });
    }
    const { step, claimedAt } = await this.current(runId, segment, attempt, fence, name);
    const standing = stepStanding(step, { attempt, claimedAt });
    if (standing === 'done' && step?.attempt === attempt) return; // repeated complete: already recorded
    if (standing !== 'ours') throw new OrderlyError('ORDERLY_E_STEP_INVALID', `step ${name} was not begun by attempt ${attempt}`, { step: name, attempt });
    const sealed = await this.cipher.seal(text === undefined ? {} : { value: JSON.parse(text) as unknown }, stepAad(runId, name));
    const rows = await this.db.query(
      `UPDATE run_steps SET status = 'done', result_sealed = $4, done_at = now() WHERE run_id = $1 AND name = $2 AND attempt = $3 AND status = 'started' RETURNING name`,
      [runId, name, attempt, JSON.stringify(sealed)],
    );
    if (rows.length === 0) throw new OrderlyError('ORDERLY_E_ATTEMPT_STALE', `step ${name} was taken over by another attempt`, { step: name, attempt });
  }
}
