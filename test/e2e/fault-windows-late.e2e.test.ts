import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { reportsQueueName, runQueueName, SegmentName } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { CuttableLink, Ledger, OwnRedis, startLedger, startOwnRedis, throughCuttableLink } from '../faults';
import { BIN, LEDGER_BOT, runJobId, runnerProcessEnv, Stack, startStack } from '../harness';

/**
 * Faults struck, deterministically, in the two windows after a step's completion (issue 12):
 *  - W2: after the step's completion is recorded and before the finished report is published. The
 *    ledger bot visits `/after` once its step is recorded; the ledger holds that visit while the
 *    test strikes, so the bot (and the report) wait.
 *  - W3: between the finished report's publish and its consumption by the control room. The
 *    control room runs as a child process and is stopped (SIGSTOP) before the bot is let go: the
 *    runner publishes its report, which waits in the reports queue (the test sees it there), the
 *    test strikes, then the control room is continued (SIGCONT) and consumes it.
 * Each test asserts the run was in flight in that window when struck, then that it ended exactly
 * once, the ledger recorded the side effect exactly once, and the run is not stuck.
 */
const FAST_TAKEOVER = { ORDERLY_JOB_LOCK_MS: '2000', ORDERLY_STALLED_INTERVAL_MS: '1000' };
const END_MS = 90_000;
const TEST_MS = 380_000;

let ledger: Ledger;
beforeAll(async () => {
  ledger = await startLedger();
});
afterAll(() => ledger?.close());

async function connect(stack: Stack): Promise<Client> {
  const db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  return db;
}
const stepRows = async (db: Client, runId: string) =>
  (await db.query<{ status: string; attempt: number }>("SELECT status, attempt FROM run_steps WHERE run_id = $1 AND name = 'record'", [runId])).rows;
const attemptRows = async (db: Client, runId: string) =>
  (
    await db.query<{ attempt: number; outcome: string | null; code: string | null }>(
      "SELECT attempt, outcome, error->>'code' AS code FROM run_attempts WHERE run_id = $1 ORDER BY attempt",
      [runId],
    )
  ).rows;
const runStatus = async (db: Client, runId: string) => (await db.query<{ status: string }>('SELECT status FROM runs WHERE id = $1', [runId])).rows[0]?.status;

/** The control room's process, stopped or continued by signal (a stopped process keeps its sockets but answers nothing). */
function signalControlRoom(stack: Stack, signal: 'SIGSTOP' | 'SIGCONT'): void {
  const pid = stack.controlRoomProcess!.pid();
  if (pid === undefined) throw new Error('the control room process is not running');
  process.kill(pid, signal);
}

/**
 * W2, asserted: the step is recorded done in attempt 1, the run and its attempt are open, and no
 * report waits in the reports queue (the bot is held at `/after`, so it has not reported).
 */
async function expectInW2(stack: Stack, db: Client, reports: Queue, runId: string): Promise<void> {
  expect(await stepRows(db, runId)).toEqual([{ status: 'done', attempt: 1 }]);
  expect(await runStatus(db, runId)).toBe('active');
  expect(await attemptRows(db, runId)).toEqual([{ attempt: 1, outcome: null, code: null }]);
  expect(await reports.getWaitingCount()).toBe(0);
}

/**
 * W3, waited for then asserted: the runner finished the job and its report waits in the reports
 * queue, unconsumed (the control room is stopped), while the run is still active in the database.
 */
async function waitForW3(db: Client, queue: Queue, reports: Queue, runId: string): Promise<void> {
  const jobId = await runJobId(queue, runId);
  await waitFor(async () => ((await queue.getJobState(jobId)) === 'completed' ? true : undefined), 60_000, 'the runner to finish the job');
  await waitFor(async () => ((await reports.getWaitingCount()) >= 1 ? true : undefined), 60_000, 'the finished report in the queue');
  expect(await runStatus(db, runId)).toBe('active');
  expect(await attemptRows(db, runId)).toEqual([{ attempt: 1, outcome: null, code: null }]);
}

/** Ended exactly once: succeeded (the report's result) or dead-lettered under a registered code; never re-opened. */
async function expectEndedOnce(stack: Stack, db: Client, runId: string, key: string): Promise<void> {
  const ended = await stack.waitForRun(runId, undefined, END_MS);
  expect(['succeeded', 'dead_lettered']).toContain(ended.status);
  if (ended.status === 'succeeded') expect(ended).toMatchObject({ result: { recorded: true } });
  expect(ledger.counts()[key]).toBe(1);
  const attempts = await attemptRows(db, runId);
  // Every attempt is closed, exactly one of them with the run's outcome, and the step was done once.
  expect(attempts.every((a) => a.outcome !== null)).toBe(true);
  if (ended.status === 'succeeded') expect(attempts.filter((a) => a.outcome === 'succeeded')).toHaveLength(1);
  else for (const a of attempts) expect(a.code).toMatch(/^ORDERLY_E_[A-Z_]+$/);
  expect((await stepRows(db, runId)).filter((s) => s.status === 'done')).toHaveLength(1);
  // Still ended, not re-opened by a late report or a re-run.
  expect(await runStatus(db, runId)).toBe(ended.status);
}

/** The test's own view of the run and reports queues (quiet while a test has Redis down). */
function queues(stack: Stack, redisUrl: string): { queue: Queue; reports: Queue } {
  const queue = new Queue(runQueueName('demo' as SegmentName), { connection: { url: redisUrl }, prefix: stack.prefix });
  const reports = new Queue(reportsQueueName('demo' as SegmentName), { connection: { url: redisUrl }, prefix: stack.prefix });
  for (const q of [queue, reports]) q.on('error', () => undefined);
  return { queue, reports };
}

/** A run of the ledger bot that visits `/after` once its step is recorded, that visit held. */
async function heldRun(stack: Stack, key: string): Promise<{ runId: string; release(): void; disconnected: Promise<void> }> {
  const hold = ledger.holdNext(key, '/after');
  const run = await stack.startRun({ bot: 'ledger', input: { ledgerUrl: ledger.url, after: true, verify: true }, idempotencyKey: key });
  await hold.arrived;
  return { runId: run.id, release: hold.release, disconnected: hold.disconnected };
}

describe('the runner SIGKILLed (process group) after the completion', () => {
  let stack: Stack;
  let db: Client;
  let queue: Queue;
  let reports: Queue;
  const spawned: ChildProcess[] = [];
  beforeAll(async () => {
    stack = await startStack({ vault: false, controlRoomProcess: true });
    await stack.publish(LEDGER_BOT);
    db = await connect(stack);
    ({ queue, reports } = queues(stack, TEST_REDIS_URL));
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
  });

  /** `orderly runner start` in a process group of its own, so SIGKILL reaches the runner and its bot host. */
  function runnerProcess(id: string): { child: ChildProcess; exited: Promise<unknown> } {
    const child = spawn(join(BIN, 'orderly'), ['runner', 'start', '--segment', 'demo'], {
      env: runnerProcessEnv(stack, id, FAST_TAKEOVER),
      cwd: stack.dataDir,
      stdio: 'ignore',
      detached: true,
    });
    spawned.push(child);
    return { child, exited: new Promise((resolve) => child.once('exit', resolve)) };
  }
  async function killGroup(runner: { child: ChildProcess; exited: Promise<unknown> }): Promise<void> {
    process.kill(-runner.child.pid!, 'SIGKILL');
    await runner.exited;
  }

  test(
    'W2 (completion recorded, report not published): the next attempt finds the step done and does not repeat it',
    async () => {
      const first = runnerProcess('late-runner-w2-1');
      const key = 'late-runner-kill-w2';
      const run = await heldRun(stack, key);
      await expectInW2(stack, db, reports, run.runId);
      await killGroup(first);
      run.release(); // the answer goes to a dead browser

      runnerProcess('late-runner-w2-2');
      await expectEndedOnce(stack, db, run.runId, key);
      expect(await stack.waitForRun(run.runId)).toMatchObject({ status: 'succeeded', attempts: 2 });
      expect(await attemptRows(db, run.runId)).toEqual([
        { attempt: 1, outcome: 'failed', code: 'ORDERLY_E_ATTEMPT_LOST' },
        { attempt: 2, outcome: 'succeeded', code: null },
      ]);
      // The step stays the one attempt 1 recorded: attempt 2 skipped it.
      expect(await stepRows(db, run.runId)).toEqual([{ status: 'done', attempt: 1 }]);
    },
    TEST_MS,
  );

  test(
    'W3 (report published, not consumed): the report outlives its runner and ends the run in one attempt',
    async () => {
      const first = runnerProcess('late-runner-w3-1');
      const key = 'late-runner-kill-w3';
      const run = await heldRun(stack, key);
      signalControlRoom(stack, 'SIGSTOP');
      run.release();
      await waitForW3(db, queue, reports, run.runId);
      await killGroup(first);
      runnerProcess('late-runner-w3-2'); // a runner is there should anything need a retry
      signalControlRoom(stack, 'SIGCONT');

      await expectEndedOnce(stack, db, run.runId, key);
      expect(await stack.waitForRun(run.runId)).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect(await attemptRows(db, run.runId)).toEqual([{ attempt: 1, outcome: 'succeeded', code: null }]);
    },
    TEST_MS,
  );
});

describe.each(['everysec', 'always'] as const)('Redis SIGKILLed (appendfsync %s) and restarted from its AOF after the completion', (appendfsync) => {
  let redis: OwnRedis;
  let stack: Stack;
  let db: Client;
  let queue: Queue;
  let reports: Queue;
  beforeAll(async () => {
    redis = await startOwnRedis({ appendfsync });
    stack = await startStack({ vault: false, redisUrl: redis.url, controlRoomProcess: true });
    await stack.publish(LEDGER_BOT);
    db = await connect(stack);
    ({ queue, reports } = queues(stack, redis.url));
    await stack.startRunner({ env: { ...FAST_TAKEOVER, ORDERLY_ATTEMPT_LEASE_MS: '3000' } });
  }, 60_000);
  afterEach(async () => {
    const pid = stack?.controlRoomProcess?.pid();
    if (pid !== undefined) process.kill(pid, 'SIGCONT');
    if (redis && !redis.running) await redis.start();
  });
  afterAll(async () => {
    await reports?.close();
    await queue?.close();
    await db?.end();
    // A test that failed while Redis was down leaves it down: the stack's clients need it to close.
    if (redis && !redis.running) await redis.start();
    await stack?.close();
    await redis?.close();
  });

  test(
    'W2 (completion recorded, report not published): the run ends once, the side effect once',
    async () => {
      const key = `late-redis-kill-w2-${appendfsync}`;
      const run = await heldRun(stack, key);
      await expectInW2(stack, db, reports, run.runId);
      await redis.kill();
      run.release();
      // The bot ends while Redis is down (its browser leaves the ledger), so the runner's report is
      // published into a dead Redis: it must wait for the restart (or the run be recovered).
      await run.disconnected;
      expect(await runStatus(db, run.runId)).toBe('active');
      await redis.start();

      await expectEndedOnce(stack, db, run.runId, key);
    },
    TEST_MS,
  );

  test(
    'W3 (report published, not consumed): the run ends once, the side effect once',
    async () => {
      const key = `late-redis-kill-w3-${appendfsync}`;
      const run = await heldRun(stack, key);
      signalControlRoom(stack, 'SIGSTOP');
      run.release();
      await waitForW3(db, queue, reports, run.runId);
      // Struck at once: under everysec the report (and the job's completion) may be in no fsync yet.
      await redis.kill();
      await redis.start();
      signalControlRoom(stack, 'SIGCONT');

      await expectEndedOnce(stack, db, run.runId, key);
    },
    TEST_MS,
  );
});

describe('the PostgreSQL link cut after the completion', () => {
  let link: CuttableLink | undefined;
  let stack: Stack;
  let db: Client;
  let queue: Queue;
  let reports: Queue;
  beforeAll(async () => {
    stack = await startStack({ vault: false, controlRoomProcess: true, mapDatabaseUrl: throughCuttableLink((l) => (link = l)) });
    await stack.publish(LEDGER_BOT);
    db = await connect(stack); // the test's own connection is direct, never cut
    ({ queue, reports } = queues(stack, TEST_REDIS_URL));
    await stack.startRunner({ env: { ...FAST_TAKEOVER, ORDERLY_ATTEMPT_LEASE_MS: '3000' } });
  }, 60_000);
  afterEach(() => {
    const pid = stack?.controlRoomProcess?.pid();
    if (pid !== undefined) process.kill(pid, 'SIGCONT');
    link?.restore();
  });
  afterAll(async () => {
    await reports?.close();
    await queue?.close();
    await db?.end();
    link?.restore(); // a test that failed while it was cut: the stack's clients need it to close
    await stack?.close();
    await link?.close();
  });

  /** The report was taken off the waiting list (the control room tried it, against a cut database). */
  const reportTaken = () => waitFor(async () => ((await reports.getWaitingCount()) === 0 ? true : undefined), 60_000, 'the control room to take the report');

  test(
    'W2 (completion recorded, report not published): the report is consumed once the database is back',
    async () => {
      const key = 'late-database-cut-w2';
      const run = await heldRun(stack, key);
      await expectInW2(stack, db, reports, run.runId);
      link!.cut();
      run.release();
      const jobId = await runJobId(queue, run.runId);
      await waitFor(async () => ((await queue.getJobState(jobId)) === 'completed' ? true : undefined), 60_000, 'the runner to finish the job');
      await reportTaken();
      expect(await runStatus(db, run.runId)).toBe('active'); // nothing written through the cut link
      link!.restore();

      await expectEndedOnce(stack, db, run.runId, key);
      expect(await stack.waitForRun(run.runId)).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect(await attemptRows(db, run.runId)).toEqual([{ attempt: 1, outcome: 'succeeded', code: null }]);
    },
    TEST_MS,
  );

  test(
    'W3 (report published, not consumed): the report is consumed once the database is back',
    async () => {
      const key = 'late-database-cut-w3';
      const run = await heldRun(stack, key);
      signalControlRoom(stack, 'SIGSTOP');
      run.release();
      await waitForW3(db, queue, reports, run.runId);
      link!.cut();
      signalControlRoom(stack, 'SIGCONT');
      await reportTaken();
      expect(await runStatus(db, run.runId)).toBe('active');
      link!.restore();

      await expectEndedOnce(stack, db, run.runId, key);
      expect(await stack.waitForRun(run.runId)).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect(await attemptRows(db, run.runId)).toEqual([{ attempt: 1, outcome: 'succeeded', code: null }]);
    },
    TEST_MS,
  );
});
