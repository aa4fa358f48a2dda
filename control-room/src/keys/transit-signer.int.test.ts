import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nodeVault from 'node-vault';
import { keyIdOf, parseControlRoomPublicKeys } from '@orderly/shared';
import { Stack, startStack } from '../../../test/harness';

/**
 * Configuration can keep the job-signing key in Vault Transit (ed25519): the private key never
 * leaves Vault; runners verify with its public key, published in control-room.pub.
 */
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ runner: true, controlRoomEnv: { ORDERLY_SIGNING_TRANSIT_KEY: 'orderly-jobs', ORDERLY_TRANSIT_KEY: 'orderly-data' } });
  await stack.publish();
}, 60_000);
afterAll(() => stack.close());

test('jobs are signed by the Transit key, whose public key runners are given, and a real run succeeds', async () => {
  const root = nodeVault({ endpoint: stack.vault!.address, token: stack.vault!.rootToken });
  const key = (await root.read('transit/keys/orderly-jobs')) as {
    data: { type: string; latest_version: number; keys: Record<string, { public_key: string }> };
  };
  expect(key.data.type).toBe('ed25519');
  const raw = Buffer.from(key.data.keys[String(key.data.latest_version)]!.public_key, 'base64');
  const vaultKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  const published = parseControlRoomPublicKeys(readFileSync(join(stack.dataDir, 'secrets', 'control-room.pub'), 'utf8'));
  expect(keyIdOf(published.signing)).toBe(keyIdOf(vaultKey));
  const localKey = createPublicKey(readFileSync(join(stack.dataDir, 'secrets', 'signing.key'), 'utf8'));
  expect(keyIdOf(published.signing)).not.toBe(keyIdOf(localKey));

  // The runner verifies every job against the published key before it runs anything.
  const created = await stack.startRun({
    bot: 'eligibility-check',
    input: { portalUrl: stack.portal.url, memberId: 'ZZT100200302', dateOfBirth: '1900-02-28' },
  });
  expect((await stack.waitForRun(created.id)).status).toBe('succeeded');
});
