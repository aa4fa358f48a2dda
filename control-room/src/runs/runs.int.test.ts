import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Client } from 'pg';
import { parseControlRoomPublicKeys, runQueueName, verifyJob } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { Stack, startStack } from '../../../test/harness';

/** The runs API against real PostgreSQL and Redis (no runner: jobs stay queued for inspection). */
const MEMBER = { memberId: 'ZZT100200302', dateOfBirth: '1900-02-28' };
let stack: Stack;
let queue: Queue;
let input: Record<string, string>;

beforeAll(async () => {
  stack = await startStack();
  await stack.publish();
  input = { portalUrl: stack.portal.url, ...MEMBER };
  queue = new Queue(runQueueName('demo' as never), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
});
afterAll(async () => {
  await queue.close();
  await stack.close();
});

/** The queued jobs of a run, found by their signed payload (job ids are keyed hashes of the idempotency key). */
async function jobsOfRun(
  runId: string,
  states: Array<'waiting' | 'active' | 'delayed' | 'prioritized' | 'completed'> = ['waiting', 'active', 'delayed', 'prioritized'],
) {
  const signing = parseControlRoomPublicKeys(readFileSync(join(stack.dataDir, 'secrets', 'control-room.pub'), 'utf8')).signing;
  return (await queue.getJobs(states)).filter((job) => {
    try {
      return verifyJob(job.data, signing, 'demo' as never).runId === runId;
    } catch {
      return false;
    }
  });
}

const runCount = async () => (await stack.api('GET', '/v1/runs?limit=500')).body.runs.length as number;

test('a run is queued as a control-room-signed job carrying references, never the input', async () => {
  const run = await stack.startRun({ bot: 'eligibility-check', input, idempotencyKey: 'signed-job-check' });
  expect(run).toMatchObject({ status: 'waiting', segment: 'demo', bot: 'eligibility-check', idempotencyKey: 'signed-job-check' });
  const [job] = await jobsOfRun(run.id);
  expect(job!.id).not.toContain('signed-job-check');
  expect(job).toBeDefined();
  const keys = parseControlRoomPublicKeys(readFileSync(join(stack.dataDir, 'secrets', 'control-room.pub'), 'utf8'));
  const payload = verifyJob(job!.data, keys.signing, 'demo' as never);
  expect(payload).toMatchObject({ runId: run.id, bot: { name: 'eligibility-check', digest: run.digest } });
  // Neither the input nor the idempotency key (which may hold PHI) travels in the queue.
  expect(JSON.stringify(job!.data)).not.toContain(MEMBER.memberId);
  expect(JSON.stringify(payload)).not.toContain('signed-job-check');
  expect(job!.opts.attempts).toBe(3);
});

test('the same idempotency key returns the same run; another input under it is a conflict', async () => {
  const first = await stack.api('POST', '/v1/runs', { bot: 'eligibility-check', input, idempotencyKey: 'same-key-1' });
  const again = await stack.api('POST', '/v1/runs', { bot: 'eligibility-check', input: { ...input } }, undefined);
  expect(first.status).toBe(201);
  expect(again.body.id).not.toBe(first.body.id); // no key: a new run
  const viaHeader = await fetch(`${stack.controlRoom.url}/v1/runs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json', 'idempotency-key': 'same-key-1' },
    body: JSON.stringify({ bot: 'eligibility-check', input }),
  });
  expect(viaHeader.status).toBe(200);
  expect(((await viaHeader.json()) as { id: string }).id).toBe(first.body.id);
  const conflict = await stack.api('POST', '/v1/runs', {
    bot: 'eligibility-check',
    input: { ...input, memberId: 'ZZT100200303' },
    idempotencyKey: 'same-key-1',
  });
  expect(conflict.status).toBe(409);
  expect(conflict.body.error.code).toBe('ORDERLY_E_IDEMPOTENCY_KEY_REUSED');
  expect(JSON.stringify(conflict.body)).not.toContain('ZZT100200303');
});

test('the same run created 100 times concurrently with one key is one run and one job', async () => {
  const responses = await Promise.all(
    Array.from({ length: 100 }, () => stack.api('POST', '/v1/runs', { bot: 'eligibility-check', input, idempotencyKey: 'concurrent-100' })),
  );
  const ids = new Set(responses.map((r) => r.body.id));
  expect(ids.size).toBe(1);
  expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
  expect(responses.every((r) => r.status === 201 || r.status === 200)).toBe(true);
  const jobs = await jobsOfRun([...ids][0] as string);
  expect(jobs).toHaveLength(1);
});

test('a batch creates every run in one request', async () => {
  const res = await stack.api('POST', '/v1/runs/batch', { runs: [1, 2, 3].map((n) => ({ bot: 'eligibility-check', input, idempotencyKey: `batch-${n}` })) });
  expect(res.status).toBe(201);
  expect(res.body.runs.map((r: { idempotencyKey: string; created: boolean }) => [r.idempotencyKey, r.created])).toEqual([
    ['batch-1', true],
    ['batch-2', true],
    ['batch-3', true],
  ]);
  for (const r of res.body.runs as Array<{ id: string }>) expect(await jobsOfRun(r.id)).toHaveLength(1);
});

describe('bad requests: stable code, no run stored, no value echoed', () => {
  test.each([
    ['an unknown bot', { bot: 'no-such-bot', input: {} }, 404, 'ORDERLY_E_BOT_UNKNOWN'],
    ['an unknown segment', { bot: 'eligibility-check', segment: 'nowhere' }, 400, 'ORDERLY_E_SEGMENT_UNKNOWN'],
    ['a segment the bot may not run in', { bot: 'eligibility-check', segment: 'other' }, 400, 'ORDERLY_E_SEGMENT_UNKNOWN'],
    ['an invalid segment name', { bot: 'eligibility-check', segment: 'Bad:Segment' }, 400, 'ORDERLY_E_BAD_REQUEST'],
    ['input with an undeclared field', { bot: 'eligibility-check', extra: { ssnLike: 'ZZT-LEAK-1' } }, 400, 'ORDERLY_E_INPUT_INVALID'],
    ['input with a malformed date', { bot: 'eligibility-check', extra: { dateOfBirth: 'ZZT-LEAK-2' } }, 400, 'ORDERLY_E_INPUT_INVALID'],
    ['an idempotency key with a colon', { bot: 'eligibility-check', idempotencyKey: 'a:b' }, 400, 'ORDERLY_E_IDEMPOTENCY_KEY_INVALID'],
    ['an unknown top-level field', { bot: 'eligibility-check', surprise: true }, 400, 'ORDERLY_E_BAD_REQUEST'],
  ])('%s', async (_name, request, status, code) => {
    const before = await runCount();
    const { extra, ...rest } = request as { extra?: Record<string, string> };
    const body = { input: { ...input, ...extra }, ...rest };
    const res = await stack.api('POST', '/v1/runs', body);
    expect({ status: res.status, code: res.body.error?.code }).toEqual({ status, code });
    expect(JSON.stringify(res.body)).not.toMatch(/ZZT-LEAK|ZZT100200302/);
    expect(await runCount()).toBe(before);
  });
});

describe('access', () => {
  const runnerToken = (segment: string) => readFileSync(join(stack.dataDir, 'secrets', `runner-${segment}.token`), 'utf8').trim();

  test('no token is 401; a runner token on an operator route is 403; an admin token on a runner route is 403', async () => {
    expect((await stack.api('GET', '/v1/runs', undefined, '')).body.error.code).toBe('ORDERLY_E_UNAUTHENTICATED');
    expect((await stack.api('GET', '/v1/runs', undefined, 'Bearer-not-a-token-at-all-xxxxxxxx')).status).toBe(401);
    const asRunner = await stack.api('GET', '/v1/runs', undefined, runnerToken('demo'));
    expect({ status: asRunner.status, code: asRunner.body.error.code }).toEqual({ status: 403, code: 'ORDERLY_E_FORBIDDEN' });
    const run = await stack.startRun({ bot: 'eligibility-check', input });
    const asAdmin = await stack.api('POST', `/v1/runner/runs/${run.id}/claim`, { attempt: 1, runnerId: 'x' });
    expect(asAdmin.status).toBe(403);
  });

  test("a runner claims only its own segment's runs, and the claim hands over the input", async () => {
    const run = await stack.startRun({ bot: 'eligibility-check', input });
    const other = await stack.api('POST', `/v1/runner/runs/${run.id}/claim`, { runnerId: 'r-other' }, runnerToken('other'));
    expect({ status: other.status, code: other.body.error.code }).toEqual({ status: 403, code: 'ORDERLY_E_FORBIDDEN' });
    const own = await stack.api('POST', `/v1/runner/runs/${run.id}/claim`, { runnerId: 'r-demo' }, runnerToken('demo'));
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ runId: run.id, attempt: 1, final: false, input });
    // The bot declares credentials: the claim carries a grant, never a SecretID.
    expect(own.body.credentials).toEqual({ roleName: 'orderly-bot-eligibility-check.v1.0.0', roleId: expect.any(String), wrappingToken: expect.any(String) });
    expect((await stack.api('GET', `/v1/runs/${run.id}`)).body.status).toBe('active');
  });

  test('health and readiness are public and check the database and Redis', async () => {
    expect((await stack.api('GET', '/healthz', undefined, '')).body).toEqual({ status: 'ok' });
    expect((await stack.api('GET', '/readyz', undefined, '')).body).toEqual({ status: 'ready', database: 'ok', redis: 'ok' });
    expect((await stack.api('GET', '/nope', undefined, '')).body.error.code).toBe('ORDERLY_E_NOT_FOUND');
  });
});

test("after the idempotency window, a finished run's key starts a new run; within it, the first run is returned", async () => {
  const key = 'window-key-1';
  const first = await stack.startRun({ bot: 'eligibility-check', input, idempotencyKey: key });
  // The run ends; its job completes in BullMQ (kept there under the key for a while).
  const db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  try {
    await db.query("UPDATE runs SET status = 'succeeded', finished_at = now() WHERE id = $1", [first.id]);
    const worker = new Worker(queue.name, async () => ({ ok: true }), {
      connection: { url: TEST_REDIS_URL, maxRetriesPerRequest: null },
      prefix: stack.prefix,
    });
    await waitFor(async () => ((await jobsOfRun(first.id, ['completed'])).length ? true : undefined), 10_000, 'the old job to complete');
    await worker.close();
    const within = await stack.api('POST', '/v1/runs', { bot: 'eligibility-check', input, idempotencyKey: key });
    expect([within.status, within.body.id]).toEqual([200, first.id]);

    await db.query("UPDATE runs SET finished_at = now() - interval '8 days' WHERE id = $1", [first.id]);
    const after = await stack.api('POST', '/v1/runs', { bot: 'eligibility-check', input, idempotencyKey: key });
    expect(after.status).toBe(201);
    expect(after.body.id).not.toBe(first.id);
    const old = (await db.query<{ idempotency_key: string; status: string }>('SELECT idempotency_key, status FROM runs WHERE id = $1', [first.id])).rows[0];
    expect(old).toEqual({ idempotency_key: `${key}~${first.id}`, status: 'succeeded' });
    // The new run's job is queued under the key, not swallowed by the old job's id.
    expect(await jobsOfRun(after.body.id)).toHaveLength(1);
  } finally {
    await db.end();
  }
});
