import { canonicalJson, createRedactor, RunFlag } from '@orderly/shared';

/** A bot's result as it may leave the runner, with the flags it raised. */
export interface ResultLeaving {
  result: unknown;
  flags?: RunFlag[];
}

/**
 * The result passes the run's secret values before it leaves (invariant 4): a leased secret
 * (or an encoded variant of one) in it is masked and the run is flagged `secret_in_result`, for
 * a security look. Only secrets: a result legitimately holds PHI (it is what the run was for)
 * and is sealed end to end, so the PHI and pattern layers are not applied to it. Fails closed: a
 * result that cannot be redacted (nested too deeply) leaves as null, flagged.
 */
export function resultLeavingRun(result: unknown, secrets: Readonly<Record<string, string>> | undefined, warn: (msg: string) => void): ResultLeaving {
  const values = Object.values(secrets ?? {});
  if (values.length === 0 || result === undefined) return { result };
  let masked: unknown;
  try {
    masked = createRedactor({ secrets: values, patterns: false }).redactValue(result);
  } catch {
    warn('the result could not be checked for leased secrets; it was dropped');
    return { result: null, flags: ['secret_in_result'] };
  }
  if (canonicalJson(masked) === canonicalJson(result)) return { result };
  warn('a leased secret was masked out of the result; the run is flagged secret_in_result');
  return { result: masked, flags: ['secret_in_result'] };
}
