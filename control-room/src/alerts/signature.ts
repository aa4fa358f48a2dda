import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The alert webhook's signature scheme (documented in the README for receivers):
 *
 *   X-Orderly-Timestamp: <unix seconds>
 *   X-Orderly-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
 *
 * The timestamp is inside the MAC, so a captured delivery cannot be replayed later with a fresh
 * timestamp; receivers reject timestamps outside their tolerance and dedupe on the alert id.
 */
export const ALERT_TIMESTAMP_HEADER = 'x-orderly-timestamp';
export const ALERT_SIGNATURE_HEADER = 'x-orderly-signature';
export const ALERT_ID_HEADER = 'x-orderly-alert-id';

/** `v1=<hex>` over `<timestamp>.<body>`. */
export function signAlert(secret: Buffer, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * What a receiver does: recompute the MAC over the raw body, compare in constant time, and refuse
 * a timestamp further than `toleranceSeconds` from its own clock (a replay).
 */
export function verifyAlertSignature(
  secret: Buffer,
  headers: { timestamp: string | undefined; signature: string | undefined },
  body: string,
  options: { toleranceSeconds?: number; now?: number } = {},
): { ok: true } | { ok: false; reason: 'missing' | 'stale' | 'mismatch' } {
  if (!headers.timestamp || !headers.signature || !/^\d{1,12}$/.test(headers.timestamp)) return { ok: false, reason: 'missing' };
  const timestamp = Number(headers.timestamp);
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? 300)) return { ok: false, reason: 'stale' };
  const expected = Buffer.from(signAlert(secret, timestamp, body));
  const given = Buffer.from(headers.signature);
  return expected.length === given.length && timingSafeEqual(expected, given) ? { ok: true } : { ok: false, reason: 'mismatch' };
}
