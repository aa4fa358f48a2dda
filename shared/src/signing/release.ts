import { createPublicKey, KeyObject } from 'node:crypto';
import { z } from 'zod';
import { OrderlyError } from '../errors';
import { BotName, BotVersion, PackageDigest } from '../ids';
import { DsseEnvelope, IN_TOTO_PAYLOAD_TYPE, signEnvelope, verifyEnvelope } from './dsse';

/**
 * Release attestations: the control room's signed statement that an approver released one
 * package digest to a channel until a given time. Production runners run nothing without one
 * (DESIGN invariant 2); development runners accept publisher-signed packages.
 */
export const RELEASE_PREDICATE_TYPE = 'https://orderly.dev/release/v1';

export const RELEASE_CHANNELS = ['dev', 'prod'] as const;
export const ReleaseChannel = z.enum(RELEASE_CHANNELS);
export type ReleaseChannel = z.infer<typeof ReleaseChannel>;

/** A change ticket reference: bounded, a safe charset (it is shown in lists and logs). */
export const TicketRef = z.string().regex(/^[A-Za-z0-9._#/:-]{1,100}$/, '1-100 of A-Z a-z 0-9 . _ # / : -');

export const ReleasePredicate = z.strictObject({
  name: BotName,
  version: BotVersion,
  channel: ReleaseChannel,
  /** The approver's audit actor (never the publisher: separation of duties). */
  approver: z.string().min(1).max(200),
  approvedAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
  ticket: TicketRef.optional(),
});
export type ReleasePredicate = z.infer<typeof ReleasePredicate>;

export const ReleaseStatement = z.strictObject({
  _type: z.literal('https://in-toto.io/Statement/v1'),
  subject: z.array(z.strictObject({ name: z.string().min(1).max(200), digest: z.strictObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/) }) })).length(1),
  predicateType: z.literal(RELEASE_PREDICATE_TYPE),
  predicate: ReleasePredicate,
});
export type ReleaseStatement = z.infer<typeof ReleaseStatement>;

/** The in-toto statement releasing `digest` (`sha256:…`) to a channel. */
export function releaseStatement(digest: PackageDigest, predicate: ReleasePredicate): ReleaseStatement {
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: `${predicate.name}-${predicate.version}.tgz`, digest: { sha256: digest.slice('sha256:'.length) } }],
    predicateType: RELEASE_PREDICATE_TYPE,
    predicate,
  };
}

export function signRelease(statement: ReleaseStatement, releaseKey: KeyObject): DsseEnvelope {
  return signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), releaseKey);
}

/**
 * Verifies one attestation: the release key's signature, the statement's shape, the exact digest
 * and the channel. Returns the statement; expiry is the caller's (`checkRelease`) to judge.
 */
export function verifyRelease(envelope: DsseEnvelope, releasePublicKey: KeyObject, digest: PackageDigest, channel: ReleaseChannel): ReleaseStatement {
  let payload: Buffer;
  try {
    payload = verifyEnvelope(envelope, releasePublicKey, IN_TOTO_PAYLOAD_TYPE);
  } catch {
    throw new OrderlyError('ORDERLY_E_RELEASE_INVALID', 'a release attestation is not signed by the control room release key', { digest });
  }
  let statement: ReleaseStatement;
  try {
    statement = ReleaseStatement.parse(JSON.parse(payload.toString('utf8')));
  } catch {
    throw new OrderlyError('ORDERLY_E_RELEASE_INVALID', 'a release attestation payload is malformed', { digest });
  }
  if (`sha256:${statement.subject[0]!.digest.sha256}` !== digest) {
    throw new OrderlyError('ORDERLY_E_RELEASE_INVALID', 'a release attestation names another package digest', { digest });
  }
  if (statement.predicate.channel !== channel) {
    throw new OrderlyError('ORDERLY_E_RELEASE_MISSING', `a release attestation is for channel ${statement.predicate.channel}, not ${channel}`, {
      digest,
      channel,
    });
  }
  return statement;
}

/**
 * The release gate: passes when at least one attestation is valid for this digest and channel and
 * not expired. Otherwise the most telling code: EXPIRED when a genuine one lapsed, INVALID when one
 * was offered but does not verify (tampered, other digest, other key), else MISSING.
 */
export function checkRelease(
  attestations: readonly DsseEnvelope[],
  releasePublicKey: KeyObject,
  digest: PackageDigest,
  channel: ReleaseChannel,
  now: Date = new Date(),
): ReleaseStatement {
  let expired: ReleaseStatement | undefined;
  let invalid = false;
  for (const envelope of attestations) {
    let statement: ReleaseStatement;
    try {
      statement = verifyRelease(envelope, releasePublicKey, digest, channel);
    } catch (err) {
      if (err instanceof OrderlyError && err.code === 'ORDERLY_E_RELEASE_INVALID') invalid = true;
      continue;
    }
    if (Date.parse(statement.predicate.expiresAt) > now.getTime()) return statement;
    expired ??= statement;
  }
  if (expired) {
    throw new OrderlyError('ORDERLY_E_RELEASE_EXPIRED', `the release of ${digest} to ${channel} expired at ${expired.predicate.expiresAt}`, {
      digest,
      channel,
      expiresAt: expired.predicate.expiresAt,
    });
  }
  if (invalid) throw new OrderlyError('ORDERLY_E_RELEASE_INVALID', `no release attestation for ${digest} verifies for channel ${channel}`, { digest, channel });
  throw new OrderlyError('ORDERLY_E_RELEASE_MISSING', `${digest} has no release attestation for channel ${channel}`, { digest, channel });
}

/**
 * The release public key travels in `control-room.pub` under its own PEM label. Runners that
 * predate it look only for `PUBLIC KEY` blocks, so they neither break on it nor mistake it for
 * the job-signing key (both are Ed25519).
 */
const RELEASE_LABEL = 'ORDERLY RELEASE PUBLIC KEY';

export function releasePublicKeyBlock(releaseKey: KeyObject): string {
  const pem = createPublicKey(releaseKey).export({ type: 'spki', format: 'pem' }).toString();
  return pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, `-----$1 ${RELEASE_LABEL}-----`);
}

/** The release key in a `control-room.pub`, or undefined when the file predates it. */
export function parseReleasePublicKey(text: string): KeyObject | undefined {
  const block = new RegExp(`-----BEGIN ${RELEASE_LABEL}-----([\\s\\S]+?)-----END ${RELEASE_LABEL}-----`).exec(text);
  if (!block) return undefined;
  let key: KeyObject;
  try {
    key = createPublicKey(`-----BEGIN PUBLIC KEY-----${block[1]}-----END PUBLIC KEY-----\n`);
  } catch {
    throw new OrderlyError('ORDERLY_E_KEY_INVALID', `the ${RELEASE_LABEL} block of the control room's public key file is not a valid key`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new OrderlyError('ORDERLY_E_KEY_INVALID', `the ${RELEASE_LABEL} must be an Ed25519 key`);
  return key;
}
