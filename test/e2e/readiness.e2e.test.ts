import { waitFor } from '@orderly/shared/testing';
import { CuttableLink, OwnRedis, startOwnRedis, throughCuttableLink } from '../faults';
import { Stack, startStack } from '../harness';

/**
 * `GET /readyz` with its dependencies really gone: a redis-server of the test's own SIGKILLed, and
 * the control room's PostgreSQL link cut (connections refused) or stalled (packets dropped, the
 * case where an unbounded check hangs). Each check is bounded at 2 s, so the probe answers 503
 * within that whatever the outage; once the dependency is back it answers 200 again.
 */
/** The readiness bound, plus room for a loaded 2-core machine; an unbounded check never answers. */
const ANSWER_WITHIN_MS = 6000;

let redis: OwnRedis;
let link: CuttableLink | undefined;
let stack: Stack;
/** Connections the control room holds to its Redis when all is well (its client, queues, workers). */
let redisClients: number;

beforeAll(async () => {
  redis = await startOwnRedis();
  stack = await startStack({
    redisUrl: redis.url,
    vault: false,
    mapDatabaseUrl: throughCuttableLink((l) => (link = l)),
  });
  redisClients = await waitFor(
    async () => {
      const n = await redis.clients();
      return n > 0 ? n : undefined;
    },
    10_000,
    'the control room to connect to Redis',
  );
}, 60_000);

afterAll(async () => {
  // Dependencies back first, so the control room's clients can close (the stack bounds that close).
  link?.restore();
  if (redis && !redis.running) await redis.start();
  await stack?.close();
  await link?.close();
  await redis?.close();
}, 60_000);

/** One probe, timed; the fetch itself gives up long after the bound so a hang fails the test, not Jest. */
async function readyz(): Promise<{ status: number; body: unknown; ms: number }> {
  const started = Date.now();
  const res = await fetch(`${stack.controlRoom.url}/readyz`, { signal: AbortSignal.timeout(20_000) });
  return { status: res.status, body: await res.json(), ms: Date.now() - started };
}

const READY = { status: 200, body: { status: 'ready', database: 'ok', redis: 'ok' } };
const backToReady = async () => {
  const ready = await waitFor(
    async () => {
      const probe = await readyz();
      return probe.status === 200 ? probe : undefined;
    },
    30_000,
    '/readyz to answer 200 again',
  );
  // Every connection of the control room back, not only the one readiness asks on: a worker
  // still reconnecting when the control room closes would hold its close open.
  await waitFor(async () => ((await redis.clients()) >= redisClients ? true : undefined), 30_000, 'every Redis connection of the control room to be back');
  return ready;
};

test('ready with both up; 503 with Redis killed, within the bound; ready again once it is back', async () => {
  expect(await readyz()).toMatchObject(READY);
  await redis.kill();
  const down = await readyz();
  expect(down).toMatchObject({ status: 503, body: { status: 'not ready', database: 'ok', redis: 'down' } });
  expect(down.ms).toBeLessThan(ANSWER_WITHIN_MS);
  await redis.start();
  expect(await backToReady()).toMatchObject(READY);
}, 90_000);

test('503 with the database link cut, and with it stalled (no answer at all), each within the bound', async () => {
  link!.cut();
  const cut = await readyz();
  expect(cut).toMatchObject({ status: 503, body: { status: 'not ready', database: 'down', redis: 'ok' } });
  expect(cut.ms).toBeLessThan(ANSWER_WITHIN_MS);
  link!.restore();
  expect(await backToReady()).toMatchObject(READY);

  link!.stall();
  const stalled = await readyz();
  expect(stalled).toMatchObject({ status: 503, body: { status: 'not ready', database: 'down', redis: 'ok' } });
  expect(stalled.ms).toBeGreaterThanOrEqual(1900); // it did wait for the database, up to the bound
  expect(stalled.ms).toBeLessThan(ANSWER_WITHIN_MS);
  link!.restore();
  expect(await backToReady()).toMatchObject(READY);
}, 150_000);

test('both down at once: one answer within one bound, not one per dependency', async () => {
  link!.stall();
  await redis.kill();
  const down = await readyz();
  expect(down).toMatchObject({ status: 503, body: { status: 'not ready', database: 'down', redis: 'down' } });
  expect(down.ms).toBeLessThan(ANSWER_WITHIN_MS);
  link!.restore();
  await redis.start();
  expect(await backToReady()).toMatchObject(READY);
}, 90_000);
