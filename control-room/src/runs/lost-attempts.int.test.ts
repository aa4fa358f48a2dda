import { Queue } from 'bullmq';
import { Client } from 'pg';
import { runQueueName, SegmentName } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { LEDGER_BOT, runJobId, Stack, startStack } from '../../../test/harness';

/**
 * The lost-attempt sweep's guard, against real PostgreSQL and Redis (no runner is started, so
 * the test claims the run itself): an attempt whose lease lapsed is left alone while its job is
 * still in the queue (a claim will come and record it), and recovered once the job is gone.
 */
const SEGMENT = 'demo' as SegmentName;
let stack: Stack;
let db: Client;
let queue: Queue;
beforeAll(async () => {
  stack = await startStack({ vault: false });
  await stack.publish(LEDGER_BOT);
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  queue = new Queue(runQueueName(SEGMENT), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
}, 60_000);
afterAll(async () => {
  await queue?.close();
  await db?.end();
  await stack?.close();
});

const runState = async (id: string) =>
  (
    await db.query<{ status: string; attempts: number; lost: string | null }>(
      `SELECT r.status, r.attempts, (SELECT a.error->>'code' FROM run_attempts a WHERE a.run_id = r.id AND a.attempt = 1) AS lost FROM runs r WHERE r.id = $1`,
      [id],
    )
  ).rows[0];

test('an attempt whose lease lapsed is left while its job is queued, and retried after the backoff once the job is gone', async () => {
  const run = await stack.startRun({ bot: 'ledger', segment: SEGMENT, input: { ledgerUrl: 'http://127.0.0.1:9' } });
  const jobId = await waitFor(() => runJobId(queue, run.id).catch(() => undefined), 10_000, 'the job to be queued');
  // Attempt 1 claimed with the shortest lease, and never renewed: it lapses, and one lease length later it counts.
  const claimed = await stack.controlRoom.runs.claim(run.id, SEGMENT, 'lost-sweep-test-runner', 1000);
  expect(claimed).toMatchObject({ attempt: 1 });
  await db.query("UPDATE run_attempts SET lease_expires_at = now() - interval '5 seconds' WHERE run_id = $1 AND attempt = 1", [run.id]);

  // The job is still waiting in the queue: a runner will take it and its claim records the loss.
  expect(await stack.controlRoom.runs.sweepLostAttempts()).toEqual({ retried: 0, deadLettered: 0 });
  expect(await runState(run.id)).toEqual({ status: 'active', attempts: 1, lost: null });

  // The job is lost (a Redis failover): nothing can come; the sweep recovers the run.
  expect(await queue.remove(jobId)).toBe(1);
  expect(await stack.controlRoom.runs.sweepLostAttempts()).toEqual({ retried: 1, deadLettered: 0 });
  expect(await runState(run.id)).toEqual({ status: 'waiting', attempts: 1, lost: 'ORDERLY_E_ATTEMPT_LOST' });
  // A fresh job under the run's id, held back by the backoff, and the run is marked queued.
  expect(await queue.getJobState(jobId)).toBe('delayed');
  const enqueued = await db.query<{ queued: boolean }>('SELECT enqueued_at IS NOT NULL AS queued FROM runs WHERE id = $1', [run.id]);
  expect(enqueued.rows).toEqual([{ queued: true }]);
  // A second sweep finds nothing: the attempt is recorded lost once.
  expect(await stack.controlRoom.runs.sweepLostAttempts()).toEqual({ retried: 0, deadLettered: 0 });
  // The next claim starts attempt 2.
  expect(await stack.controlRoom.runs.claim(run.id, SEGMENT, 'lost-sweep-test-runner', 1000)).toMatchObject({ attempt: 2 });
}, 60_000);
