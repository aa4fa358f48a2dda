import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { generateSigningKeyPair, JOB_PAYLOAD_TYPE, loadPrivateKey, runQueueName, signEnvelope, signJob } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { keyedHasher } from '@orderly/control-room';
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

  for (const [where, text] of [
    ['redis', await dumpRedis(stack.redis, stack.prefix)],
    ['database', await dumpDatabase(stack.databaseUrl!)],
    ['process logs', stack.log.text()],
  ] as const) {
    expect({ where, leaked: text.includes(MEMBER.memberId) || text.includes(MEMBER.dateOfBirth) }).toEqual({ where, leaked: false });
  }
});

test('an unknown member is a business failure: not retried', async () => {
  const created = await stack.startRun({
    bot: 'eligibility-check',
    input: { portalUrl: stack.portal.url, memberId: 'ZZT999999999', dateOfBirth: '1900-12-31' },
  });
  const run = await stack.waitForRun(created.id);
  expect(run.status).toBe('failed');
  expect(run.attempts).toBe(1);
  expect(run.error?.code).toBe('ORDERLY_E_BOT_BUSINESS');
});

test('the sandboxed bot cannot read the runner credentials, runs as another user, and cannot leave its allow-list', async () => {
  await stack.publish(fixtureBot('snoop'));
  const secrets = join(stack.dataDir, 'secrets');
  const probes = [join(secrets, 'runner-demo.token'), join(secrets, 'runner-demo.key'), join(secrets, 'admin.token'), join(secrets, 'signing.key')];
  const forbiddenUrl = stack.portal.url.replace('127.0.0.1', 'localhost');
  const created = await stack.startRun({ bot: 'snoop', input: { portalUrl: stack.portal.url, forbiddenUrl, probePaths: probes.join(',') } });
  const run = await stack.waitForRun(created.id);
  expect({ status: run.status, error: run.error }).toEqual({ status: 'succeeded', error: undefined });
  const result = run.result as { env: Record<string, string>; uid: number; files: Record<string, string>; forbidden: string; title: string };
  // Nothing of the runner's environment: the sandbox's own basics and its egress proxy only.
  const proxy = ['ALL_PROXY', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY'];
  expect(Object.keys(result.env).sort()).toEqual([...proxy, 'HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR', ...proxy.map((p) => p.toLowerCase())].sort());
  for (const name of proxy) expect(result.env[name] ?? '').toMatch(/^(http:\/\/127\.0\.0\.1:\d+)?$/);
  expect(result.uid).not.toBe(process.getuid?.());
  for (const path of probes) expect({ path, outcome: result.files[path]!.slice(0, 7) }).toEqual({ path, outcome: 'DENIED:' });
  // The bot's parent is the sandbox's own init: its environment is the sandbox's, not the runner's.
  expect(result.files['/proc/1/environ']).not.toMatch(/ORDERLY_|REDIS_URL|VAULT/);
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

  // job_refusals keeps job ids as keyed hashes (they may be idempotency keys): the test holds the data key.
  const dataKey = () => Buffer.from(readFileSync(join(stack.dataDir, 'secrets', 'data.key'), 'utf8').trim(), 'base64');
  const refusals = async (jobId: string) =>
    (await db.query('SELECT error_code, run_id, reason FROM job_refusals WHERE job_id = $1', [keyedHasher(dataKey())(jobId)])).rows;

  test('a job pushed straight into Redis is refused, reported and never run', async () => {
    const before = stack.portal.stats().eligibilityChecks;
    await queue.add('run', { envelope: { payloadType: 'x', payload: 'eyJ2IjoxfQ==', signatures: [{ keyid: 'k', sig: 'c2ln' }] } }, { jobId: 'forged-plain' });
    await queue.add('run', { runId: 'anything', input: MEMBER }, { jobId: 'forged-raw' });
    const attacker = loadPrivateKey(generateSigningKeyPair().privateKeyPem);
    const victim = await stack.startRun({
      bot: 'eligibility-check',
      input: { portalUrl: stack.portal.url, ...MEMBER },
      segment: 'demo',
      idempotencyKey: 'forged-victim',
    });
    const forgedPayload = {
      v: 1,
      runId: victim.id,
      jobId: `job-${'f'.repeat(32)}`,
      segment: 'demo',
      bot: { name: 'eligibility-check', version: '1.0.0', digest: victim.digest },
      publisherKeyId: 'a'.repeat(64),
      issuedAt: new Date().toISOString(),
      notAfter: new Date(Date.now() + 60_000).toISOString(),
    };
    await queue.add('run', { envelope: signEnvelope(JOB_PAYLOAD_TYPE, Buffer.from(JSON.stringify(forgedPayload)), attacker) }, { jobId: 'forged-signed' });
    for (const jobId of ['forged-plain', 'forged-raw', 'forged-signed']) {
      const rows = await waitFor(async () => ((await refusals(jobId)).length ? refusals(jobId) : undefined), 15_000, `refusal of ${jobId}`);
      expect(rows[0]).toMatchObject({ error_code: 'ORDERLY_E_JOB_FORGED', run_id: null });
    }
    await stack.waitForRun(victim.id); // the genuine job for the victim run still runs, once
    expect(stack.portal.stats().eligibilityChecks).toBe(before + 1);
  }, 80_000);

  /** A control-room-signed job for `run`, as the control room would sign it, with a job id of its own. */
  function genuineJob(run: { id: string; bot: string; version: string; digest: string }, segment: string, publisherKeyId: string, ttlMs: number) {
    const signingKey = loadPrivateKey(readFileSync(join(stack.dataDir, 'secrets', 'signing.key'), 'utf8'));
    return signJob(
      {
        v: 1,
        runId: run.id as never,
        jobId: `job-${'0'.repeat(32)}`,
        segment: segment as never,
        bot: { name: run.bot as never, version: run.version as never, digest: run.digest as never },
        publisherKeyId: publisherKeyId as never,
        issuedAt: new Date(Date.now() - 120_000).toISOString(),
        notAfter: new Date(Date.now() + ttlMs).toISOString(),
      },
      signingKey,
    );
  }
  const publisherKeyOf = async (bot: string) =>
    (await stack.api('GET', '/v1/packages')).body.packages.find((p: { name: string }) => p.name === bot).publisherKeyId as string;
  /** The run's own job, taken off its queue before any runner serves that queue. */
  async function takeOwnJob(segment: string, runId: string): Promise<void> {
    const own = new Queue(runQueueName(segment as never), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
    try {
      const job = (await own.getWaiting()).find((j) => JSON.parse(Buffer.from(j.data.envelope.payload, 'base64').toString('utf8')).runId === runId);
      expect(job).toBeDefined();
      await job!.remove();
    } finally {
      await own.close();
    }
  }

  test("an expired control-room-signed job is refused by its segment's runner and its run dead-lettered, not left waiting", async () => {
    // The run waits in segment `other`, which no runner serves yet; its own job is taken away and an
    // expired one put in its place, then a runner of `other` starts.
    const run = await stack.startRun({ bot: 'sleepy', input: {}, segment: 'other' });
    await takeOwnJob('other', run.id);
    const otherQueue = new Queue(runQueueName('other' as never), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
    await otherQueue.add('run', genuineJob(run, 'other', await publisherKeyOf('sleepy'), -60_000), { jobId: `expired-${run.id}` });
    await otherQueue.close();
    const otherRunner = await stack.startRunner({ segment: 'other' });
    try {
      const ended = await stack.waitForRun(run.id);
      expect(ended.status).toBe('dead_lettered');
      expect(ended.error?.code).toBe('ORDERLY_E_JOB_EXPIRED');
    } finally {
      await otherRunner.close();
    }
  });

  test("a genuine job copied into another segment's queue is refused there as a security event; its run is untouched and still runs in its segment", async () => {
    // No runner serves `other` now; the demo runner finds the other run's genuine envelope.
    const run = await stack.startRun({ bot: 'sleepy', input: {}, segment: 'other' });
    const copied = `copied-${run.id}`;
    await queue.add('run', genuineJob(run, 'other', await publisherKeyOf('sleepy'), 60_000), { jobId: copied });
    const [row] = await waitFor(async () => ((await refusals(copied)).length ? refusals(copied) : undefined), 15_000, 'the refusal of the copied job');
    expect(row).toMatchObject({
      error_code: 'ORDERLY_E_JOB_WRONG_SEGMENT',
      run_id: run.id,
      reason: expect.stringMatching(/^security: refused by a runner of segment demo for a run of another segment; the run was left untouched/),
    });
    // The security event is written after the refusal row and before anything could touch the run.
    const security = await waitFor(
      async () => {
        const rows = (await db.query("SELECT actor FROM audit_events WHERE action = 'security.job_crossed_segments' AND target = $1", [run.id])).rows;
        return rows.length ? rows : undefined;
      },
      15_000,
      'the security event',
    );
    expect(security).toEqual([{ actor: 'runner:demo' }]);
    expect((await stack.api('GET', `/v1/runs/${run.id}`)).body).toMatchObject({ status: 'waiting', attempts: 0 });
    // Its own segment's runner still runs it (the sleepy bot then times out, as it always does).
    await stack.startRunner({ segment: 'other' });
    expect(await stack.waitForRun(run.id)).toMatchObject({
      status: 'dead_lettered',
      attempts: 1,
      error: expect.objectContaining({ code: 'ORDERLY_E_BOT_TIMEOUT' }),
    });
  }, 90_000);
});
