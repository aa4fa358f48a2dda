import { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { OrderlyError } from '../errors';
import { BotName, BotVersion, KeyId, PackageDigest, RunId, SegmentName } from '../ids';
import { DsseEnvelope, signEnvelope, signEnvelopeWith, Signer, verifyEnvelope } from '../signing/dsse';

export const JOB_PAYLOAD_TYPE = 'application/vnd.orderly.job.v1+json';

/**
 * What a run queue job asks a runner to do. It carries references only: the run's input (PHI)
 * stays in the control room and is handed over at claim time to the runner that runs it.
 */
export const JobPayload = z.strictObject({
  v: z.literal(1),
  runId: RunId,
  /**
   * The BullMQ job id: a keyed hash of the run's idempotency key, which may hold PHI and so never
   * travels in Redis. The runner learns the key itself at claim, over HTTPS, for the bot.
   */
  jobId: z.string().regex(/^job-[a-f0-9]{32}$/),
  segment: SegmentName,
  bot: z.strictObject({ name: BotName, version: BotVersion, digest: PackageDigest }),
  publisherKeyId: KeyId,
  issuedAt: z.iso.datetime(),
  notAfter: z.iso.datetime(),
});
export type JobPayload = z.infer<typeof JobPayload>;

/** The data of a BullMQ job on `orderly.run.<segment>`. */
export const RunJobData = z.strictObject({ envelope: DsseEnvelope });
export type RunJobData = z.infer<typeof RunJobData>;

export function signJob(payload: JobPayload, controlRoomKey: KeyObject): RunJobData {
  return { envelope: signEnvelope(JOB_PAYLOAD_TYPE, Buffer.from(JSON.stringify(payload)), controlRoomKey) };
}

/** Signs a job with the control room's signer (a local key or Vault Transit). */
export async function signJobWith(payload: JobPayload, signer: Signer): Promise<RunJobData> {
  return { envelope: await signEnvelopeWith(signer, JOB_PAYLOAD_TYPE, Buffer.from(JSON.stringify(payload))) };
}

/**
 * Verifies a job as it comes off the queue: shape, control-room signature, expiry and segment.
 * Anything else that landed on the queue (a job pushed straight into Redis) is refused here.
 */
export function verifyJob(data: unknown, controlRoomPublicKey: KeyObject, segment: SegmentName, now: Date = new Date()): JobPayload {
  const parsed = RunJobData.safeParse(data);
  if (!parsed.success) throw new OrderlyError('ORDERLY_E_JOB_FORGED', 'job data is not a signed job envelope');
  let payloadBytes: Buffer;
  try {
    payloadBytes = verifyEnvelope(parsed.data.envelope, controlRoomPublicKey, JOB_PAYLOAD_TYPE);
  } catch {
    throw new OrderlyError('ORDERLY_E_JOB_FORGED', 'job envelope is not signed by the control room');
  }
  let payload: JobPayload;
  try {
    payload = JobPayload.parse(JSON.parse(payloadBytes.toString('utf8')));
  } catch {
    throw new OrderlyError('ORDERLY_E_JOB_FORGED', 'signed job payload is malformed');
  }
  if (payload.segment !== segment) {
    throw new OrderlyError('ORDERLY_E_JOB_WRONG_SEGMENT', `job is for segment ${payload.segment}, this runner serves ${segment}`, { runId: payload.runId });
  }
  if (Date.parse(payload.notAfter) <= now.getTime()) {
    throw new OrderlyError('ORDERLY_E_JOB_EXPIRED', `job expired at ${payload.notAfter}`, { runId: payload.runId, notAfter: payload.notAfter });
  }
  return payload;
}
