import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { reportsQueueName, runQueueName, SegmentName } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { Ledger, startLedger } from '../faults';
import { BIN, LEDGER_BOT, runJobId, runnerProcessEnv, Stack, startStack } from '../harness';

/**
 * The lost-attempt sweep (issue 12), struck exactly in its window: an active run whose attempt's
 * lease lapsed and for which no report and no job are left, so no claim will ever record the
 * attempt lost. Two ways in: the runner SIGKILLed after its claim and its job lost with Redis's
 * failover (the report was never published), and the finished report lost after the runner
 * completed the job. Each ends with the side effect recorded once at the target, the attempt
 * recorded lost once, and one attempt after it (or the run dead-lettered when it was the last).
 */
/** A short lease (2 s) and a sweep every second: the sweep takes the attempt 2 s after its lease lapsed. */
const LEASE = { ORDERLY_ATTEMPT_LEASE_MS: '2000', ORDERLY_JOB_LOCK_MS: '2000', ORDERLY_STALLED_INTERVAL_MS: '1000' };
/** The waits inside a test: the hold (45 s at most), the run's end (60 s), the queue checks (20 s each), and margin. */
const TEST_MS = 240_000;
const END_MS = 60_000;

let ledger: Ledger;
let stack: Stack;
let db: Client;
let queue: Queue;
let reports: Queue;
const spawned: ChildProcess[] = [];
beforeAll(async () => {
  ledger = await startLedger();
  // A child process, so a test can stop it (SIGSTOP) while a report waits unconsumed.
  stack = await startStack({ vault: false, controlRoomProcess: true, controlRoomEnv: { ORDERLY_LOST_ATTEMPT_SWEEP_SECONDS: '1' } });
  await stack.publish(LEDGER_BOT);
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  queue = new Queue(runQueueName('demo' as SegmentName), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
  reports = new Queue(reportsQueueName('demo' as SegmentName), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
}, 60_000);
afterEach(() => {
  for (const child of spawned.splice(0)) {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone (the test killed it)
    }
  }
  const pid = stack?.controlRoomProcess?.pid();
  if (pid !== undefined) process.kill(pid, 'SIGCONT'); // a test that failed while it was stopped
});
afterAll(async () => {
  await reports?.close();
  await queue?.close();
  await db?.end();
  await stack?.close();
  await ledger?.close();
});

const attemptRows = async (runId: string) =>
  (
    await db.query<{ attempt: number; outcome: string | null; code: string | null }>(
      "SELECT attempt, outcome, error->>'code' AS code FROM run_attempts WHERE run_id = $1 ORDER BY attempt",
      [runId],
    )
  ).rows;
const stepRows = async (runId: string) =>
  (await db.query<{ status: string; attempt: number }>("SELECT status, attempt FROM run_steps WHERE run_id = $1 AND name = 'record'", [runId])).rows;

/** `orderly runner start` in a process group of its own, so SIGKILL reaches the runner and its bot host. */
function runnerProcess(id: string): { child: ChildProcess; exited: Promise<unknown> } {
  const child = spawn(join(BIN, 'orderly'), ['runner', 'start', '--segment', 'demo'], {
    env: runnerProcessEnv(stack, id, LEASE),
    cwd: stack.dataDir,
    stdio: 'ignore',
    detached: true,
  });
  spawned.push(child);
  return { child, exited: new Promise((resolve) => child.once('exit', resolve)) };
}

/**
 * The runner SIGKILLed while its bot waits for the ledger's answer (the side effect happened, its
 * step is not completed, nothing reported), then its job lost as a Redis failover loses it: its
 * lock and the job itself gone, so no stall check will ever hand it to another runner.
 */
async function killRunnerAndLoseJob(key: string, prepare?: (runId: string) => Promise<void>): Promise<string> {
  const first = runnerProcess(`${key}-runner`);
  const hold = ledger.holdNext(key);
  const run = await stack.startRun({ bot: 'ledger', input: { ledgerUrl: ledger.url, verify: true }, idempotencyKey: key });
  await hold.arrived;
  // In flight: attempt 1 claimed, its step begun, no report.
  expect((await stack.api('GET', `/v1/runs/${run.id}`)).body).toMatchObject({ status: 'active', attempts: 1 });
  expect(await stepRows(run.id)).toEqual([{ status: 'started', attempt: 1 }]);
  await prepare?.(run.id);
  process.kill(-first.child.pid!, 'SIGKILL');
  await first.exited;
  hold.release(); // the answer goes to a dead browser
  const jobId = await runJobId(queue, run.id);
  expect(await queue.getJobState(jobId)).toBe('active');
  await stack.redis.del(`${stack.prefix}:${runQueueName('demo' as SegmentName)}:${jobId}:lock`);
  expect(await queue.remove(jobId)).toBe(1);
  expect(await queue.getJob(jobId)).toBeUndefined();
  return run.id;
}

test(
  'the runner SIGKILLed after its claim and its job lost: the sweep records the attempt lost and the run is retried exactly once',
  async () => {
    const key = 'lost-sweep-retry-1';
    const runId = await killRunnerAndLoseJob(key);
    const runner = await stack.startRunner({ env: LEASE });
    try {
      const ended = await stack.waitForRun(runId, undefined, END_MS);
      expect(ended).toMatchObject({ status: 'succeeded', attempts: 2, result: { recorded: true } });
      expect(await attemptRows(runId)).toEqual([
        { attempt: 1, outcome: 'failed', code: 'ORDERLY_E_ATTEMPT_LOST' },
        { attempt: 2, outcome: 'succeeded', code: null },
      ]);
      // Attempt 2 found the step uncertain, verified it at the target and did not repeat it.
      expect(ledger.counts()[key]).toBe(1);
      expect(await stepRows(runId)).toEqual([{ status: 'done', attempt: 2 }]);
      // The fresh job the sweep queued is the run's one job, and it ran once.
      expect(await queue.getJobState(await runJobId(queue, runId))).toBe('completed');
    } finally {
      await runner.close();
    }
  },
  TEST_MS,
);

test(
  'the same on the last attempt: the sweep dead-letters the run (state and DLQ entry), and nothing runs again',
  async () => {
    const key = 'lost-sweep-dead-letter-1';
    // This run's attempt 1 is its last (as a manifest with `attempts: 1` would make it).
    const runId = await killRunnerAndLoseJob(key, async (id) => {
      await db.query('UPDATE runs SET max_attempts = 1 WHERE id = $1', [id]);
    });
    const runner = await stack.startRunner({ env: LEASE });
    try {
      const ended = await stack.waitForRun(runId, undefined, END_MS);
      expect(ended).toMatchObject({ status: 'dead_lettered', attempts: 1, error: { code: 'ORDERLY_E_ATTEMPT_LOST' } });
      expect(await attemptRows(runId)).toEqual([{ attempt: 1, outcome: 'failed', code: 'ORDERLY_E_ATTEMPT_LOST' }]);
      const dlq = new Queue('orderly.dlq.demo', { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
      try {
        const entry = await waitFor(() => dlq.getJob(runId), 20_000, 'the dlq entry');
        expect(entry.data).toMatchObject({ runId, errorCode: 'ORDERLY_E_ATTEMPT_LOST', attempts: 1 });
      } finally {
        await dlq.close();
      }
      // The entry went out, and the database says so (the dlq sweep will not add it again).
      const published = await db.query<{ published: boolean }>('SELECT dlq_published_at IS NOT NULL AS published FROM runs WHERE id = $1', [runId]);
      expect(published.rows).toEqual([{ published: true }]);
      expect(ledger.counts()[key]).toBe(1);
      expect(await stack.api('GET', `/v1/runs/${runId}`)).toMatchObject({ body: { status: 'dead_lettered', attempts: 1 } });
    } finally {
      await runner.close();
    }
  },
  TEST_MS,
);

test(
  'the finished report lost after the runner completed its job: the sweep retries the run once, and the done step is not repeated',
  async () => {
    const runner = await stack.startRunner({ env: LEASE });
    try {
      const key = 'lost-sweep-report-1';
      const hold = ledger.holdNext(key, '/after');
      const run = await stack.startRun({ bot: 'ledger', input: { ledgerUrl: ledger.url, after: true, verify: true }, idempotencyKey: key });
      await hold.arrived;
      expect(await stepRows(run.id)).toEqual([{ status: 'done', attempt: 1 }]);
      // The control room stops (it answers nothing and consumes nothing) while the runner reports.
      const pid = stack.controlRoomProcess!.pid()!;
      process.kill(pid, 'SIGSTOP');
      hold.release();
      const jobId = await runJobId(queue, run.id);
      await waitFor(async () => ((await queue.getJobState(jobId)) === 'completed' ? true : undefined), 20_000, 'the runner to finish the job');
      await waitFor(async () => ((await reports.getWaitingCount()) >= 1 ? true : undefined), 20_000, 'the finished report in the queue');
      // The report is lost (a Redis failover that kept the job's completion but not the report).
      const waiting = await reports.getWaiting();
      expect(waiting.map((r) => r.name)).toContain('finished');
      for (const report of waiting) await report.remove();
      expect(await reports.getWaitingCount()).toBe(0);
      process.kill(pid, 'SIGCONT');

      const ended = await stack.waitForRun(run.id, undefined, END_MS);
      expect(ended).toMatchObject({ status: 'succeeded', attempts: 2, result: { recorded: true } });
      expect(await attemptRows(run.id)).toEqual([
        { attempt: 1, outcome: 'failed', code: 'ORDERLY_E_ATTEMPT_LOST' },
        { attempt: 2, outcome: 'succeeded', code: null },
      ]);
      // Attempt 2 found the step done by attempt 1 and skipped it.
      expect(await stepRows(run.id)).toEqual([{ status: 'done', attempt: 1 }]);
      expect(ledger.counts()[key]).toBe(1);
    } finally {
      await runner.close();
    }
  },
  TEST_MS,
);
