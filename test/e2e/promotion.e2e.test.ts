import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { packBot } from '@orderly/control-room';
import { BotName, BotVersion, generateSigningKeyPair, RunView } from '@orderly/shared';
import { Stack, startStack } from '../harness';

/**
 * Signed promotion end to end, with real runners and Chromium. Segments: `demo` and `other`
 * (development for the control room) and `live` (production). The prod-channel runner serves
 * `demo`: the runner does not take the control room's word for which packages it may run, it
 * checks the release itself, so a package the control room let through (here: because `demo`
 * is not on its production list) is still refused. Runs for `live` are gated by the control room.
 */
const MEMBER = { memberId: 'ZZT100200301', dateOfBirth: '1900-01-15' };
const APPROVER = { id: 'user-approver-1', actor: 'user:approver-1' };
const DAY_MS = 24 * 3600 * 1000;
let stack: Stack;
let db: Client;

/**
 * A tiny bot with no imports, one folder per version: every version is its own digest. Each test
 * publishes versions of its own, so none depends on what another promoted, refused or revoked.
 */
function helloBot(version: string, name = 'promo-hello'): string {
  const dir = join(stack.dataDir, `${name}-${version}`);
  mkdirSync(join(dir, 'src'), { recursive: true });
  writeFileSync(
    join(dir, 'bot.json'),
    JSON.stringify({
      name,
      version,
      entry: 'src/index.ts',
      segments: ['demo', 'other', 'live'],
      input: { type: 'object', properties: { ms: { type: 'integer', minimum: 0, maximum: 10000 } } },
      hosts: [],
      timeoutSeconds: 30,
      attempts: 1,
      contacts: { owner: 'Fake Owner', dataSteward: 'Fake Steward', securityContact: 'fake-security@example.test' },
    }),
  );
  writeFileSync(
    join(dir, 'src', 'index.ts'),
    'export default { orderlyBot: 1, async run({ input }: { input: { ms?: number } }) { await new Promise((r) => setTimeout(r, input.ms ?? 0)); return { hello: true }; } };\n',
  );
  return dir;
}

/** Promotes as APPROVER, acknowledging the version's permission diff against prod as an approver would after reading it. */
const promoteWith = async (name: string, version: string, request: { expiresInDays: number; ticket?: string }, now?: Date) => {
  const { diffDigest } = await stack.controlRoom.releases.permissions(name as BotName, version as BotVersion, now);
  return stack.controlRoom.releases.promote(
    name as BotName,
    version as BotVersion,
    { channel: 'prod', ...request, acknowledgePermissions: diffDigest },
    APPROVER,
    now,
  );
};
const promote = (name: string, version: string, now?: Date) => promoteWith(name, version, { expiresInDays: 1 }, now);

const refusals = async (runId: string) =>
  (await db.query<{ error_code: string }>('SELECT error_code FROM job_refusals WHERE run_id = $1', [runId])).rows.map((r) => r.error_code);

/** The run ended refused by the runner with `code`: dead-lettered, never claimed, refusal recorded. */
async function expectRefused(run: RunView, code: string): Promise<void> {
  const ended = await stack.waitForRun(run.id);
  expect({ status: ended.status, code: ended.error?.code, startedAt: ended.startedAt }).toEqual({ status: 'dead_lettered', code, startedAt: null });
  expect(await refusals(run.id)).toEqual([code]);
}

beforeAll(async () => {
  stack = await startStack({ segments: 'demo,other,live', controlRoomEnv: { ORDERLY_PROD_SEGMENTS: 'live' } });
  await stack.publish();
  await stack.startRunner({ segment: 'demo', channel: 'prod' });
  await stack.startRunner({ segment: 'other' });
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
}, 90_000);

afterAll(async () => {
  await db?.end();
  await stack?.close();
});

test('a prod runner refuses a package without a release attestation: dead-lettered, the bot never ran', async () => {
  await stack.publish(helloBot('0.9.0')); // never promoted, by this test or any other
  const run = await stack.startRun({ bot: 'promo-hello', version: '0.9.0', segment: 'demo', input: {} });
  await expectRefused(run, 'ORDERLY_E_RELEASE_MISSING');
});

test('the control room refuses runs in a production segment for an unpromoted package', async () => {
  await stack.publish(helloBot('1.0.0'));
  const res = await stack.api('POST', '/v1/runs', { bot: 'promo-hello', version: '1.0.0', segment: 'live', input: {} });
  expect({ status: res.status, code: res.body.error.code }).toEqual({ status: 409, code: 'ORDERLY_E_RELEASE_MISSING' });
  const listed = (await stack.api('GET', '/v1/packages')).body.packages.find(
    (p: { name: string; version: string }) => p.name === 'promo-hello' && p.version === '1.0.0',
  );
  expect(listed).toMatchObject({
    publishedBy: 'admin',
    channels: [],
    runnable: { dev: true, prod: false },
    notRunnable: { dev: null, prod: 'ORDERLY_E_RELEASE_MISSING' },
  });
});

test('separation of duties: the publisher cannot promote; another approver can, and the prod runner then runs it', async () => {
  const self = await stack.api('POST', '/v1/packages/eligibility-check/1.0.0/promote', { channel: 'prod', ticket: 'CHG-1001' });
  expect({ status: self.status, code: self.body.error.code }).toEqual({ status: 403, code: 'ORDERLY_E_SELF_APPROVAL' });
  expect((await stack.api('GET', '/v1/packages/eligibility-check/1.0.0')).body.attestations).toEqual([]);

  const attestation = await promoteWith('eligibility-check', '1.0.0', { expiresInDays: 30, ticket: 'CHG-1001' });
  expect(attestation).toMatchObject({ channel: 'prod', approver: APPROVER.actor, ticket: 'CHG-1001', valid: true, expired: false });
  const detail = (await stack.api('GET', '/v1/packages/eligibility-check/1.0.0')).body;
  expect(detail).toMatchObject({ publishedBy: 'admin', channels: ['prod'], runnable: { dev: true, prod: true } });
  expect(detail.attestations).toHaveLength(1);

  const before = stack.portal.stats().eligibilityChecks;
  const run = await stack.startRun({ bot: 'eligibility-check', segment: 'demo', input: { portalUrl: stack.portal.url, ...MEMBER } });
  expect(await stack.waitForRun(run.id)).toMatchObject({ status: 'succeeded', result: { coverage: 'Active' } });
  expect(stack.portal.stats().eligibilityChecks).toBe(before + 1);
}, 60_000);

test('a dev runner runs a publisher-signed package without any promotion', async () => {
  await stack.publish(helloBot('1.0.1'));
  const run = await stack.startRun({ bot: 'promo-hello', version: '1.0.1', segment: 'other', input: {} });
  expect(await stack.waitForRun(run.id)).toMatchObject({ status: 'succeeded', result: { hello: true } });
});

test('a tampered release attestation is refused by the runner and by the control room', async () => {
  await stack.publish(helloBot('1.0.2'));
  const attestation = await promote('promo-hello', '1.0.2', new Date(Date.now() - 2 * DAY_MS));
  // Stretch the lapsed release's expiry in the stored statement: its signature no longer matches.
  const statement = JSON.parse(Buffer.from(attestation.envelope.payload, 'base64').toString('utf8'));
  statement.predicate.expiresAt = new Date(Date.now() + 300 * DAY_MS).toISOString();
  const tampered = { ...attestation.envelope, payload: Buffer.from(JSON.stringify(statement)).toString('base64') };
  await db.query('UPDATE release_attestations SET envelope = $2 WHERE id = $1', [attestation.id, JSON.stringify(tampered)]);

  const run = await stack.startRun({ bot: 'promo-hello', version: '1.0.2', segment: 'demo', input: {} });
  await expectRefused(run, 'ORDERLY_E_RELEASE_INVALID');
  const gated = await stack.api('POST', '/v1/runs', { bot: 'promo-hello', version: '1.0.2', segment: 'live', input: {} });
  expect({ status: gated.status, code: gated.body.error.code }).toEqual({ status: 400, code: 'ORDERLY_E_RELEASE_INVALID' });
  expect((await stack.api('GET', '/v1/packages/promo-hello/1.0.2')).body.attestations[0]).toMatchObject({ valid: false });
});

test('an expired release attestation is refused by the runner and by the control room', async () => {
  await stack.publish(helloBot('1.0.3'));
  await promote('promo-hello', '1.0.3', new Date(Date.now() - 2 * DAY_MS));
  const run = await stack.startRun({ bot: 'promo-hello', version: '1.0.3', segment: 'demo', input: {} });
  await expectRefused(run, 'ORDERLY_E_RELEASE_EXPIRED');
  const gated = await stack.api('POST', '/v1/runs', { bot: 'promo-hello', version: '1.0.3', segment: 'live', input: {} });
  expect({ status: gated.status, code: gated.body.error.code }).toEqual({ status: 409, code: 'ORDERLY_E_RELEASE_EXPIRED' });
});

test('after its publisher key is revoked, a package the runner has cached and run before is refused, and that is visible', async () => {
  // A publisher key of this test's own: revoking it leaves the other tests' packages alone.
  const key = generateSigningKeyPair();
  const registered = await stack.registerKey('test-publisher-revoked', key.publicKeyPem);
  expect(registered.status).toBe(201);
  const keyId = registered.body.keyId as string;
  const publishWithKey = async (dir: string) => {
    const packed = await packBot(dir, key.privateKeyPem);
    const res = await stack.api('POST', '/v1/packages', { archive: packed.archive.toString('base64'), envelope: packed.envelope });
    expect(res.status).toBe(201);
  };
  for (const version of ['2.0.0', '2.0.1', '2.0.2']) await publishWithKey(helloBot(version, 'promo-revoked'));
  await promote('promo-revoked', '2.0.0');
  await promote('promo-revoked', '2.0.1');
  // 2.0.0 runs once on the prod runner, which so has it cached.
  const first = await stack.startRun({ bot: 'promo-revoked', version: '2.0.0', segment: 'demo', input: {} });
  expect((await stack.waitForRun(first.id)).status).toBe('succeeded');
  // Keep the prod runner busy, so the next run is queued (already allowed) when the key is revoked.
  const busy = await stack.startRun({ bot: 'promo-revoked', version: '2.0.1', segment: 'demo', input: { ms: 4000 } });
  await stack.waitForRun(busy.id, (r) => r.status === 'active');
  const queued = await stack.startRun({ bot: 'promo-revoked', version: '2.0.0', segment: 'demo', input: {} });
  const revoked = await stack.api('POST', `/v1/keys/${keyId}/revoke`);
  expect(revoked.status).toBe(200);
  expect(revoked.body.revokedAt).toEqual(expect.any(String));

  await expectRefused(queued, 'ORDERLY_E_KEY_REVOKED');
  const listed = (await stack.api('GET', '/v1/packages')).body.packages as {
    name: string;
    version: string;
    publisherKeyRevokedAt: string | null;
    runnable: object;
    notRunnable: { dev: string | null; prod: string | null };
  }[];
  const mine = listed.filter((p) => p.name === 'promo-revoked');
  expect(mine.map((p) => p.version).sort()).toEqual(['2.0.0', '2.0.1', '2.0.2']);
  for (const pkg of mine) {
    expect({ version: pkg.version, runnable: pkg.runnable, notRunnable: pkg.notRunnable }).toEqual({
      version: pkg.version,
      runnable: { dev: false, prod: false },
      notRunnable: { dev: 'ORDERLY_E_KEY_REVOKED', prod: 'ORDERLY_E_KEY_REVOKED' },
    });
    expect(pkg.publisherKeyRevokedAt).toEqual(revoked.body.revokedAt);
  }
  // The packages of the other key are untouched.
  const others = listed.filter((p) => p.name !== 'promo-revoked');
  expect(others.length).toBeGreaterThan(0);
  for (const pkg of others)
    expect({ name: pkg.name, revokedAt: pkg.publisherKeyRevokedAt, dev: pkg.notRunnable.dev }).toEqual({ name: pkg.name, revokedAt: null, dev: null });
  for (const segment of ['demo', 'other']) {
    const refused = await stack.api('POST', '/v1/runs', { bot: 'promo-revoked', version: '2.0.1', segment, input: {} });
    expect({ segment, status: refused.status, code: refused.body.error.code }).toEqual({ segment, status: 409, code: 'ORDERLY_E_KEY_REVOKED' });
  }
  await expect(promote('promo-revoked', '2.0.2')).rejects.toMatchObject({ code: 'ORDERLY_E_KEY_REVOKED' });
  expect((await stack.waitForRun(busy.id)).status).toBe('succeeded');
}, 150_000);
