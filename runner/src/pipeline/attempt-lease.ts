import { isOrderlyError, OrderlyError } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { ControlRoomClient } from '../control-room-client';

/**
 * The runner's side of attempt fencing (issue 12). A claim gives the attempt a fencing token and
 * a lease; while the bot runs, the runner renews the lease every third of its length, so a second
 * claim of the run (a duplicate delivery) is refused instead of counting this attempt as lost.
 * When the control room says the attempt is no longer the current claim, or the run is no longer
 * active, the bot is stopped: nothing it could still do would be recorded.
 */
export interface AttemptLeaseOptions {
  client: Pick<ControlRoomClient, 'renew'>;
  runId: string;
  attempt: number;
  fence: string;
  leaseMs: number;
  log: Logger;
  /** Called once when the attempt was fenced off (`ORDERLY_E_ATTEMPT_STALE`) or the run ended. */
  onLost: (code: string) => void;
}

/** Renews the attempt's lease until `stop()`; a renewal that fails for an outage is tried again at the next tick. */
export function keepAttemptLease(options: AttemptLeaseOptions): { stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const every = Math.max(100, Math.floor(options.leaseMs / 3));
  const tick = async () => {
    try {
      await options.client.renew(options.runId, options.attempt, options.fence);
    } catch (err) {
      const code = isOrderlyError(err) ? err.code : 'ORDERLY_E_INTERNAL';
      if (!stopped && (code === 'ORDERLY_E_ATTEMPT_STALE' || code === 'ORDERLY_E_RUN_NOT_CLAIMABLE')) {
        stopped = true;
        options.log.warn({ code }, 'attempt lease lost: another claim replaced this attempt or the run ended; stopping the bot');
        options.onLost(code);
        return;
      }
      options.log.warn({ code }, 'attempt lease not renewed; trying again');
    }
    if (!stopped) timer = setTimeout(() => void tick(), every);
  };
  timer = setTimeout(() => void tick(), every);
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** Bounds of the wait before a refused duplicate claim asks again. */
const REFUSED_RETRY_MIN_MS = 500;
const REFUSED_RETRY_MAX_MS = 10 * 60_000;

/**
 * How long a job whose claim was refused with `ORDERLY_E_RUN_ALREADY_ACTIVE` waits before asking
 * again: until the live attempt's lease would expire (it may have died meanwhile), plus a little
 * jitter so that duplicates do not ask in step. The control room's `retryInMs` says when.
 */
export function refusedClaimDelayMs(err: OrderlyError, fallbackMs: number, random: () => number = Math.random): number {
  const said = err.details.retryInMs;
  const base = typeof said === 'number' && Number.isFinite(said) ? said : fallbackMs;
  const withJitter = base + 100 + Math.floor(random() * Math.min(1000, base / 10));
  return Math.min(REFUSED_RETRY_MAX_MS, Math.max(REFUSED_RETRY_MIN_MS, withJitter));
}
