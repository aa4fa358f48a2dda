import { KeyObject } from 'node:crypto';
import { checkRelease, DsseEnvelope, ErrorCode, isOrderlyError, JobPayload, OrderlyError, ReleaseChannel } from '@orderly/shared';

/** What this runner requires of a package before it runs it. */
export interface ReleasePolicy {
  /** `prod`: only packages with a valid, unexpired release attestation for `prod`. */
  channel: ReleaseChannel;
  /** The control room's release public key (from `control-room.pub`); required for `prod`. */
  releaseKey: KeyObject | undefined;
}

/** Codes of a package this runner will not run: the job is refused, the run dead-lettered. */
export const PACKAGE_REFUSALS: readonly ErrorCode[] = [
  'ORDERLY_E_KEY_REVOKED',
  'ORDERLY_E_RELEASE_MISSING',
  'ORDERLY_E_RELEASE_INVALID',
  'ORDERLY_E_RELEASE_EXPIRED',
];

export const isPackageRefusal = (err: unknown): err is OrderlyError => isOrderlyError(err) && PACKAGE_REFUSALS.includes(err.code);

/**
 * Invariant 2 on the runner's side: the publisher key is not revoked and, on a prod-channel
 * runner, the exact digest carries a valid release for `prod` signed by the release key. The
 * state is the control room's as of this run (never a cached answer). Refusals name the run,
 * whose signed job was verified, so the control room can dead-letter it.
 */
export function admitPackage(
  job: JobPayload,
  state: { publisherKeyRevokedAt: string | null; attestations: readonly DsseEnvelope[] },
  policy: ReleasePolicy,
  now: Date = new Date(),
): void {
  const details = { runId: job.runId, digest: job.bot.digest };
  if (state.publisherKeyRevokedAt !== null) {
    throw new OrderlyError(
      'ORDERLY_E_KEY_REVOKED',
      `the publisher key of ${job.bot.name}@${job.bot.version} was revoked at ${state.publisherKeyRevokedAt}`,
      details,
    );
  }
  if (policy.channel === 'dev') return;
  if (!policy.releaseKey) throw new OrderlyError('ORDERLY_E_RELEASE_MISSING', 'this prod-channel runner has no release key to verify releases with', details);
  try {
    checkRelease(state.attestations, policy.releaseKey, job.bot.digest, 'prod', now);
  } catch (err) {
    if (isOrderlyError(err)) throw new OrderlyError(err.code, err.message, { ...err.details, ...details });
    throw err;
  }
}
