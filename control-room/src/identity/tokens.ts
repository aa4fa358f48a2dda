import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Bearer secrets: API tokens, runner identity tokens, session ids, CSRF tokens and enrolment
 * secrets are 256 random bits, so a plain SHA-256 is enough to store them (nothing to brute-force);
 * only the hash is kept, and a stolen table yields no usable credential.
 */
export const API_TOKEN_PREFIX = 'orderly_at_';
export const RUNNER_TOKEN_PREFIX = 'orderly_rt_';

export const newSecret = (prefix = ''): string => `${prefix}${randomBytes(32).toString('base64url')}`;
export const secretHash = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export function hashesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

/** Ten single-use recovery codes, `xxxx-xxxx-xxxx` (about 59 bits each). */
export function newRecoveryCodes(count = 10): string[] {
  return Array.from({ length: count }, () => {
    const bytes = randomBytes(12);
    const chars = [...bytes].map((b) => RECOVERY_ALPHABET[b % RECOVERY_ALPHABET.length]).join('');
    return `${chars.slice(0, 4)}-${chars.slice(4, 8)}-${chars.slice(8, 12)}`;
  });
}

export const RECOVERY_CODE = /^[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$/;

/**
 * Recovery codes have fewer bits than tokens, so they are stored as HMACs under a key derived from
 * the control room's data key: a copy of the database alone cannot be brute-forced offline.
 */
export function recoveryCodeHash(dataKey: Buffer, userId: string, code: string): string {
  const key = createHmac('sha256', dataKey).update('orderly recovery codes v1').digest();
  return createHmac('sha256', key).update(`${userId}\n${code.toLowerCase()}`).digest('hex');
}
