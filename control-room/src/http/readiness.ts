/**
 * Readiness (`GET /readyz`): each dependency is asked once, in parallel, and each answer is bounded,
 * so a dependency that hangs (a partitioned network, a Redis client queueing commands while it
 * reconnects) reads as down within the bound instead of holding the probe open.
 */
export const READINESS_CHECK_TIMEOUT_MS = 2000;

export type CheckState = 'ok' | 'down';

/** `ok` if `check` resolves within `timeoutMs`; `down` if it rejects, throws or takes longer. */
export async function boundedCheck(check: () => Promise<unknown>, timeoutMs = READINESS_CHECK_TIMEOUT_MS): Promise<CheckState> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<CheckState>((resolve) => {
    timer = setTimeout(() => resolve('down'), timeoutMs);
  });
  try {
    const answer = Promise.resolve()
      .then(check)
      .then(
        (): CheckState => 'ok',
        (): CheckState => 'down',
      );
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface Readiness {
  ready: boolean;
  checks: Record<string, CheckState>;
}

/** Runs every named check at once, each bounded; ready only if all are `ok`. */
export async function checkReadiness(checks: Record<string, () => Promise<unknown>>, timeoutMs = READINESS_CHECK_TIMEOUT_MS): Promise<Readiness> {
  const names = Object.keys(checks);
  const states = await Promise.all(names.map((name) => boundedCheck(checks[name]!, timeoutMs)));
  const result = Object.fromEntries(names.map((name, i) => [name, states[i]!])) as Record<string, CheckState>;
  return { ready: states.every((s) => s === 'ok'), checks: result };
}
