import { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { OrderlyError } from '../errors';
import { RunId, SegmentName } from '../ids';
import { DsseEnvelope, signEnvelopeWith, Signer, verifyEnvelope } from '../signing/dsse';

/**
 * Cancellations travel from the control room to runners on one Redis channel per segment under the
 * queue prefix (stacks that share a Redis do not hear each other; a segment's Redis user may
 * subscribe only to its own segment's channel, so it does not learn other segments' run ids). Whoever can publish on Redis could
 * otherwise abort any active run with a made-up message, so each message is a DSSE envelope signed
 * with the control room's job-signing key and bound to one run and its segment.
 */
export const cancelChannel = (prefix: string, segment: SegmentName): string => `${prefix}:orderly.cancel.${segment}`;

export const CANCEL_PAYLOAD_TYPE = 'application/vnd.orderly.cancel.v1+json';

/** A cancel is heard this long after it was signed: long enough for Redis to deliver it. */
export const CANCEL_TTL_MS = 5 * 60 * 1000;

export const CancelPayload = z.strictObject({ v: z.literal(1), runId: RunId, segment: SegmentName, issuedAt: z.iso.datetime(), notAfter: z.iso.datetime() });
export type CancelPayload = z.infer<typeof CancelPayload>;

/** What is published on the cancel channel. */
export const CancelMessage = z.strictObject({ v: z.literal(1), envelope: DsseEnvelope });
export type CancelMessage = z.infer<typeof CancelMessage>;

/** Signs the cancel of `runId` (of `segment`) with the control room's signer (local key or Vault Transit). */
export async function signCancel(signer: Signer, runId: RunId, segment: SegmentName, now: Date = new Date()): Promise<CancelMessage> {
  const payload: CancelPayload = { v: 1, runId, segment, issuedAt: now.toISOString(), notAfter: new Date(now.getTime() + CANCEL_TTL_MS).toISOString() };
  return { v: 1, envelope: await signEnvelopeWith(signer, CANCEL_PAYLOAD_TYPE, Buffer.from(JSON.stringify(payload))) };
}

/**
 * Verifies a message from the cancel channel for a runner of `segment`: shape, control-room
 * signature, segment and expiry. Returns the run to abort; anything else throws
 * ORDERLY_E_CANCEL_REFUSED, and the runner aborts nothing.
 */
export function verifyCancel(raw: string, controlRoomPublicKey: KeyObject, segment: SegmentName, now: Date = new Date()): RunId {
  const refuse = (why: string): never => {
    throw new OrderlyError('ORDERLY_E_CANCEL_REFUSED', why);
  };
  let message: CancelMessage | undefined;
  try {
    message = CancelMessage.parse(JSON.parse(raw));
  } catch {
    return refuse('not a signed cancel message');
  }
  let bytes: Buffer;
  try {
    bytes = verifyEnvelope(message.envelope, controlRoomPublicKey, CANCEL_PAYLOAD_TYPE);
  } catch {
    return refuse('cancel message is not signed by the control room');
  }
  const payload = CancelPayload.safeParse(
    (() => {
      try {
        return JSON.parse(bytes.toString('utf8')) as unknown;
      } catch {
        return undefined;
      }
    })(),
  );
  if (!payload.success) return refuse('signed cancel payload is malformed');
  if (payload.data.segment !== segment) return refuse(`cancel is for a run of segment ${payload.data.segment}, this runner serves ${segment}`);
  if (Date.parse(payload.data.notAfter) <= now.getTime()) return refuse(`cancel expired at ${payload.data.notAfter}`);
  return payload.data.runId;
}
