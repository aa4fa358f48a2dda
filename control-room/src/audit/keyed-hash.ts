import { createHmac, hkdfSync } from 'node:crypto';

/**
 * Keyed hashes for identifiers the audit log must correlate but must not show: idempotency keys
 * (and BullMQ job ids, which are the same), which clients may build from business data such as a
 * member id, and Vault token accessors. HMAC-SHA256 under a key derived from the control room's
 * data key, so the same identifier hashes the same across events and restarts, while someone who
 * reads the log (or an export in a SIEM) cannot test guesses against it without that key.
 */
export type KeyedHasher = (value: string) => string;

/** HKDF info: a key for this purpose only, never the data key itself. */
const INFO = 'orderly/audit-identifier-hmac/v1';

export function keyedHasher(dataKey: Buffer): KeyedHasher {
  const key = Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), INFO, 32));
  // 128 bits are plenty to correlate and keep the events short.
  return (value) => `hmac:${createHmac('sha256', key).update(value, 'utf8').digest('hex').slice(0, 32)}`;
}

/** HKDF info of BullMQ run job ids: another key than the audit's, so the two never match. */
const JOB_ID_INFO = 'orderly/run-job-id-hmac/v1';

/** A BullMQ job id: no `:`, not a plain integer (BullMQ's rules), and no idempotency key in clear. */
export const RUN_JOB_ID = /^job-[a-f0-9]{32}$/;

/**
 * The BullMQ job id of a run: a keyed hash of its idempotency key. Idempotency keys may hold PHI
 * (a client may use a member id), and job ids are Redis keys and values, runner log fields and
 * refusal records; the key itself stays in the runs table. Deterministic, so a second add of the
 * same run is still a no-op in BullMQ.
 */
export function runJobIdHasher(dataKey: Buffer): KeyedHasher {
  const key = Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), JOB_ID_INFO, 32));
  return (idempotencyKey) => `job-${createHmac('sha256', key).update(idempotencyKey, 'utf8').digest('hex').slice(0, 32)}`;
}
