import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { waitFor } from '@orderly/shared/testing';
import { runnerTokenPath } from '../../control-room/src/keys/secrets';
import { dlqQueueName } from '../../control-room/src/runs/queues';
import { OwnRedis, startOwnRedis } from '../faults';
import { LEDGER_BOT, Stack, startStack } from '../harness';

/**
 * A dead letter's `orderly.dlq.<segment>` entry is added after the commit that dead-letters the
 * run. Struck in that window (issue 12): Redis is down when the run is dead-lettered, and the
 * control room is SIGKILLed before Redis is back, so the add it had pending dies with it. The
 * restarted control room's sweep adds the entry; nothing else would.
 */
let redis: OwnRedis;
let stack: Stack;
let db: Client;
let dlq: Queue | undefined;

beforeAll(async () => {
  redis = await startOwnRedis();
  stack = await startStack({ vault: false, redisUrl: redis.url, controlRoomProcess: true });
  await stack.publish(LEDGER_BOT);
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
}, 120_000);
afterAll(async () => {
  await dlq?.close();
  await db?.end();
  if (redis && !redis.running) await redis.start();
  await stack?.close();
  await redis?.close();
});

const published = async (id: string) =>
  (await db.query<{ status: string; published: Date | null }>('SELECT status, dlq_published_at AS published FROM runs WHERE id = $1', [id])).rows[0]!;

test('the entry of a run dead-lettered while Redis was down, by a control room that then crashed, is added by the next sweep', async () => {
  const token = readFileSync(runnerTokenPath(join(stack.dataDir, 'secrets'), 'demo'), 'utf8').trim();
  const claim = (id: string) => stack.api('POST', `/v1/runner/runs/${id}/claim`, { runnerId: 'dlq-sweep-test' }, token);
  const run = await stack.startRun({ bot: 'ledger', input: { ledgerUrl: 'http://127.0.0.1:9' }, idempotencyKey: 'dlq-sweep-1' });
  await db.query('UPDATE runs SET max_attempts = 1 WHERE id = $1', [run.id]);
  expect((await claim(run.id)).body).toMatchObject({ attempt: 1, final: true });
  // The only attempt's runner went silent: the next claim records it lost, which dead-letters the run.
  await db.query("UPDATE run_attempts SET lease_expires_at = now() - interval '1 second' WHERE run_id = $1 AND finished_at IS NULL", [run.id]);

  await redis.kill();
  const refused = await claim(run.id);
  expect({ status: refused.status, code: refused.body.error?.code }).toEqual({ status: 409, code: 'ORDERLY_E_RUN_NOT_CLAIMABLE' });
  expect(await published(run.id)).toEqual({ status: 'dead_lettered', published: null });
  await stack.controlRoomProcess!.kill();
  await redis.start();

  dlq = new Queue(dlqQueueName('demo'), { connection: { url: redis.url }, prefix: stack.prefix });
  expect(await dlq.getJob(run.id)).toBeUndefined(); // lost with the crashed process
  await stack.controlRoomProcess!.start();
  const job = await waitFor(async () => (await dlq!.getJob(run.id)) ?? undefined, 90_000, 'the sweep to add the dlq entry');
  expect(job.data).toEqual({
    v: 1,
    runId: run.id,
    bot: 'ledger',
    segment: 'demo',
    errorCode: 'ORDERLY_E_ATTEMPT_LOST',
    attempts: 1,
    deadLetteredAt: expect.any(String),
  });
  await waitFor(async () => ((await published(run.id)).published ? true : undefined), 10_000, 'the entry to be recorded as added');
}, 180_000);
