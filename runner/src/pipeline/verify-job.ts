import type { KeyObject } from 'node:crypto';
import { isOrderlyError, JobPayload, SegmentName, verifyJob } from '@orderly/shared';
import { RefuseJob } from './halt-job';

/**
 * Step 1: the job must be signed by the control room, for this runner's segment, and not expired.
 * Anything else on the queue (a job pushed straight into Redis) is refused; only a verified
 * signature makes its run id trustworthy, so a refusal names the run only then.
 */
export function verifyJobStep(data: unknown, deps: { controlRoomSigningKey: KeyObject; segment: SegmentName }): JobPayload {
  try {
    return verifyJob(data, deps.controlRoomSigningKey, deps.segment);
  } catch (err) {
    const code = isOrderlyError(err) ? err.code : 'ORDERLY_E_JOB_FORGED';
    const runId = isOrderlyError(err) && typeof err.details.runId === 'string' ? err.details.runId : undefined;
    throw new RefuseJob(code, err instanceof Error ? err.message : 'refused', runId);
  }
}
