import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nodeVault from 'node-vault';
import { Client } from 'pg';
import { Stack, startStack } from '../../../test/harness';

/**
 * PHI at rest through Vault Transit (dev Vault over HTTP): inputs are sealed under Transit data
 * keys; a key rotation needs no downtime; min_decryption_version is enforced; rewrap moves old
 * rows forward.
 */
const MEMBER = { memberId: 'ZZT100200301', dateOfBirth: '1900-01-15' };
let stack: Stack;
let db: Client;
let root: ReturnType<typeof nodeVault>;
let runnerToken: string;

beforeAll(async () => {
  stack = await startStack({ controlRoomEnv: { ORDERLY_TRANSIT_KEY: 'orderly-data' } });
  await stack.publish();
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  root = nodeVault({ endpoint: stack.vault!.address, token: stack.vault!.rootToken });
  runnerToken = readFileSync(join(stack.dataDir, 'secrets', 'runner-demo.token'), 'utf8').trim();
});
afterAll(async () => {
  await db.end();
  await stack.close();
});

const newRun = () => stack.startRun({ bot: 'eligibility-check', input: { portalUrl: stack.portal.url, ...MEMBER } });
const sealedInput = async (id: string) =>
  (await db.query('SELECT input_sealed FROM runs WHERE id = $1', [id])).rows[0].input_sealed as { kid: string; dk: string; ct: string };
/** Claims a new attempt; the previous one is first recorded finished, as its report would. */
const claim = async (id: string) => {
  await db.query("UPDATE run_attempts SET finished_at = now(), outcome = 'failed' WHERE run_id = $1 AND finished_at IS NULL", [id]);
  return stack.api('POST', `/v1/runner/runs/${id}/claim`, { runnerId: 'at-rest-test' }, runnerToken);
};

test('inputs are sealed under a Transit data key and open again at claim', async () => {
  const run = await newRun();
  const box = await sealedInput(run.id);
  expect(box.kid).toBe('transit:orderly-data:v1');
  expect(box.dk).toMatch(/^vault:v1:/);
  expect(JSON.stringify(box)).not.toContain(MEMBER.memberId);
  expect((await claim(run.id)).body.input).toMatchObject(MEMBER);
});

test('Transit key rotation: old rows still open, rewrap moves them forward, then min_decryption_version retires the old version', async () => {
  const old = await newRun();
  // A step result is sealed at rest under the same key: a rotation must reach it too.
  const { attempt, fence } = (await claim(old.id)).body as { attempt: number; fence: string };
  expect((await stack.api('POST', `/v1/runner/runs/${old.id}/steps/begin`, { attempt, fence, name: 'lookup' }, runnerToken)).body).toEqual({ state: 'new' });
  expect(
    (await stack.api('POST', `/v1/runner/runs/${old.id}/steps/complete`, { attempt, fence, name: 'lookup', result: { found: true } }, runnerToken)).status,
  ).toBeLessThan(300);
  const sealedStep = async () => (await db.query('SELECT result_sealed FROM run_steps WHERE run_id = $1', [old.id])).rows[0].result_sealed as { kid: string };
  expect((await sealedStep()).kid).toBe('transit:orderly-data:v1');
  await root.write('transit/keys/orderly-data/rotate', {});
  expect((await claim(old.id)).body.input).toMatchObject(MEMBER); // v1 still decrypts: no downtime

  const rewrap = await stack.api('POST', '/v1/admin/rewrap', {});
  expect(rewrap.body.rewrapped).toBeGreaterThanOrEqual(1);
  const box = await sealedInput(old.id);
  expect(box).toMatchObject({ kid: 'transit:orderly-data:v2', dk: expect.stringMatching(/^vault:v2:/) });
  expect((await sealedStep()).kid).toBe('transit:orderly-data:v2');
  expect((await sealedInput((await newRun()).id)).dk).toMatch(/^vault:v2:/); // new rows use the new version
  await root.write('transit/keys/orderly-data/config', { min_decryption_version: 2 });
  expect((await claim(old.id)).body.input).toMatchObject(MEMBER);
});

test("min_decryption_version is Vault's to enforce: a row under a retired version does not open", async () => {
  const run = await newRun(); // sealed under v2
  await root.write('transit/keys/orderly-data/rotate', {});
  await root.write('transit/keys/orderly-data/config', { min_decryption_version: 3 });
  const refused = await claim(run.id);
  expect(refused.status).toBeGreaterThanOrEqual(400);
  expect(refused.body.error.code).toMatch(/^ORDERLY_E_VAULT_/);
  expect(JSON.stringify(refused.body)).not.toContain(MEMBER.memberId);
  await root.write('transit/keys/orderly-data/config', { min_decryption_version: 2 });
  expect((await claim(run.id)).body.input).toMatchObject(MEMBER); // policy, not data loss
});
