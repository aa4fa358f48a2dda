import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { generateSigningKeyPair, JOB_PAYLOAD_TYPE, loadPrivateKey, runQueueName, signEnvelope, signJob } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { dumpDatabase, dumpRedis, REPO, Stack, startStack } from '../harness';

/**
 * The walking skeleton end to end: signed package → control room → BullMQ → runner → bot host
 * with real Chromium → sealed report → recorded outcome. Real Redis, PostgreSQL and Chromium.
 */
const MEMBER = { memberId: 'ZZT100200301', dateOfBirth: '1900-01-15' };
let stack: Stack;
let db: Client;

beforeAll(async () => {
  stack = await startStack({ runner: true });
  await stack.publish();
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
}, 60_000);

afterAll(async () => {
  await db?.end();
  await stack?.close();
});

const fixtureBot = (name: string) => join(REPO, 'test', 'fixtures', 'bots', name);

test('a published bot runs in Chromium and its result is recorded; no PHI in Redis, the database or logs', async () => {
  const created = await stack.startRun({ bot: 'eligibility-check', input: { portalUrl: stack.portal.url, ...MEMBER } });
  expect(created.status).toBe('waiting');
  const run = await stack.waitForRun(created.id);
  expect(run).toMatchObject({ status: 'succeeded', attempts: 1, result: { coverage: 'Active', plan: 'Demo Gold PPO' } });
  expect(stack.portal.stats().byIdempotencyKey[created.idempotencyKey]).toBe(1);

  const logs = await stack.api('GET', `/v1/runs/${created.id}/logs`);
  expect(logs.body.lines.map((l: { msg: string }) => l.msg)).toContainEqual(expect.stringContaining('eligibility checked'));

  for (const [where, text] of [['redis', await dumpRedis(stack.redis, stack.prefix)], ['database', await dumpDatabase(stack.databaseUrl!)], ['process logs', stack.log.text()]] as const) {
    expect({ where, leaked: text.includes(MEMBER.memberId) || text.includes(MEMBER.dateOfBirth) }).toEqual({ where, leaked: false });
  }
});

test('an unknown member is a business failure: not retried', async () => {
  const created = await stack.startRun({ bot: 'eligibility-check', input: { portalUrl: stack.portal.url, memberId: 'ZZT999999999', dateOfBirth: '1900-12-31' } });
  const run = await stack.waitForRun(created.id);
  expect(run.status).toBe('failed');
  expect(run.attempts).toBe(1);
  expect(run.error?.code).toBe('ORDERLY_E_BOT_BUSINESS');
});

test('the bot host cannot read the runner credentials, runs as another user, and cannot leave its allow-list', async () => {
  await stack.publish(fixtureBot('snoop'));
  const secrets = join(stack.dataDir, 'secrets');
  const probes = [join(secrets, 'runner-demo.token'), join(secrets, 'admin.token'), join(secrets, 'signing.key')];
  const forbiddenUrl = stack.portal.url.replace('127.0.0.1', 'localhost');
  const created = await stack.startRun({ bot: 'snoop', input: { portalUrl: stack.portal.url, forbiddenUrl, probePaths: probes.join(',') } });
  const run = await stack.waitForRun(created.id);
  expect({ status: run.status, error: run.error }).toEqual({ status: 'succeeded', error: undefined });
  const result = run.result as { env: Record<string, string>; uid: number; files: Record<string, string>; forbidden: string; title: string };
  expect(Object.keys(result.env).sort()).toEqual(['HOME', 'LANG', 'PATH', 'TMPDIR']);
  expect(result.uid).not.toBe(process.getuid?.());
  for (const [path, outcome] of Object.entries(result.files)) expect({ path, outcome: outcome.slice(0, 7) }).toEqual({ path, outcome: 'DENIED:' });
  const runnerToken = readFileSync(probes[0]!, 'utf8').trim();
  expect(JSON.stringify(run)).not.toContain(runnerToken);
  expect(result.forbidden).toMatch(/^BLOCKED:.*ERR_BLOCKED_BY_CLIENT/);
  expect(result.title).toBe('Sign in');
});

test('a bot past its timeout is aborted and dead-lettered with a timeout code', async () => {
  await stack.publish(fixtureBot('sleepy'));
  const created = await stack.startRun({ bot: 'sleepy', input: {} });
  const run = await stack.waitForRun(created.id);
  expect(run.status).toBe('dead_lettered');
  expect(run.error?.code).toBe('ORDERLY_E_BOT_TIMEOUT');
});

describe('jobs that did not come from the control room', () => {
  let queue: Queue;
  beforeAll(() => {
    queue = new Queue(runQueueName('demo' as never), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
  });
  afterAll(() => queue.close());

  const refusals = async (jobId: string) => (await db.query('SELECT error_code, run_id FROM job_refusals WHERE job_id = $1', [jobId])).rows;

  test('a job pushed straight into Redis is refused, reported and never run', async () => {
    const before = stack.portal.stats().eligibilityChecks;
    await queue.add('run', { envelope: { payloadType: 'x', payload: 'eyJ2IjoxfQ==', signatures: [{ keyid: 'k', sig: 'c2ln' }] } }, { jobId: 'forged-plain' });
    await queue.add('run', { runId: 'anything', input: MEMBER }, { jobId: 'forged-raw' });
    const attacker = loadPrivateKey(generateSigningKeyPair().privateKeyPem);
    const victim = await stack.startRun({ bot: 'eligibility-check', input: { portalUrl: stack.portal.url, ...MEMBER }, segment: 'demo', idempotencyKey: 'forged-victim' });
    const forgedPayload = {
      v: 1, runId: victim.id, idempotencyKey: 'forged-signed', segment: 'demo', bot: { name: 'eligibility-check', version: '1.0.0', digest: victim.digest },
      publisherKeyId: 'a'.repeat(64), issuedAt: new Date().toISOString(), notAfter: new Date(Date.now() + 60_000).toISOString(),
    };
    await queue.add('run', { envelope: signEnvelope(JOB_PAYLOAD_TYPE, Buffer.from(JSON.stringify(forgedPayload)), attacker) }, { jobId: 'forged-signed' });
    for (const jobId of ['forged-plain', 'forged-raw', 'forged-signed']) {
      const rows = await waitFor(async () => ((await refusals(jobId)).length ? refusals(jobId) : undefined), 15_000, `refusal of ${jobId}`);
      expect(rows[0]).toMatchObject({ error_code: 'ORDERLY_E_JOB_FORGED', run_id: null });
    }
    await stack.waitForRun(victim.id); // the genuine job for the victim run still runs, once
    expect(stack.portal.stats().eligibilityChecks).toBe(before + 1);
  });

  test.each([
    ['expired', 'demo', -60_000, 'ORDERLY_E_JOB_EXPIRED'],
    ['for another segment', 'other', 60_000, 'ORDERLY_E_JOB_WRONG_SEGMENT'],
  ])('a control-room-signed job that is %s is refused and its run dead-lettered, not left waiting', async (_what, segment, ttlMs, code) => {
    // The run waits in segment `other`, which no runner serves; the job under test goes to `demo`.
    const signingKey = loadPrivateKey(readFileSync(join(stack.dataDir, 'secrets', 'signing.key'), 'utf8'));
    const run = await stack.startRun({ bot: 'sleepy', input: {}, segment: 'other' });
    const pkg = (await stack.api('GET', '/v1/packages')).body.packages.find((p: { name: string }) => p.name === 'sleepy');
    const data = signJob({
      v: 1, runId: run.id, idempotencyKey: run.idempotencyKey, segment: segment as never, bot: { name: run.bot, version: run.version, digest: run.digest },
      publisherKeyId: pkg.publisherKeyId, issuedAt: new Date(Date.now() - 120_000).toISOString(), notAfter: new Date(Date.now() + ttlMs).toISOString(),
    }, signingKey);
    await queue.add('run', data, { jobId: `replayed-${run.id}` });
    const ended = await stack.waitForRun(run.id);
    expect(ended.status).toBe('dead_lettered');
    expect(ended.error?.code).toBe(code);
  });
});
