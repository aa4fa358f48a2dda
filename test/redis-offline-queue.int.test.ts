import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { boundOfflineQueue, isOrderlyError, offlineQueueLength } from '@orderly/shared';
import { waitFor } from '@orderly/shared/testing';
import { OwnRedis, startOwnRedis } from './faults';

/**
 * The bounded offline queue of the control room's and runners' Redis clients, against a real
 * outage: a redis-server of the test's own (never the shared one) SIGKILLed and started again.
 */
const MAX = 50;
let redis: OwnRedis;
let client: Redis;
beforeAll(async () => {
  redis = await startOwnRedis();
  // As the control room and the runner make theirs (BullMQ needs maxRetriesPerRequest: null), with a small bound.
  client = boundOfflineQueue(new Redis(redis.url, { maxRetriesPerRequest: null }), MAX);
  client.on('error', () => undefined);
  expect(await client.ping()).toBe('PONG');
}, 30_000);
afterAll(async () => {
  if (redis && !redis.running) await redis.start();
  client?.disconnect();
  await redis?.close();
});

const outcome = (p: Promise<unknown>) =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (err: unknown) => ({ ok: false as const, code: isOrderlyError(err) ? err.code : String(err) }),
  );

test('while Redis is down, commands wait up to the bound; past it each is refused at once with a stable code; the waiting ones go through once Redis is back', async () => {
  // A BullMQ queue on the client, ready before the outage (as the control room's queues and a runner's report queue are).
  const queue = new Queue('offline-bound-test', { connection: client, prefix: 'offline-bound' });
  queue.on('error', () => undefined);
  await queue.add('before', { n: 0 });
  await redis.kill();
  await waitFor(() => (client.status !== 'ready' ? true : undefined), 10_000, 'the client to see Redis gone');

  const waiting = Array.from({ length: MAX }, (_, i) => outcome(client.set(`offline:${i}`, 'v')));
  expect(offlineQueueLength(client)).toBe(MAX);
  // Past the bound: refused without waiting for Redis, and the queue does not grow.
  const refused = await Promise.all(Array.from({ length: 200 }, (_, i) => outcome(client.set(`refused:${i}`, 'v'))));
  expect(refused.every((r) => !r.ok && r.code === 'ORDERLY_E_REDIS_OFFLINE_QUEUE_FULL')).toBe(true);
  expect(offlineQueueLength(client)).toBe(MAX);

  // A BullMQ add on the same client (as a queue's add in the control room or a runner's report) is refused the same way.
  try {
    expect(await outcome(queue.add('job', { n: 1 }))).toEqual({ ok: false, code: 'ORDERLY_E_REDIS_OFFLINE_QUEUE_FULL' });
    expect(offlineQueueLength(client)).toBe(MAX);

    await redis.start();
    const settled = await Promise.all(waiting);
    expect(settled.every((r) => r.ok && r.value === 'OK')).toBe(true);
    expect(offlineQueueLength(client)).toBe(0);
    // Exactly the commands that waited were applied; none of the refused ones.
    expect((await client.keys('offline:*')).length).toBe(MAX);
    expect(await client.keys('refused:*')).toEqual([]);
    // Connected again: commands go through at once, beyond the bound.
    const after = await Promise.all(Array.from({ length: MAX * 2 }, (_, i) => client.set(`after:${i}`, 'v')));
    expect(after.every((r) => r === 'OK')).toBe(true);
  } finally {
    await queue.close();
  }
}, 60_000);
