import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { BotName, BotVersion, RunView } from '@orderly/shared';
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

/** A tiny bot with no imports, one folder per version: every version is its own digest. */
function helloBot(version: string): string {
  const dir = join(stack.dataDir, `promo-hello-${version}`);
  mkdirSync(join(dir, 'src'), { recursive: true });
  writeFileSync(join(dir, 'bot.json'), JSON.stringify({
    name: 'promo-hello', version, entry: 'src/index.ts', segments: ['demo', 'other', 'live'],
    input: { type: 'object', properties: { ms: { type: 'integer', minimum: 0, maximum: 10000 } } }, hosts: [], timeoutSeconds: 30, attempts: 1,
  }));
  writeFileSync(join(dir, 'src', 'index.ts'), 'export default { orderlyBot: 1, async run({ input }: { input: { ms?: number } }) { await new Promise((r) => setTimeout(r, input.ms ?? 0)); return { hello: true }; } };\n');
  return dir;
}

const promote = (name: string, version: string, now?: Date) =>
  stack.controlRoom.releases.promote(name as BotName, version as BotVersion, { channel: 'prod', expiresInDays: 1 }, APPROVER, now);

const refusals = async (runId: string) => (await db.query<{ error_code: string }>('SELECT error_code FROM job_refusals WHERE run_id = $1', [runId])).rows.map((r) => r.error_code);

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
  const before = stack.portal.stats().eligibilityChecks;
  const run = await stack.startRun({ bot: 'eligibility-check', segment: 'demo', input: { portalUrl: stack.portal.url, ...MEMBER } });
  await expectRefused(run, 'ORDERLY_E_RELEASE_MISSING');
  expect(stack.portal.stats().eligibilityChecks).toBe(before);
});

test('the control room refuses runs in a production segment for an unpromoted package', async () => {
  await stack.publish(helloBot('1.0.0'));
  const res = await stack.api('POST', '/v1/runs', { bot: 'promo-hello', version: '1.0.0', segment: 'live', input: {} });
  expect({ status: res.status, code: res.body.error.code }).toEqual({ status: 409, code: 'ORDERLY_E_RELEASE_MISSING' });
  const listed = (await stack.api('GET', '/v1/packages')).body.packages.find((p: { name: string; version: string }) => p.name === 'promo-hello' && p.version === '1.0.0');
  expect(listed).toMatchObject({ publishedBy: 'admin', channels: [], runnable: { dev: true, prod: false }, notRunnable: { dev: null, prod: 'ORDERLY_E_RELEASE_MISSING' } });
});

test('separation of duties: the publisher cannot promote; another approver can, and the prod runner then runs it', async () => {
  const self = await stack.api('POST', '/v1/packages/eligibility-check/1.0.0/promote', { channel: 'prod', ticket: 'CHG-1001' });
  expect({ status: self.status, code: self.body.error.code }).toEqual({ status: 403, code: 'ORDERLY_E_SELF_APPROVAL' });
  expect((await stack.api('GET', '/v1/packages/eligibility-check/1.0.0')).body.attestations).toEqual([]);

  const attestation = await stack.controlRoom.releases.promote('eligibility-check' as BotName, '1.0.0' as BotVersion, { channel: 'prod', expiresInDays: 30, ticket: 'CHG-1001' }, APPROVER);
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
  await stack.publish(helloBot('1.0.4'));
  await promote('promo-hello', '1.0.4');
  // Keep the prod runner busy, so the next run is queued (already allowed) when the key is revoked.
  const busy = await stack.startRun({ bot: 'promo-hello', version: '1.0.4', segment: 'demo', input: { ms: 4000 } });
  await stack.waitForRun(busy.id, (r) => r.status === 'active');
  const before = stack.portal.stats().eligibilityChecks;
  const queued = await stack.startRun({ bot: 'eligibility-check', segment: 'demo', input: { portalUrl: stack.portal.url, ...MEMBER } });
  const keyId = (await stack.api('GET', '/v1/keys')).body.keys[0].keyId as string;
  const revoked = await stack.api('POST', `/v1/keys/${keyId}/revoke`);
  expect(revoked.status).toBe(200);
  expect(revoked.body.revokedAt).toEqual(expect.any(String));

  await expectRefused(queued, 'ORDERLY_E_KEY_REVOKED');
  expect(stack.portal.stats().eligibilityChecks).toBe(before);
  const listed = (await stack.api('GET', '/v1/packages')).body.packages as { name: string; publisherKeyRevokedAt: string | null; runnable: object; notRunnable: object }[];
  expect(listed.length).toBeGreaterThan(3);
  for (const pkg of listed) {
    expect({ name: pkg.name, runnable: pkg.runnable, notRunnable: pkg.notRunnable }).toEqual({
      name: pkg.name, runnable: { dev: false, prod: false }, notRunnable: { dev: 'ORDERLY_E_KEY_REVOKED', prod: 'ORDERLY_E_KEY_REVOKED' },
    });
    expect(pkg.publisherKeyRevokedAt).toEqual(revoked.body.revokedAt);
  }
  for (const segment of ['demo', 'other']) {
    const refused = await stack.api('POST', '/v1/runs', { bot: 'promo-hello', version: '1.0.1', segment, input: {} });
    expect({ segment, status: refused.status, code: refused.body.error.code }).toEqual({ segment, status: 409, code: 'ORDERLY_E_KEY_REVOKED' });
  }
  await expect(promote('promo-hello', '1.0.1')).rejects.toMatchObject({ code: 'ORDERLY_E_KEY_REVOKED' });
  expect((await stack.waitForRun(busy.id)).status).toBe('succeeded');
}, 60_000);
