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
