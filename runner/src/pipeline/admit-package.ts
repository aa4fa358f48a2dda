import { isOrderlyError, JobPayload } from '@orderly/shared';
import type { VerifiedBot } from '../packages/cache';
import { HaltJob, RefuseJob } from './halt-job';
import type { PackagePort } from './ports';

/** Base wait before asking a control room that could not be reached again (with jitter). */
export const RETRY_LATER_MS = 5000;

/** 2.5 to 5 s: a control room that could not be reached is asked again soon, not in step with other runners. */
export function retryLaterMs(random: () => number = Math.random): number {
  return Math.floor(RETRY_LATER_MS * (0.5 + random() / 2));
}

/**
 * Step 2: the package is fetched, verified and admitted before the claim, so a package this
 * runner must not run (tampered, publisher key revoked, no valid release for its channel) starts
 * no attempt: the job is refused and the control room dead-letters the run the verified job
 * names. A control room that cannot be reached puts the job back for a few seconds.
 */
export async function admitPackageStep(payload: JobPayload, deps: { packages: PackagePort; random?: () => number }): Promise<VerifiedBot> {
  try {
    return await deps.packages.get(payload);
  } catch (err) {
    if (isOrderlyError(err) && err.retryable) throw new HaltJob({ kind: 'delay', ms: retryLaterMs(deps.random) });
    if (isOrderlyError(err)) throw new RefuseJob(err.code, err.message, payload.runId);
    throw err;
  }
}
