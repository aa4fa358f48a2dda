import { isOrderlyError } from '@orderly/shared';
import type { Logger } from '@orderly/shared';

/**
 * Step completions survive an outage (issue 12). Once a step's side effect happened, the record
 * that it did is the one write that must not be lost: a completion that fails for a transient
 * reason (control room unreachable, database away: a retryable code) is sent again with
 * exponential backoff and jitter until `deadline` (the run's own time). The control room treats
 * a repeated completion of the same attempt as a no-op, so a completion whose answer was lost is
 * safe to repeat. Only a crash, or an outage longer than the run's time, leaves a step uncertain.
 * Refusals (stale attempt, invalid result) are not retried: repeating them cannot succeed.
 */
export async function completeDurably(
  complete: () => Promise<void>,
  options: { deadline: number; log: Logger; step: string; firstDelayMs?: number; maxDelayMs?: number; random?: () => number },
): Promise<void> {
  const random = options.random ?? Math.random;
  let delay = options.firstDelayMs ?? 200;
  for (let tries = 1; ; tries++) {
    try {
      await complete();
      if (tries > 1) options.log.info({ step: options.step, tries }, 'step completion recorded after retries');
      return;
    } catch (err) {
      const retryable = isOrderlyError(err) && err.retryable;
      const wait = Math.floor(delay * (0.5 + random() / 2));
      if (!retryable || Date.now() + wait >= options.deadline) throw err;
      options.log.warn({ step: options.step, code: err.code, tries, retryInMs: wait }, 'step completion not recorded; retrying');
      await new Promise((resolve) => setTimeout(resolve, wait));
      delay = Math.min(delay * 2, options.maxDelayMs ?? 5000);
    }
  }
}
