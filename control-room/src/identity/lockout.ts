/**
 * Brute-force lockout: after `threshold` consecutive failed sign-ins (password, TOTP or recovery
 * code) the username is locked for `baseSeconds`, doubling with every further failure up to
 * `maxSeconds`. Counted per attempted username whether or not it exists, so a locked answer
 * does not reveal which usernames are real.
 */
export interface LockoutPolicy {
  threshold: number;
  baseSeconds: number;
  maxSeconds: number;
}

export const DEFAULT_LOCKOUT: LockoutPolicy = { threshold: 5, baseSeconds: 30, maxSeconds: 3600 };

/** Seconds to lock after `failures` consecutive failures (0: not locked). */
export function lockSeconds(failures: number, policy: LockoutPolicy = DEFAULT_LOCKOUT): number {
  if (failures < policy.threshold) return 0;
  const doublings = Math.min(failures - policy.threshold, 30);
  return Math.min(policy.baseSeconds * 2 ** doublings, policy.maxSeconds);
}
