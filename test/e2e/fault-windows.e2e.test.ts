import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { reportsQueueName, runQueueName, SegmentName } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { CuttableLink, Ledger, OwnRedis, startLedger, startOwnRedis, throughCuttableLink } from '../faults';
import { BIN, LEDGER_BOT, runJobId, runnerProcessEnv, Stack, startStack } from '../harness';

/**
 * Faults struck inside the windows that would break exactly-once (issue 12), deterministically:
 * the ledger holds its answer until the test has struck, and each test first asserts that the run
 * is in flight. Real crashes: the runner and the control room are child processes SIGKILLed. Each
 * ends with the side effect recorded once at the target and the run in one correct state.
 */
/** A dead runner's job is found within seconds: lock 2 s, stall check every second, lease = lock. */
const FAST_TAKEOVER = { ORDERLY_JOB_LOCK_MS: '2000', ORDERLY_STALLED_INTERVAL_MS: '1000' };

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

describe('the runner SIGKILLed after a side effect and before its completion', () => {
  let stack: Stack;
  let db: Client;
  const spawned: ChildProcess[] = [];
  beforeAll(async () => {
    stack = await startStack({ vault: false });
    await stack.publish(LEDGER_BOT);
    db = await connect(stack);
  }, 60_000);
  afterAll(async () => {
    for (const child of spawned) {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone (the test killed it)
      }
    }
    await db?.end();
    await stack?.close();
  });

  /** `orderly runner start` in a process group of its own, so SIGKILL reaches the runner and its bot host. */
  function runnerProcess(): { child: ChildProcess; exited: Promise<unknown> } {
    const child = spawn(join(BIN, 'orderly'), ['runner', 'start', '--segment', 'demo'], {
      env: runnerProcessEnv(stack, 'window-runner-1', FAST_TAKEOVER),
      cwd: stack.dataDir,
      stdio: 'ignore',
      detached: true,
    });
    spawned.push(child);
    return { child, exited: new Promise((resolve) => child.once('exit', resolve)) };
  }

  test('the next attempt finds the step uncertain, verifies it at the target and does not repeat it', async () => {
    const first = runnerProcess();
    const key = 'window-runner-kill-1';
    const hold = ledger.holdNext(key);
    const run = await stack.startRun({ bot: 'ledger', input: { ledgerUrl: ledger.url, verify: true }, idempotencyKey: key });
    await hold.arrived;
    expect((await stack.api('GET', `/v1/runs/${run.id}`)).body).toMatchObject({ status: 'active', attempts: 1 });
    expect(await stepRows(db, run.id)).toEqual([{ status: 'started', attempt: 1 }]);
    process.kill(-first.child.pid!, 'SIGKILL');
    await first.exited;
    hold.release(); // the answer goes to a dead browser

    await stack.startRunner({ env: FAST_TAKEOVER });
    const ended = await stack.waitForRun(run.id, undefined, 60_000);
    expect(ended).toMatchObject({ status: 'succeeded', attempts: 2, result: { recorded: true } });
    expect(ledger.counts()[key]).toBe(1);
    expect(await attemptRows(db, run.id)).toEqual([
      { attempt: 1, outcome: 'failed', code: 'ORDERLY_E_ATTEMPT_LOST' },
      { attempt: 2, outcome: 'succeeded', code: null },
    ]);
    expect(await stepRows(db, run.id)).toEqual([{ status: 'done', attempt: 2 }]);
  }, 140_000);
});

describe('the control room SIGKILLed as a child process and restarted', () => {
  let stack: Stack;
  let db: Client;
  let queue: Queue;
  let reports: Queue;
  beforeAll(async () => {
    stack = await startStack({ vault: false, controlRoomProcess: true });
    await stack.publish(LEDGER_BOT);
    db = await connect(stack);
    queue = new Queue(runQueueName('demo' as SegmentName), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
    reports = new Queue(reportsQueueName(SegmentName.parse('demo')), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
    await stack.startRunner({ env: { ORDERLY_ATTEMPT_LEASE_MS: '3000' } });
  }, 60_000);
  afterAll(async () => {
    await reports?.close();
    await queue?.close();
    await db?.end();
    await stack?.close();
  });

  test('after a side effect and before its completion: the completion is retried until the control room is back', async () => {
    const key = 'window-control-room-kill-1';
    const hold = ledger.holdNext(key);
    const run = await stack.startRun({ bot: 'ledger', input: { ledgerUrl: ledger.url }, idempotencyKey: key });
    await hold.arrived;
    expect((await stack.api('GET', `/v1/runs/${run.id}`)).body).toMatchObject({ status: 'active', attempts: 1 });
    await stack.controlRoomProcess!.kill();
    hold.release();
    await waitFor(async () => (stack.log.text().includes('step completion not recorded; retrying') ? true : undefined), 20_000, 'a failed completion');
    await stack.controlRoomProcess!.start();

    const ended = await stack.waitForRun(run.id);
    expect(ended).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(ledger.counts()[key]).toBe(1);
    expect(await stepRows(db, run.id)).toEqual([{ status: 'done', attempt: 1 }]);
    expect(await attemptRows(db, run.id)).toEqual([{ attempt: 1, outcome: 'succeeded', code: null }]);
  }, 130_000);

  test('after the completion and before the finished report: the report is published while it is down and consumed once it is back', async () => {
    const key = 'window-control-room-kill-2';
    const hold = ledger.holdNext(key, '/after');
    const run = await stack.startRun({ bot: 'ledger', input: { ledgerUrl: ledger.url, after: true }, idempotencyKey: key });
    await hold.arrived;
    expect(await stepRows(db, run.id)).toEqual([{ status: 'done', attempt: 1 }]);
    await stack.controlRoomProcess!.kill();
    hold.release();
    // The runner finished the job and published its report into Redis; nobody has consumed it.
    const jobId = await runJobId(queue, run.id);
    await waitFor(async () => ((await queue.getJobState(jobId)) === 'completed' ? true : undefined), 20_000, 'the runner to finish the job');
    expect(await reports.getWaitingCount()).toBeGreaterThanOrEqual(1);
    expect((await db.query<{ status: string }>('SELECT status FROM runs WHERE id = $1', [run.id])).rows).toEqual([{ status: 'active' }]);
    await stack.controlRoomProcess!.start();

    const ended = await stack.waitForRun(run.id);
    expect(ended).toMatchObject({ status: 'succeeded', attempts: 1, result: { recorded: true } });
    expect(ledger.counts()[key]).toBe(1);
    expect(await attemptRows(db, run.id)).toEqual([{ attempt: 1, outcome: 'succeeded', code: null }]);
  }, 130_000);
});

describe.each(['everysec', 'always'] as const)('Redis SIGKILLed (appendfsync %s) after a side effect and before its completion', (appendfsync) => {
  let redis: OwnRedis;
  let stack: Stack;
  let db: Client;
  beforeAll(async () => {
    redis = await startOwnRedis({ appendfsync });
    stack = await startStack({ vault: false, redisUrl: redis.url });
    await stack.publish(LEDGER_BOT);
    db = await connect(stack);
    await stack.startRunner({ env: { ORDERLY_ATTEMPT_LEASE_MS: '3000' } });
  }, 60_000);
  afterAll(async () => {
    await db?.end();
    // A test that failed while Redis was down leaves it down: the stack's clients need it to close.
    if (redis && !redis.running) await redis.start();
    await stack?.close();
    await redis?.close();
  });

  test('the run ends succeeded in one attempt and the side effect happened once', async () => {
    const key = `window-redis-kill-${appendfsync}`;
    const hold = ledger.holdNext(key);
    const run = await stack.startRun({ bot: 'ledger', input: { ledgerUrl: ledger.url }, idempotencyKey: key });
    await hold.arrived;
    expect((await stack.api('GET', `/v1/runs/${run.id}`)).body).toMatchObject({ status: 'active', attempts: 1 });
    await redis.kill();
    hold.release();
    // The completion goes to the control room, not Redis: it is recorded while Redis is down.
    await waitFor(async () => ((await stepRows(db, run.id))[0]?.status === 'done' ? true : undefined), 20_000, 'the completion');
    await redis.start();

    const ended = await stack.waitForRun(run.id, undefined, 60_000);
    expect(ended).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(ledger.counts()[key]).toBe(1);
    expect(await attemptRows(db, run.id)).toEqual([{ attempt: 1, outcome: 'succeeded', code: null }]);
  }, 160_000);
});

describe('the PostgreSQL link cut after a side effect and before its completion', () => {
  let link: CuttableLink | undefined;
  let stack: Stack;
  let db: Client;
  beforeAll(async () => {
    stack = await startStack({
      vault: false,
      mapDatabaseUrl: throughCuttableLink((l) => (link = l)),
    });
    await stack.publish(LEDGER_BOT);
    db = await connect(stack); // the test's own connection is direct, never cut
    await stack.startRunner({ env: { ORDERLY_ATTEMPT_LEASE_MS: '3000' } });
  }, 60_000);
  afterAll(async () => {
    await db?.end();
    link?.restore(); // a test that failed while it was cut: the stack's clients need it to close
    await stack?.close();
    await link?.close();
  });

  test('the completion answered 503 is retried until the database is back: one side effect, one attempt', async () => {
    const key = 'window-database-cut-1';
    const hold = ledger.holdNext(key);
    const run = await stack.startRun({ bot: 'ledger', input: { ledgerUrl: ledger.url }, idempotencyKey: key });
    await hold.arrived;
    expect((await stack.api('GET', `/v1/runs/${run.id}`)).body).toMatchObject({ status: 'active', attempts: 1 });
    link!.cut();
    hold.release();
    await waitFor(async () => (stack.log.text().includes('step completion not recorded; retrying') ? true : undefined), 20_000, 'a failed completion');
    expect(await stepRows(db, run.id)).toEqual([{ status: 'started', attempt: 1 }]);
    link!.restore();

    const ended = await stack.waitForRun(run.id, undefined, 60_000);
    expect(ended).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(ledger.counts()[key]).toBe(1);
    expect(await stepRows(db, run.id)).toEqual([{ status: 'done', attempt: 1 }]);
  }, 160_000);
});
