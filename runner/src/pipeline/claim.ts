import { ClaimAnswer, ClaimResponse, isOrderlyError, JobPayload, OrderlyError } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { retryLaterMs } from './admit-package';
import { refusedClaimDelayMs } from './attempt-lease';
import { HaltJob } from './halt-job';
import type { ControlRoomPort } from './ports';

export interface ClaimDeps {
  client: Pick<ControlRoomPort, 'claim'>;
  runnerId: string;
  /** The attempt lease asked for (undefined: the control room's default, 30 s). */
  attemptLeaseMs?: number | undefined;
  log: Logger;
  random?: () => number;
}

/**
 * Step 3: claims the run for a new attempt (numbered by the control room, with its fencing token
 * and lease). When the control room says the previous attempt was lost (its runner died; BullMQ
 * redelivered the stalled job at once), the job waits out the run's backoff first, like any other
 * retried failure. Halts the job when the run is not to be run now: finished, cancelled or
 * dead-lettered (done), another attempt alive (delay), control room unreachable (delay), refused (drop).
 */
export async function claimStep(payload: JobPayload, deps: ClaimDeps): Promise<ClaimResponse> {
  let answer: ClaimAnswer;
  try {
    answer = await deps.client.claim(payload.runId, deps.runnerId, deps.attemptLeaseMs);
  } catch (err) {
    const code = isOrderlyError(err) ? err.code : 'ORDERLY_E_INTERNAL';
    if (code === 'ORDERLY_E_RUN_NOT_CLAIMABLE') {
      deps.log.info({ runId: payload.runId }, 'run no longer claimable (finished, cancelled or dead-lettered); not run');
      throw new HaltJob({ kind: 'done', ok: false });
    }
    // Another attempt of the run is alive (a duplicate delivery): refused, recorded by the
    // control room; this job asks again when that attempt's lease would expire.
    if (code === 'ORDERLY_E_RUN_ALREADY_ACTIVE') {
      deps.log.warn(
        { runId: payload.runId, code, activeAttempt: (err as OrderlyError).details.activeAttempt },
        'claim refused: another attempt of this run is alive; not run now',
      );
      throw new HaltJob({ kind: 'delay', ms: refusedClaimDelayMs(err as OrderlyError, deps.attemptLeaseMs ?? 30_000, deps.random) });
    }
    // No attempt was started: a control room that cannot be reached is asked again later.
    if (isOrderlyError(err) && err.retryable) {
      deps.log.warn({ runId: payload.runId, code }, 'claim failed; asking again later');
      throw new HaltJob({ kind: 'delay', ms: retryLaterMs(deps.random) });
    }
    deps.log.warn({ runId: payload.runId, code }, 'claim refused; the job is dropped');
    throw new HaltJob({ kind: 'drop', code });
  }
  if ('retryInMs' in answer) {
    deps.log.warn(
      { runId: payload.runId, lostAttempt: answer.lostAttempt, retryInMs: answer.retryInMs },
      'previous attempt was lost; retrying after the backoff',
    );
    throw new HaltJob({ kind: 'delay', ms: answer.retryInMs });
  }
  return answer;
}
