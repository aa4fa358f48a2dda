import { Queue } from 'bullmq';
import { Client } from 'pg';
import { runQueueName, SegmentName } from '@orderly/shared';
import { waitFor } from '@orderly/shared/testing';
import { OwnRedis, startOwnRedis } from '../../../test/faults';
import { runJobId, Stack, startStack } from '../../../test/harness';
import { ENQUEUE_TIMEOUT_MS } from './creation';

/**
 * POST /v1/runs while Redis is down (issue 12): the run is stored in PostgreSQL first, so the
 * request answers within the enqueue bound (201, the run `waiting`, not yet queued) instead of
 * waiting for Redis; once Redis is back the job is queued exactly once.
 */
let redis: OwnRedis;
let stack: Stack;
let db: Client;
beforeAll(async () => {
  redis = await startOwnRedis();
  stack = await startStack({ redisUrl: redis.url });
  await stack.publish();
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
}, 120_000);
afterAll(async () => {
  if (!redis.running) await redis.start();
  await db?.end();
  await stack?.close();
  await redis?.close();
});

const enqueuedAt = async (id: string) =>
  (await db.query<{ enqueued_at: Date | null; status: string }>('SELECT enqueued_at, status FROM runs WHERE id = $1', [id])).rows[0]!;

test('with Redis killed, a create answers 201 within the bound; the job is queued once Redis is back', async () => {
  await redis.kill();
  const started = Date.now();
  const res = await stack.api('POST', '/v1/runs', {
    bot: 'eligibility-check',
    input: { portalUrl: stack.portal.url, memberId: 'ZZT100200305', dateOfBirth: '1900-04-30' },
    idempotencyKey: 'redis-down-1',
  });
  const ms = Date.now() - started;
  expect({ status: res.status, runStatus: res.body.status }).toEqual({ status: 201, runStatus: 'waiting' });
  expect(ms).toBeLessThan(ENQUEUE_TIMEOUT_MS + 3000);
  // Stored, not queued: the state the pending sweep takes up.
  expect(await enqueuedAt(res.body.id)).toEqual({ enqueued_at: null, status: 'waiting' });
  // The same key again while Redis is still down: the same run, answered as promptly.
  const again = await stack.api('POST', '/v1/runs', {
    bot: 'eligibility-check',
    input: { portalUrl: stack.portal.url, memberId: 'ZZT100200305', dateOfBirth: '1900-04-30' },
    idempotencyKey: 'redis-down-1',
  });
  expect([again.status, again.body.id]).toEqual([200, res.body.id]);

  await redis.start();
  await waitFor(async () => ((await enqueuedAt(res.body.id)).enqueued_at ? true : undefined), 60_000, 'the run to be queued once Redis is back');
  const queue = new Queue(runQueueName('demo' as SegmentName), { connection: { url: redis.url }, prefix: stack.prefix });
  try {
    const jobId = await runJobId(queue, res.body.id);
    expect(await queue.getJob(jobId)).toBeDefined();
    expect((await queue.getJobs(['waiting', 'delayed', 'prioritized', 'active'])).filter((j) => j.id === jobId)).toHaveLength(1);
  } finally {
    await queue.close();
  }
}, 120_000);
