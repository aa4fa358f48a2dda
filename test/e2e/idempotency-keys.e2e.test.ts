import { Queue } from 'bullmq';
import { Client } from 'pg';
import { runQueueName } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { REPO, Stack, startStack } from '../harness';
import { join } from 'node:path';

/**
 * Idempotency keys may hold PHI (a client may build one from a member id), so they are written in
 * clear only in the runs table: BullMQ job ids, runner and control-room log fields and job
 * refusals carry a keyed hash. After a batch of runs that succeed, fail, are cancelled and have a
 * job copied across segments, Redis (every key and value under the stack's prefix, base64 payloads
 * decoded), the process logs and every other table are scanned for the clear keys.
 */
const MEMBER = { memberId: 'ZZT100200301', dateOfBirth: '1900-01-15' };
// Clearly fake, shaped like what a client might really use.
const key = (n: number) => `fake-member-ZZT9000000${String(n).padStart(2, '0')}-claim`;
let stack: Stack;
let db: Client;

beforeAll(async () => {
  stack = await startStack({ runner: true });
  await stack.publish();
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'sleepy'));
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
}, 60_000);
afterAll(async () => {
  await db?.end();
  await stack?.close();
});

/** Every key and value under the prefix, with base64 runs decoded (job envelopes carry base64 payloads). */
async function redisText(): Promise<string> {
  const keys = await stack.redis.keys(`${stack.prefix}:*`);
  const parts: string[] = [...keys];
  for (const k of keys) {
    const type = await stack.redis.type(k);
    if (type === 'string') parts.push((await stack.redis.get(k)) ?? '');
    else if (type === 'hash') parts.push(JSON.stringify(await stack.redis.hgetall(k)));
    else if (type === 'list') parts.push(JSON.stringify(await stack.redis.lrange(k, 0, -1)));
    else if (type === 'set') parts.push(JSON.stringify(await stack.redis.smembers(k)));
    else if (type === 'zset') parts.push(JSON.stringify(await stack.redis.zrange(k, '0', '-1')));
    else if (type === 'stream') parts.push(JSON.stringify(await stack.redis.xrange(k, '-', '+')));
  }
  const text = parts.join('\n');
  const decoded = (text.match(/[A-Za-z0-9+/]{24,}={0,2}/g) ?? []).map((b) => Buffer.from(b, 'base64').toString('latin1'));
  return [text, ...decoded].join('\n');
}

test('after a batch of runs no idempotency key is in Redis, in the logs or outside the runs table', async () => {
  const batch = await stack.api('POST', '/v1/runs/batch', {
    runs: [1, 2, 3, 4].map((n) => ({ bot: 'eligibility-check', idempotencyKey: key(n), input: { portalUrl: stack.portal.url, ...MEMBER } })),
  });
  expect(batch.status).toBe(201);
  const failing = await stack.startRun({ bot: 'sleepy', input: {}, idempotencyKey: key(5) });
  // A run no runner serves, cancelled while waiting: its job is removed by its hashed id.
  const cancelled = await stack.startRun({ bot: 'sleepy', input: {}, segment: 'other', idempotencyKey: key(6) });
  // A run whose genuine job someone copies, job id and all, into the demo queue.
  const copiedRun = await stack.startRun({ bot: 'sleepy', input: {}, segment: 'other', idempotencyKey: key(7) });
  const otherQueue = new Queue(runQueueName('other' as never), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
  const demoQueue = new Queue(runQueueName('demo' as never), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
  try {
    const own = (await otherQueue.getWaiting()).find((j) => JSON.parse(Buffer.from(j.data.envelope.payload, 'base64').toString('utf8')).runId === copiedRun.id);
    expect(own?.id).toMatch(/^job-[a-f0-9]{32}$/);
    await demoQueue.add('run', own!.data, { jobId: own!.id! });
  } finally {
    await otherQueue.close();
    await demoQueue.close();
  }
  expect((await stack.api('POST', `/v1/runs/${cancelled.id}/cancel`)).status).toBe(200);

  for (const run of batch.body.runs as { id: string }[]) expect(await stack.waitForRun(run.id)).toMatchObject({ status: 'succeeded' });
  expect(await stack.waitForRun(failing.id)).toMatchObject({ status: 'dead_lettered' });
  const refusal = await waitFor(
    async () => (await db.query<{ job_id: string }>('SELECT job_id FROM job_refusals WHERE run_id = $1', [copiedRun.id])).rows[0],
    15_000,
    'the refusal of the copied job',
  );
  expect(refusal.job_id).toMatch(/^hmac:[a-f0-9]{32}$/);

  const keys = [1, 2, 3, 4, 5, 6, 7].map(key);
  // The runs table does hold them: the scan below would find a key if one leaked.
  expect((await db.query('SELECT count(*)::int AS n FROM runs WHERE idempotency_key = ANY($1)', [keys])).rows[0].n).toBe(7);
  const tables = (await db.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'runs'")).rows.map(
    (r) => r.tablename,
  );
  const rows: string[] = [];
  for (const table of tables) rows.push(...(await db.query<{ j: string }>(`SELECT row_to_json(x)::text AS j FROM "${table}" x`)).rows.map((r) => r.j));
  const places = { redis: await redisText(), logs: stack.log.text(), 'other tables': rows.join('\n') };
  expect(places.logs.length).toBeGreaterThan(1000);
  for (const [where, text] of Object.entries(places)) {
    expect({ where, found: keys.filter((k) => text.includes(k) || text.includes(k.slice(12))) }).toEqual({ where, found: [] });
  }
}, 180_000);
