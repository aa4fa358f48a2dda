/**
 * The retry policy of run jobs, one for every kind of retryable failure: exponential from 1 s,
 * with jitter, so a burst of failures (a target outage, a runner host lost with many runs) does
 * not retry in lockstep. BullMQ applies it to failed jobs; the claim applies the same formula to
 * an attempt that was lost (a stalled job BullMQ would otherwise put straight back to wait).
 */
export const RUN_BACKOFF = { type: 'exponential', delay: 1000, jitter: 0.5 } as const;

/**
 * The delay before the attempt after `failedAttempts` failures, as BullMQ computes it for
 * `RUN_BACKOFF` (backoffs.js): a random value in [max·(1-jitter), max) with max = 2^(n-1)·delay.
 */
export function backoffDelayMs(failedAttempts: number, random: () => number = Math.random): number {
  const max = 2 ** Math.max(0, failedAttempts - 1) * RUN_BACKOFF.delay;
  return Math.floor(random() * max * RUN_BACKOFF.jitter + max * (1 - RUN_BACKOFF.jitter));
}

/** What a claim does, from the run's attempt counter, whether its latest attempt never finished, and that attempt's lease. */
export type ClaimDecision =
  /** Start attempt `attempt`; `final`: none may follow it. */
  | { kind: 'start'; attempt: number; final: boolean }
  /** The latest attempt was lost with attempts left: record it lost, retry after the backoff. */
  | { kind: 'defer'; lostAttempt: number }
  /** The latest attempt was lost and was the last one: record it lost and dead-letter the run. */
  | { kind: 'exhausted'; lostAttempt: number }
  /** Every attempt finished and none is left: the final report is on its way; nothing to run. */
  | { kind: 'spent' }
  /**
   * The latest attempt is unfinished and its lease is alive: its runner is still renewing it, so
   * this claim is a duplicate delivery (the envelope re-added, or a live job declared stalled).
   * Refused without touching the run; the job asks again when the lease would expire.
   */
  | { kind: 'busy'; activeAttempt: number; retryInMs: number };

/**
 * The attempt accounting of a claim. Attempts are counted by the control room, not by BullMQ:
 * a stalled redelivery (runner SIGKILLed) reuses BullMQ's number but must not reuse the dead
 * attempt's, and must count against the run's attempts, or a crash loop would never end.
 */
export function decideClaim(run: { attempts: number; maxAttempts: number; latestUnfinished: boolean; leaseRemainingMs?: number }): ClaimDecision {
  if (run.attempts > 0 && run.latestUnfinished) {
    // Only an expired (or never renewed) lease makes an unfinished attempt lost.
    if ((run.leaseRemainingMs ?? 0) > 0) return { kind: 'busy', activeAttempt: run.attempts, retryInMs: Math.ceil(run.leaseRemainingMs!) };
    return run.attempts >= run.maxAttempts ? { kind: 'exhausted', lostAttempt: run.attempts } : { kind: 'defer', lostAttempt: run.attempts };
  }
  if (run.attempts >= run.maxAttempts) return { kind: 'spent' };
  const attempt = run.attempts + 1;
  return { kind: 'start', attempt, final: attempt >= run.maxAttempts };
}
