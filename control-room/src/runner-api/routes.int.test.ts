import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { TEST_REDIS_URL } from '@orderly/shared/testing';
import { Stack, startStack } from '../../../test/harness';
import { dlqQueueName } from '../runs/queues';

/** The runner API's attempt accounting and step checkpoints, against real PostgreSQL and Redis (no runner). */
const MEMBER = { memberId: 'ZZT100200302', dateOfBirth: '1900-02-28' };
let stack: Stack;
let db: Client;
let demoToken: string;
let otherToken: string;
let keySeq = 0;

beforeAll(async () => {
  stack = await startStack();
  await stack.publish();
  demoToken = readFileSync(join(stack.dataDir, 'secrets', 'runner-demo.token'), 'utf8').trim();
  otherToken = readFileSync(join(stack.dataDir, 'secrets', 'runner-other.token'), 'utf8').trim();
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
}, 60_000);
afterAll(async () => {
  await db.end();
  await stack.close();
});

const newRun = () => stack.startRun({ bot: 'eligibility-check', input: { portalUrl: stack.portal.url, ...MEMBER }, idempotencyKey: `runner-api-${++keySeq}` });
/** The fencing token of each claimed attempt (`<run>/<attempt>`), as its runner would hold it. */
const fences = new Map<string, string>();
const fenceOf = (id: string, attempt: number) => fences.get(`${id}/${attempt}`) ?? 'no-claim-no-fence-000000';
const claim = async (id: string, token = demoToken) => {
  const res = await stack.api('POST', `/v1/runner/runs/${id}/claim`, { runnerId: 'routes-test' }, token);
  if (res.status === 200 && typeof res.body.fence === 'string') fences.set(`${id}/${res.body.attempt}`, res.body.fence);
  return res;
};
/** The runner of the current attempt dies: its lease runs out (made to, here), then the job is redelivered. */
const redeliver = async (id: string) => {
  await db.query("UPDATE run_attempts SET lease_expires_at = now() - interval '1 second' WHERE run_id = $1 AND finished_at IS NULL", [id]);
  return claim(id);
};
const begin = (id: string, attempt: number, name: string, rerun = false, token = demoToken, fence = fenceOf(id, attempt)) =>
  stack.api('POST', `/v1/runner/runs/${id}/steps/begin`, { attempt, fence, name, rerun }, token);
const complete = (id: string, attempt: number, name: string, result?: unknown, token = demoToken, fence = fenceOf(id, attempt)) =>
  stack.api('POST', `/v1/runner/runs/${id}/steps/complete`, { attempt, fence, name, ...(result === undefined ? {} : { result }) }, token);
const attemptRow = async (id: string, attempt: number) =>
  (
    await db.query<{ outcome: string | null; error: { code: string } | null; finished_at: Date | null }>(
      'SELECT * FROM run_attempts WHERE run_id = $1 AND attempt = $2',
      [id, attempt],
    )
  ).rows[0];

test('the claim numbers attempts; a lost attempt is recorded and deferred, and losing the last one dead-letters the run', async () => {
  const run = await newRun();
  const first = await claim(run.id);
  expect(first.status).toBe(200);
  expect(first.body).toMatchObject({ attempt: 1, final: false });

  // The runner died: the redelivered job's claim records attempt 1 lost and asks for the backoff.
  const redelivered = await redeliver(run.id);
  expect(redelivered.body).toEqual({ runId: run.id, lostAttempt: 1, retryInMs: expect.any(Number) });
  expect(redelivered.body.retryInMs).toBeGreaterThanOrEqual(500);
  expect(redelivered.body.retryInMs).toBeLessThan(1000);
  expect(await attemptRow(run.id, 1)).toMatchObject({ outcome: 'failed', error: { code: 'ORDERLY_E_ATTEMPT_LOST' }, finished_at: expect.any(Date) });
  expect((await stack.api('GET', `/v1/runs/${run.id}`)).body).toMatchObject({ status: 'waiting', attempts: 1, error: { code: 'ORDERLY_E_ATTEMPT_LOST' } });

  expect((await claim(run.id)).body).toMatchObject({ attempt: 2, final: false });
  expect((await redeliver(run.id)).body).toMatchObject({ lostAttempt: 2 });
  expect((await claim(run.id)).body).toMatchObject({ attempt: 3, final: true });
  const exhausted = await redeliver(run.id);
  expect(exhausted.status).toBe(409);
  expect(exhausted.body.error.code).toBe('ORDERLY_E_RUN_NOT_CLAIMABLE');
  expect((await stack.api('GET', `/v1/runs/${run.id}`)).body).toMatchObject({
    status: 'dead_lettered',
    attempts: 3,
    error: { code: 'ORDERLY_E_ATTEMPT_LOST' },
  });
  const dlq = new Queue(dlqQueueName('demo'), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
  try {
    expect((await dlq.getJob(run.id))?.data).toMatchObject({ runId: run.id, errorCode: 'ORDERLY_E_ATTEMPT_LOST', attempts: 3 });
  } finally {
    await dlq.close();
  }
  // Once dead-lettered, nothing more is claimed.
  expect((await claim(run.id)).body.error.code).toBe('ORDERLY_E_RUN_NOT_CLAIMABLE');
});

test('a step is begun and completed by the current attempt; its result is sealed at rest and returned on the next attempt', async () => {
  const run = await newRun();
  expect((await claim(run.id)).body.attempt).toBe(1);
  expect((await begin(run.id, 1, 'submit-claim')).body).toEqual({ state: 'new' });
  expect((await begin(run.id, 1, 'submit-claim')).body).toEqual({ state: 'new' }); // a repeated begin of the same attempt
  const marker = 'CLM-SEALED-4711';
  expect((await complete(run.id, 1, 'submit-claim', { ref: marker })).status).toBe(204);
  expect((await complete(run.id, 1, 'submit-claim', { ref: marker })).status).toBe(204); // repeated complete
  expect((await begin(run.id, 1, 'wait')).body).toEqual({ state: 'new' });

  const stored = await db.query<{ status: string; result_sealed: unknown }>(
    "SELECT status, result_sealed FROM run_steps WHERE run_id = $1 AND name = 'submit-claim'",
    [run.id],
  );
  expect(stored.rows[0]?.status).toBe('done');
  expect(JSON.stringify(stored.rows[0]?.result_sealed)).not.toContain(marker);

  // Attempt 1 dies in "wait"; attempt 2 skips submit-claim and finds wait uncertain.
  expect((await redeliver(run.id)).body).toMatchObject({ lostAttempt: 1 });
  expect((await claim(run.id)).body.attempt).toBe(2);
  expect((await begin(run.id, 2, 'submit-claim')).body).toEqual({ state: 'done', result: { ref: marker } });
  expect((await begin(run.id, 2, 'wait')).body).toEqual({ state: 'uncertain' });
  expect((await begin(run.id, 2, 'wait')).body).toEqual({ state: 'uncertain' }); // asking again changes nothing
  expect((await complete(run.id, 2, 'wait')).body.error.code).toBe('ORDERLY_E_STEP_INVALID'); // not taken over
  expect((await begin(run.id, 2, 'wait', true)).body).toEqual({ state: 'new' });
  expect((await complete(run.id, 2, 'wait')).status).toBe(204);
  expect((await begin(run.id, 2, 'wait')).body).toEqual({ state: 'done' });
});

test('stale attempts, other segments, inactive runs and bad names are refused with stable codes', async () => {
  const run = await newRun();
  // Not active yet.
  const waiting = await begin(run.id, 1, 'submit-claim');
  expect([waiting.status, waiting.body.error.code]).toEqual([409, 'ORDERLY_E_RUN_NOT_CLAIMABLE']);
  await claim(run.id);

  const otherSegment = await begin(run.id, 1, 'submit-claim', false, otherToken);
  expect([otherSegment.status, otherSegment.body.error.code]).toEqual([403, 'ORDERLY_E_FORBIDDEN']);
  expect((await claim(run.id, otherToken)).body.error.code).toBe('ORDERLY_E_FORBIDDEN');

  const future = await begin(run.id, 2, 'submit-claim');
  expect([future.status, future.body.error.code]).toEqual([409, 'ORDERLY_E_ATTEMPT_STALE']);

  expect((await begin(run.id, 1, 'submit-claim')).body).toEqual({ state: 'new' });
  // The runner of attempt 1 stalls; a redelivery records it lost and attempt 2 takes over.
  await redeliver(run.id);
  await claim(run.id);
  const stale = await complete(run.id, 1, 'submit-claim', { ref: 'late' });
  expect([stale.status, stale.body.error.code]).toEqual([409, 'ORDERLY_E_ATTEMPT_STALE']);
  expect((await begin(run.id, 1, 'other')).body.error.code).toBe('ORDERLY_E_ATTEMPT_STALE');

  for (const name of ['', 'has space', '../x', 'x'.repeat(101)]) {
    const bad = await begin(run.id, 2, name);
    expect([name, bad.status, bad.body.error.code]).toEqual([name, 400, 'ORDERLY_E_BAD_REQUEST']);
  }
  expect((await begin(run.id, 2, 'big')).body).toEqual({ state: 'new' });
  const big = await complete(run.id, 2, 'big', 'x'.repeat(70 * 1024));
  expect([big.status, big.body.error.code]).toEqual([400, 'ORDERLY_E_STEP_INVALID']);

  const missing = await begin('00000000-0000-4000-8000-000000000000', 1, 'submit-claim');
  expect([missing.status, missing.body.error.code]).toEqual([404, 'ORDERLY_E_NOT_FOUND']);
  // A finished run takes no more checkpoints.
  await db.query("UPDATE runs SET status = 'succeeded', finished_at = now() WHERE id = $1", [run.id]);
  expect((await begin(run.id, 2, 'after')).body.error.code).toBe('ORDERLY_E_RUN_NOT_CLAIMABLE');
});

describe('fencing: attempt leases and tokens', () => {
  const renew = (id: string, attempt: number, fence = fenceOf(id, attempt)) => stack.api('POST', `/v1/runner/runs/${id}/renew`, { attempt, fence }, demoToken);
  const leaseRow = async (id: string, attempt: number) =>
    (
      await db.query<{ fence: string; lease_ms: number; expires_in_ms: number; finished_at: Date | null; runner_id: string }>(
        'SELECT fence, lease_ms, finished_at, runner_id, (EXTRACT(EPOCH FROM (lease_expires_at - now())) * 1000)::float8 AS expires_in_ms FROM run_attempts WHERE run_id = $1 AND attempt = $2',
        [id, attempt],
      )
    ).rows[0]!;

  test('a second claim while the lease is alive is refused with ORDERLY_E_RUN_ALREADY_ACTIVE, changes nothing and is audited', async () => {
    const run = await newRun();
    const first = await stack.api('POST', `/v1/runner/runs/${run.id}/claim`, { runnerId: 'routes-test', leaseMs: 20_000 }, demoToken);
    expect(first.body).toMatchObject({ attempt: 1, leaseMs: 20_000, fence: expect.stringMatching(/^[A-Za-z0-9_-]{22,64}$/) });
    const before = await leaseRow(run.id, 1);
    expect(before.fence).toBe(first.body.fence);
    expect(before.expires_in_ms).toBeGreaterThan(15_000);

    const duplicate = await claim(run.id);
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.error).toMatchObject({ code: 'ORDERLY_E_RUN_ALREADY_ACTIVE', retryable: true, details: { activeAttempt: 1 } });
    expect(duplicate.body.error.details.retryInMs).toBeGreaterThan(15_000);
    expect(duplicate.body.error.details.retryInMs).toBeLessThanOrEqual(20_000);
    // Nothing moved: same attempt, same token, still unfinished, the run still active on attempt 1.
    expect(await leaseRow(run.id, 1)).toMatchObject({ fence: first.body.fence, finished_at: null, runner_id: 'routes-test' });
    expect((await stack.api('GET', `/v1/runs/${run.id}`)).body).toMatchObject({ status: 'active', attempts: 1 });
    const audited = await db.query<{ outcome: string; details: Record<string, unknown> }>(
      "SELECT outcome, details FROM audit_events WHERE action = 'run.claim' AND target = $1 ORDER BY seq",
      [run.id],
    );
    expect(audited.rows.map((r) => r.outcome)).toEqual(['success', 'failure']);
    expect(audited.rows[1]!.details).toMatchObject({ code: 'ORDERLY_E_RUN_ALREADY_ACTIVE', status: 409, activeAttempt: 1, runnerId: 'routes-test' });
  });

  test('renewal extends the lease of the current claim only; a lapsed lease makes the next claim a lost-attempt takeover', async () => {
    const run = await newRun();
    await stack
      .api('POST', `/v1/runner/runs/${run.id}/claim`, { runnerId: 'routes-test', leaseMs: 5000 }, demoToken)
      .then((r) => fences.set(`${run.id}/1`, r.body.fence));
    await db.query("UPDATE run_attempts SET lease_expires_at = now() + interval '1 second' WHERE run_id = $1", [run.id]);
    expect((await renew(run.id, 1)).body).toEqual({ leaseMs: 5000 });
    expect((await leaseRow(run.id, 1)).expires_in_ms).toBeGreaterThan(4000);
    const wrong = await renew(run.id, 1, 'A'.repeat(24));
    expect([wrong.status, wrong.body.error.code]).toEqual([409, 'ORDERLY_E_ATTEMPT_STALE']);
    const future = await renew(run.id, 2, fenceOf(run.id, 1));
    expect(future.body.error.code).toBe('ORDERLY_E_ATTEMPT_STALE');

    // Attempt 1's runner stops renewing: once its lease has lapsed, the redelivery takes over.
    expect((await redeliver(run.id)).body).toMatchObject({ lostAttempt: 1 });
    const second = await claim(run.id);
    expect(second.body.attempt).toBe(2);
    expect(second.body.fence).not.toBe(fenceOf(run.id, 1));
    // The replaced attempt's runner is told so at its next renewal (and stops its bot).
    expect((await renew(run.id, 1)).body.error.code).toBe('ORDERLY_E_ATTEMPT_STALE');
    expect((await renew(run.id, 2)).status).toBe(200);
  });

  test("step and credential-lease writes with another claim's token are refused, and nothing is recorded", async () => {
    const run = await newRun();
    await claim(run.id);
    const foreign = 'B'.repeat(24);
    const began = await begin(run.id, 1, 'submit-claim', false, demoToken, foreign);
    expect([began.status, began.body.error.code]).toEqual([409, 'ORDERLY_E_ATTEMPT_STALE']);
    expect((await db.query('SELECT 1 FROM run_steps WHERE run_id = $1', [run.id])).rowCount).toBe(0);
    expect((await begin(run.id, 1, 'submit-claim')).body).toEqual({ state: 'new' });
    const completed = await complete(run.id, 1, 'submit-claim', { ref: 'forged' }, demoToken, foreign);
    expect(completed.body.error.code).toBe('ORDERLY_E_ATTEMPT_STALE');
    expect((await db.query<{ status: string }>('SELECT status FROM run_steps WHERE run_id = $1', [run.id])).rows).toEqual([{ status: 'started' }]);
    const leased = await stack.api('POST', `/v1/runner/runs/${run.id}/lease`, { attempt: 1, fence: foreign, accessor: 'accessor-forged' }, demoToken);
    expect([leased.status, leased.body.error.code]).toEqual([409, 'ORDERLY_E_ATTEMPT_STALE']);
    expect((await db.query('SELECT 1 FROM run_leases WHERE run_id = $1', [run.id])).rowCount).toBe(0);
    expect(
      (await stack.api('POST', `/v1/runner/runs/${run.id}/lease`, { attempt: 1, fence: fenceOf(run.id, 1), accessor: 'accessor-real' }, demoToken)).status,
    ).toBe(204);
    // A write without a token is malformed.
    const bare = await stack.api('POST', `/v1/runner/runs/${run.id}/steps/begin`, { attempt: 1, name: 'x' }, demoToken);
    expect([bare.status, bare.body.error.code]).toEqual([400, 'ORDERLY_E_BAD_REQUEST']);
  });
});
