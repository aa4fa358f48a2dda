import { classifyFailure, toOrderlyError, type Failure, type OperationInfo } from './failures';

export interface RetryClock {
  now(): number;
  sleep(ms: number): Promise<void>;
  /** In [0, 1). */
  random(): number;
}

export const systemClock: RetryClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: () => Math.random(),
};

export interface RetryPolicy {
  /** First delay; doubled per attempt. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Cap for one attempt; the remaining budget caps it further. */
  requestTimeoutMs: number;
}

/** Reported before each retry so the caller can log it; this module logs nothing. */
export interface VaultRetryEvent extends OperationInfo {
  attempt: number;
  delayMs: number;
  reason: string;
}

export interface RetryRun extends OperationInfo {
  /** Whether repeating the request after an ambiguous failure is harmless. */
  idempotent: boolean;
  /** Absolute deadline on `clock.now()`. */
  deadline: number;
}

/**
 * Exponential backoff with "equal jitter": half the capped exponential delay plus a random
 * share of the other half, so retries from many runners spread out but never hammer at zero
 * delay. A retry is only started if its delay ends before the deadline; every attempt's
 * timeout is cut to what is left, so the whole call ends by the deadline (plus one event-loop
 * turn), however Vault misbehaves.
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: number): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(cap / 2 + (cap / 2) * random);
}

function describe(failure: Failure): string {
  return failure.status !== undefined ? `status ${failure.status}` : (failure.network ?? 'error');
}

/** The shortest time an announced retry gets, however late its backoff timer fired. */
const MIN_RETRY_TIMEOUT_MS = 25;

/** Runs `attempt` until it succeeds, fails for good, or the deadline leaves no room. */
export async function withRetry<T>(
  run: RetryRun,
  policy: RetryPolicy,
  clock: RetryClock,
  attempt: (timeoutMs: number) => Promise<T>,
  onRetry?: (event: VaultRetryEvent) => void,
): Promise<T> {
  const info: OperationInfo = { operation: run.operation, path: run.path };
  let last: Failure | undefined;
  for (let n = 1; ; n += 1) {
    const remaining = run.deadline - clock.now();
    // A retry that was announced is made, even when the backoff's timer ran late (a loaded
    // machine) and left less than the deadline promised: announced retries and attempts agree.
    if (remaining <= 0 && n === 1) {
      throw toOrderlyError(last ?? { kind: 'unavailable', retry: 'unprocessed', network: 'ETIMEDOUT', vaultErrors: [] }, info, n - 1, 'deadline reached');
    }
    try {
      return await attempt(Math.max(n === 1 ? 1 : MIN_RETRY_TIMEOUT_MS, Math.min(policy.requestTimeoutMs, remaining)));
    } catch (error) {
      const failure = classifyFailure(error);
      last = failure;
      if (failure.retry === 'never') throw toOrderlyError(failure, info, n);
      if (failure.retry === 'ambiguous' && !run.idempotent) {
        // Vault may have acted (consumed a secret ID, rotated a key): repeating could do it twice.
        throw toOrderlyError(failure, info, n, 'not retried: the operation is not idempotent and Vault may have acted');
      }
      const delayMs = backoffDelay(n, policy, clock.random());
      if (clock.now() + delayMs >= run.deadline) throw toOrderlyError(failure, info, n, 'deadline reached');
      onRetry?.({ ...info, attempt: n, delayMs, reason: describe(failure) });
      await clock.sleep(delayMs);
    }
  }
}
