import { join } from 'node:path';
import nodeVault from 'node-vault';
import { Client } from 'pg';
import { waitFor } from '@orderly/shared/testing';
import { BotManifest } from '@orderly/shared';
import { createVaultClientFactory } from '@orderly/shared/vault';
import { vaultCredentialBroker } from '../../control-room/src/credentials/broker';
import { Ledger, startLedger } from '../faults';
import { dumpDatabase, dumpRedis, PORTAL_CREDENTIALS, REPO, setCredential, Stack, startStack } from '../harness';

/**
 * Credentials end to end with real Chromium and the dev Vault over HTTP: the demo bot signs in to
 * the portal with credentials leased for its run, and nothing keeps them afterwards.
 */
let stack: Stack;
/** Holds a slow-creds run's last request, so a test strikes while the run holds its token. */
let ledger: Ledger;
const API_TOKEN = `synthetic-api-token-gen-1-${Date.now().toString(36)}-not-real`;

beforeAll(async () => {
  ledger = await startLedger();
  stack = await startStack({ runner: true, controlRoomEnv: { ORDERLY_VAULT_BUDGET_SECONDS: '2' } });
  await stack.publish();
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'slow-creds'));
  await setCredential(stack.vault!, 'slow-creds', 'api_token', API_TOKEN);
}, 60_000);
afterAll(async () => {
  await stack?.close();
  await ledger?.close();
});

/** A slow-creds run that works until the test releases it; `arrived` once its bot holds its token. */
async function heldRun(key: string): Promise<{ id: string; arrived: Promise<void>; release(): void }> {
  const hold = ledger.holdNext(key, '/after');
  const created = await stack.startRun({ bot: 'slow-creds', input: { ms: 0, holdUrl: `${ledger.url}/after?key=${key}` } });
  return { id: created.id, arrived: hold.arrived, release: hold.release };
}

async function query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  const db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  try {
    return (await db.query(sql, params)).rows as T[];
  } finally {
    await db.end();
  }
}

const leaseCount = async (runId: string) => (await query<{ n: number }>('SELECT count(*)::int AS n FROM run_leases WHERE run_id = $1', [runId]))[0]!.n;

const root = () => nodeVault({ endpoint: stack.vault!.address, token: stack.vault!.rootToken });
const tokenAlive = (accessor: string) =>
  root()
    .write('auth/token/lookup-accessor', { accessor })
    .then(
      () => true,
      () => false,
    );
const leaseOf = (runId: string) =>
  waitFor(
    async () => (await query<{ accessor: string; released_at: Date | null }>('SELECT accessor, released_at FROM run_leases WHERE run_id = $1', [runId]))[0],
    15_000,
    'lease',
  );

test('the demo bot signs in with leased credentials; no credential is left in Redis, the database, reports or logs', async () => {
  const before = stack.portal.stats().logins;
  const run = await stack.waitForRun(
    (await stack.startRun({ bot: 'eligibility-check', input: { portalUrl: stack.portal.url, memberId: 'ZZT100200303', dateOfBirth: '1900-07-04' } })).id,
  );
  expect(run).toMatchObject({ status: 'succeeded', result: { coverage: 'Active' } });
  expect(stack.portal.stats().logins).toBe(before + 1);
  const logs = JSON.stringify((await stack.api('GET', `/v1/runs/${run.id}/logs`)).body);
  for (const [where, text] of [
    ['redis', await dumpRedis(stack.redis, stack.prefix)],
    ['database', await dumpDatabase(stack.databaseUrl!)],
    ['process logs', stack.log.text()],
    ['run view and logs', JSON.stringify(run) + logs],
  ] as const) {
    for (const secret of [PORTAL_CREDENTIALS.password, PORTAL_CREDENTIALS.username])
      expect({ where, leaked: text.includes(secret) }).toEqual({ where, leaked: false });
  }
});

test('after a run its Vault token is revoked: the recorded accessor no longer resolves', async () => {
  const run = await stack.waitForRun((await stack.startRun({ bot: 'slow-creds', input: { ms: 0 } })).id);
  expect(run.status).toBe('succeeded');
  const lease = await leaseOf(run.id);
  expect(lease.released_at).not.toBeNull();
  expect(await tokenAlive(lease.accessor)).toBe(false);
}, 80_000);

test('revoke-runs cuts an active run off Vault at once, and is audited', async () => {
  const created = await heldRun('revoke-runs-1');
  await created.arrived;
  const lease = await leaseOf(created.id);
  expect(await tokenAlive(lease.accessor)).toBe(true);
  const revoked = await stack.api('POST', '/v1/credentials/slow-creds/revoke-runs', {});
  expect(revoked.body).toEqual({ revoked: 1, runs: [created.id] });
  expect(await tokenAlive(lease.accessor)).toBe(false);
  created.release();
  expect((await stack.waitForRun(created.id)).status).toBe('succeeded'); // the bot already had its secrets
  const events = await query<{ action: string; target: string; outcome: string }>(
    "SELECT action, target, outcome FROM audit_events WHERE action = 'credential.revoke_runs'",
  );
  expect(events).toContainEqual({ action: 'credential.revoke_runs', target: 'slow-creds', outcome: 'success' });
}, 120_000);

test('a rotation during a run: the started run finishes with the version it read, the next run reads the new one', async () => {
  const before = await heldRun('rotation-1');
  await before.arrived; // its bot runs with the secret it read
  await setCredential(stack.vault!, 'slow-creds', 'api_token', API_TOKEN.replace('-gen-1-', '-gen-2-'));
  before.release();
  const after = await stack.startRun({ bot: 'slow-creds', input: { ms: 0 } });
  expect((await stack.waitForRun(before.id)).result).toMatchObject({ tokenGeneration: '1' });
  expect((await stack.waitForRun(after.id)).result).toMatchObject({ tokenGeneration: '2' });
}, 140_000);

test("with the runners' network configured, a bot's SecretIDs and tokens work only from there", async () => {
  const vault = createVaultClientFactory({ address: stack.vault!.address }).withToken(stack.vault!.rootToken);
  const manifest = { name: 'slow-creds', version: '1.0.0', credentials: ['api_token'], timeoutSeconds: 60 } as BotManifest;
  const provision = (runnerCidrs: string[]) => vaultCredentialBroker({ vault, wrapTtlSeconds: 60, runTokenTtlSeconds: 300, runnerCidrs }).provision(manifest);
  try {
    await provision(['10.99.0.0/16']); // not where this runner is
    const refused = await stack.waitForRun((await stack.startRun({ bot: 'slow-creds', input: { ms: 0 } })).id);
    expect(refused).toMatchObject({ status: 'dead_lettered', error: { code: expect.stringMatching(/^ORDERLY_E_VAULT_/) } });
    await provision(['127.0.0.0/8']);
    expect((await stack.waitForRun((await stack.startRun({ bot: 'slow-creds', input: { ms: 0 } })).id)).status).toBe('succeeded');
  } finally {
    await provision([]);
  }
}, 90_000);

test('a Vault sealed in the middle of a run does not break the run; the token could not be revoked and expires by its TTL', async () => {
  const created = await heldRun('sealed-1');
  // Sealed while the bot works with its token (the lease is recorded before the bot starts).
  await created.arrived;
  expect(await leaseCount(created.id)).toBe(1);
  stack.vault!.devVault.seal();
  try {
    created.release();
    const run = await stack.waitForRun(created.id);
    expect(run).toMatchObject({ status: 'succeeded', result: { sleptMs: 0, hadToken: true } });
    expect(stack.log.text()).toContain('could not revoke the run token');
  } finally {
    stack.vault!.devVault.unseal();
  }
  expect(stack.log.text()).not.toContain(API_TOKEN);
}, 110_000);

// Its own stack: it takes Vault down for good, which no test after it could live with.
describe('Vault down', () => {
  let own: Stack;
  beforeAll(async () => {
    own = await startStack({ runner: true, controlRoomEnv: { ORDERLY_VAULT_BUDGET_SECONDS: '2' } });
    await own.publish(join(REPO, 'test', 'fixtures', 'bots', 'slow-creds'));
    await setCredential(own.vault!, 'slow-creds', 'api_token', API_TOKEN);
  }, 60_000);
  afterAll(() => own?.close());

  test('when a run is claimed: the attempt fails with a retryable Vault code; with its attempts spent, the run is dead-lettered', async () => {
    await own.vault!.devVault.close();
    const created = await own.startRun({ bot: 'slow-creds', input: { ms: 0 } }); // the fixture allows one attempt
    const run = await own.waitForRun(created.id, undefined, 15_000);
    expect(run).toMatchObject({ status: 'dead_lettered', attempts: 1, error: { code: 'ORDERLY_E_VAULT_UNAVAILABLE', retryable: true } });
    expect(run.error?.message).not.toMatch(/hvs\.|s\.[A-Za-z0-9]{20}/);
  });
});
