import { decoyHash, hashPassword, verifyPassword } from './passwords';
import { lockSeconds } from './lockout';

// Small parameters keep the unit test fast; the stored form carries them, so verify reads them back.
const FAST = { log2N: 10, r: 8, p: 1 };

test('a password verifies against its own hash only', async () => {
  const hash = await hashPassword('correct horse battery', FAST);
  expect(hash).toMatch(/^scrypt\$10\$8\$1\$/);
  expect(hash).not.toContain('correct horse');
  await expect(verifyPassword('correct horse battery', hash)).resolves.toBe(true);
  await expect(verifyPassword('correct horse batterY', hash)).resolves.toBe(false);
  // Salted: the same password hashes differently.
  expect(await hashPassword('correct horse battery', FAST)).not.toBe(hash);
});

test('malformed or absurd stored hashes never verify', async () => {
  await expect(verifyPassword('x', 'plain')).resolves.toBe(false);
  await expect(verifyPassword('x', 'scrypt$40$8$1$AAAA$AAAA')).resolves.toBe(false);
  await expect(verifyPassword('x', await decoyHash(FAST))).resolves.toBe(false);
});

test('the default parameters are memory-hard (N = 2^17, r = 8)', async () => {
  expect(await hashPassword('pw', undefined)).toMatch(/^scrypt\$17\$8\$1\$/);
});

test('lockout starts at the threshold and backs off exponentially to a cap', () => {
  const policy = { threshold: 5, baseSeconds: 30, maxSeconds: 3600 };
  expect([0, 4].map((f) => lockSeconds(f, policy))).toEqual([0, 0]);
  expect([5, 6, 7, 8].map((f) => lockSeconds(f, policy))).toEqual([30, 60, 120, 240]);
  expect(lockSeconds(20, policy)).toBe(3600);
  expect(lockSeconds(10_000, policy)).toBe(3600);
});

test('concurrent hashes all complete (the limiter queues, never drops)', async () => {
  const hashes = await Promise.all(Array.from({ length: 7 }, (_, i) => hashPassword(`password-${i}`, FAST)));
  expect(new Set(hashes).size).toBe(7);
  await expect(Promise.all(hashes.map((h, i) => verifyPassword(`password-${i}`, h)))).resolves.toEqual(Array(7).fill(true));
});
