import { randomBytes, scrypt, ScryptOptions, timingSafeEqual } from 'node:crypto';

/**
 * Password hashing with scrypt (memory-hard; in Node's crypto, so no dependency). The stored form
 * carries its parameters, so they can be raised later without breaking existing hashes:
 * `scrypt$<log2 N>$<r>$<p>$<salt b64>$<hash b64>`.
 */
export interface ScryptParams {
  log2N: number;
  r: number;
  p: number;
}

/** N = 2^17, r = 8: 128 MiB and ~0.3 s per hash (OWASP's first scrypt recommendation). */
export const STRONG_SCRYPT: ScryptParams = { log2N: 17, r: 8, p: 1 };

const KEY_LENGTH = 32;

/**
 * At most this many derivations run at once (each holds 128 MiB): a flood of sign-ins across many
 * usernames (which per-username lockout does not slow) queues here instead of exhausting memory.
 */
const MAX_CONCURRENT = 2;
let running = 0;
const waiting: (() => void)[] = [];

async function limited<T>(work: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await work();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  return limited(() => deriveNow(password, salt, params));
}

function deriveNow(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const N = 2 ** params.log2N;
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 128 * N * params.r * params.p + 16 * 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string, params: ScryptParams = STRONG_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, params);
  return ['scrypt', params.log2N, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$');
}

/** Constant-time check of `password` against a stored hash; a malformed hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [log2N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![log2N, r, p].every((n) => Number.isInteger(n) && n > 0) || log2N > 20) return false;
  const expected = Buffer.from(parts[5]!, 'base64');
  const key = await derive(password, Buffer.from(parts[4]!, 'base64'), { log2N, r, p });
  return expected.length === key.length && timingSafeEqual(expected, key);
}

/**
 * A hash of a random password with the given parameters: verified against when the username does
 * not exist, so an unknown user costs the same scrypt work as a known one (no timing oracle).
 */
export const decoyHash = (params: ScryptParams = STRONG_SCRYPT): Promise<string> => hashPassword(randomBytes(16).toString('base64'), params);
