import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { runnerKeyId, SegmentName } from '@orderly/shared';
import { Queryable } from '../db/db';
import { RUNNER_KEYS_TTL_MS, RunnerKeys } from './runner-keys';

/**
 * The revocation delay the README documents: a control room that did not itself revoke a runner
 * (another instance) stops hearing its key within RUNNER_KEYS_TTL_MS, and a bootstrap revocation
 * also drops the segment's bootstrap token.
 */
function fakeDb() {
  const identities: { name: string; key_id: string; public_key: string; segment: string }[] = [];
  const revoked: { segment: string }[] = [];
  const db = { query: async (sql: string) => (sql.includes('bootstrap_runner_revocations') ? revoked : identities) } as unknown as Queryable;
  return { db, identities, revoked };
}

test('a revoked identity and a revoked bootstrap runner are refused within the documented delay', async () => {
  const { db, identities, revoked } = fakeDb();
  const registered = generateKeyPairSync('ed25519').publicKey;
  const bootstrap = createPublicKey(generateKeyPairSync('ed25519').privateKey);
  identities.push({ name: 'r1', key_id: runnerKeyId(registered), public_key: registered.export({ type: 'spki', format: 'pem' }).toString(), segment: 'demo' });
  let now = 1_000_000;
  const dropped: string[] = [];
  const keys = new RunnerKeys(
    db,
    new Map([['demo' as SegmentName, bootstrap]]),
    RUNNER_KEYS_TTL_MS,
    () => now,
    (s) => dropped.push(s),
  );
  expect(await keys.get(runnerKeyId(registered))).toMatchObject({ segment: 'demo', runner: 'runner:r1' });
  expect(await keys.get(runnerKeyId(bootstrap))).toMatchObject({ segment: 'demo', runner: 'runner:demo' });

  identities.length = 0;
  revoked.push({ segment: 'demo' });
  now += RUNNER_KEYS_TTL_MS - 1; // still cached: the delay is an upper bound, not zero
  expect(await keys.get(runnerKeyId(registered))).toBeDefined();
  now += 2;
  expect(await keys.get(runnerKeyId(registered))).toBeUndefined();
  expect(await keys.get(runnerKeyId(bootstrap))).toBeUndefined();
  expect(dropped).toEqual(['demo']);
});

test('a row whose stored key id is not its key is heard only under its real fingerprint', async () => {
  const { db, identities } = fakeDb();
  const real = generateKeyPairSync('ed25519').publicKey;
  identities.push({ name: 'r2', key_id: 'a'.repeat(32), public_key: real.export({ type: 'spki', format: 'pem' }).toString(), segment: 'demo' });
  const keys = new RunnerKeys(db, new Map());
  expect(await keys.get('a'.repeat(32))).toBeUndefined();
  expect(await keys.get(runnerKeyId(real))).toMatchObject({ runner: 'runner:r2' });
});
