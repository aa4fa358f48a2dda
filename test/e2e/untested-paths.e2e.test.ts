import { ChildProcess, spawn } from 'node:child_process';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Client } from 'pg';
import { runQueueName, SegmentName } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { Ledger, startLedger } from '../faults';
import { BIN, REPO, runJobId, runnerProcessEnv, Stack, startStack } from '../harness';

/**
 * Paths the last review found untested (issue 12), each with the real services: the sweep that
 * queues waiting runs whose job never reached Redis, a late report from an attempt that was
 * replaced, a dead-letter requeue refused while a runner holds the old job (ORDERLY_E_JOB_LOCKED),
 * a runner shutdown past its grace period (the bot aborted, the run retried), and screenshot expiry.
 */
const BOTS = join(REPO, 'test', 'fixtures', 'bots');
/** The control room's sweep runs every 30 s and takes runs older than 5 s: one sweep and room to spare. */
const SWEEP_WAIT_MS = 50_000;
/** A dead runner's job is found within seconds: lock 2 s, stall check every second, lease = lock. */
const FAST_TAKEOVER = { ORDERLY_JOB_LOCK_MS: '2000', ORDERLY_STALLED_INTERVAL_MS: '1000' };

let ledger: Ledger;
/** A target that always answers 500: a dlq-flaky run against it fails every attempt. */
let failing: Server;
let failingUrl: string;
beforeAll(async () => {
  ledger = await startLedger();
  failing = createServer((_req, res) => res.writeHead(500, { 'content-type': 'text/html' }).end('<h1>Service unavailable</h1>'));
  await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
  failingUrl = `http://127.0.0.1:${(failing.address() as AddressInfo).port}/submit`;
});
afterAll(async () => {
  await ledger?.close();
  await new Promise((resolve) => (failing ? (failing.closeAllConnections(), failing.close(resolve)) : resolve(undefined)));
});

async function connect(stack: Stack): Promise<Client> {
  const db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  return db;
}
const attemptRows = async (db: Client, runId: string) =>
  (
    await db.query<{ attempt: number; outcome: string | null; code: string | null }>(
      "SELECT attempt, outcome, error->>'code' AS code FROM run_attempts WHERE run_id = $1 ORDER BY attempt",
      [runId],
    )
  ).rows;
const auditRows = async (db: Client, action: string, target: string) =>
  (
    await db.query<{ outcome: string; details: Record<string, unknown> }>(
      'SELECT outcome, details FROM audit_events WHERE action = $1 AND target = $2 ORDER BY seq',
      [action, target],
    )
  ).rows;
const queueOf = (stack: Stack, segment: string) =>
  new Queue(runQueueName(segment as SegmentName), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });

describe("the control room's sweep", () => {
  let stack: Stack;
  let db: Client;
  const queues: Queue[] = [];
  beforeAll(async () => {
    // Screenshots kept 20 s, so their expiry is seen within one test.
    stack = await startStack({ vault: false, controlRoomEnv: { ORDERLY_SCREENSHOT_RETENTION_DAYS: String(20 / 86_400) } });
    await stack.publish(join(BOTS, 'dlq-flaky'));
    db = await connect(stack);
  }, 60_000);
  afterAll(async () => {
    for (const queue of queues) await queue.close();
    await db?.end();
    await stack?.close();
  });

  test('a waiting run whose job never reached Redis is queued by the sweep and then runs once', async () => {
    // No runner serves `other` yet: the run waits with its job queued.
    const key = 'sweep-never-queued-1';
    const created = await stack.startRun({
      bot: 'dlq-flaky',
      segment: 'other',
      idempotencyKey: key,
      input: { targetUrl: `${ledger.url}/record`, memberId: 'ZZT000000001' },
    });
    const queue = queueOf(stack, 'other');
    queues.push(queue);
    const jobId = await waitFor(() => runJobId(queue, created.id).catch(() => undefined), 10_000, 'the job to be queued');
    // The state a control room leaves when it stops between the run's commit and the job's add
    // (or Redis refused the add): the run is waiting, no job, no enqueued_at.
    expect(await queue.remove(jobId)).toBe(1);
    await db.query('UPDATE runs SET enqueued_at = NULL WHERE id = $1', [created.id]);
    expect(await queue.getJob(jobId)).toBeUndefined();

    const requeued = await waitFor(
      async () => {
        const rows = await db.query<{ enqueued_at: Date | null }>('SELECT enqueued_at FROM runs WHERE id = $1', [created.id]);
        return rows.rows[0]?.enqueued_at ? queue.getJob(jobId) : undefined;
      },
      SWEEP_WAIT_MS,
      'the sweep to queue the run',
    );
    expect(requeued?.id).toBe(jobId);
    expect((await stack.api('GET', `/v1/runs/${created.id}`)).body.status).toBe('waiting');

    await stack.startRunner({ segment: 'other' });
    expect(await stack.waitForRun(created.id)).toMatchObject({ status: 'succeeded', attempts: 1, result: { accepted: true } });
    expect(ledger.counts()[key]).toBe(1);
  }, 120_000);

  test('a screenshot past its retention is no longer served and the sweep deletes it', async () => {
    await stack.startRunner({ segment: 'demo' });
    const created = await stack.startRun({ bot: 'dlq-flaky', segment: 'demo', input: { targetUrl: failingUrl, memberId: 'ZZT000000002' } });
    expect((await stack.waitForRun(created.id, undefined, 60_000)).status).toBe('dead_lettered');
    const listed = (await stack.api('GET', `/v1/runs/${created.id}/screenshots`)).body.screenshots as { id: number; createdAt: string; expiresAt: string }[];
    expect(listed.length).toBeGreaterThanOrEqual(1); // a failure screenshot per attempt
    const newest = listed.at(-1)!;
    expect(Date.parse(newest.expiresAt) - Date.parse(newest.createdAt)).toBeGreaterThanOrEqual(19_000);
    expect(Date.parse(newest.expiresAt) - Date.parse(newest.createdAt)).toBeLessThanOrEqual(21_000);
    const read = () =>
      fetch(`${stack.controlRoom.url}/v1/runs/${created.id}/screenshots/${newest.id}`, {
        headers: { authorization: `Bearer ${stack.adminToken}`, 'x-orderly-reason': 'integration test, synthetic data' },
      });
    // Served while it is kept (unless this machine took its whole retention to get here).
    if (Date.now() < Date.parse(newest.expiresAt) - 1000) expect((await read()).status).toBe(200);

    // Past its retention: not listed, not served, even before the sweep deletes the row.
    await waitFor(() => (Date.now() > Date.parse(newest.expiresAt) + 500 ? true : undefined), 30_000, 'the retention to pass');
    expect((await stack.api('GET', `/v1/runs/${created.id}/screenshots`)).body.screenshots).toEqual([]);
    expect((await read()).status).toBe(404);
    const rows = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM run_screenshots WHERE run_id = $1', [created.id])).rows[0]!.n;
    await waitFor(async () => ((await rows()) === 0 ? true : undefined), SWEEP_WAIT_MS, 'the sweep to delete the expired screenshots');
  }, 170_000);
});

describe('a late report from an attempt that was replaced', () => {
  let stack: Stack;
  let db: Client;
  let child: ChildProcess | undefined;
  beforeAll(async () => {
    stack = await startStack({ vault: false });
    await stack.publish(join(BOTS, 'ledger'));
    db = await connect(stack);
  }, 60_000);
  afterAll(async () => {
    try {
      if (child?.pid) process.kill(-child.pid, 'SIGKILL'); // a stopped process group is killed too
    } catch {
      // already gone
    }
    await db?.end();
    await stack?.close();
  });

  test('is recorded and moves nothing: the run keeps the outcome of the attempt that replaced it', async () => {
    // `orderly runner start` in a process group of its own, so SIGSTOP reaches the runner and its bot host.
    child = spawn(join(BIN, 'orderly'), ['runner', 'start', '--segment', 'demo'], {
      env: runnerProcessEnv(stack, 'late-runner-1', FAST_TAKEOVER),
      cwd: stack.dataDir,
      stdio: 'ignore',
      detached: true,
    });
    const pid = child.pid!;
    const key = 'late-report-1';
    const hold = ledger.holdNext(key);
    const run = await stack.startRun({ bot: 'ledger', input: { ledgerUrl: ledger.url, verify: true }, idempotencyKey: key });
    await hold.arrived;
    expect((await stack.api('GET', `/v1/runs/${run.id}`)).body).toMatchObject({ status: 'active', attempts: 1 });

    // Attempt 1's runner freezes (a long GC pause, a stopped VM): its lease and job lock lapse,
    // and another runner takes the run over as attempt 2, which verifies the uncertain step.
    process.kill(-pid, 'SIGSTOP');
    await stack.startRunner({ env: FAST_TAKEOVER });
    const ended = await stack.waitForRun(run.id, undefined, 60_000);
    expect(ended).toMatchObject({ status: 'succeeded', attempts: 2, result: { recorded: true } });
    expect(await attemptRows(db, run.id)).toEqual([
      { attempt: 1, outcome: 'failed', code: 'ORDERLY_E_ATTEMPT_LOST' },
      { attempt: 2, outcome: 'succeeded', code: null },
    ]);
    const resultsBefore = await auditRows(db, 'run.result', run.id);
    expect(resultsBefore.map((r) => r.details.attempt)).toEqual([2]);

    // Attempt 1 wakes up: its bot gets the ledger's answer, and its runner reports the attempt.
    hold.release();
    process.kill(-pid, 'SIGCONT');
    const late = await waitFor(async () => (await auditRows(db, 'run.result', run.id)).find((r) => r.details.attempt === 1), 60_000, "attempt 1's late report");
    expect(late.details).toMatchObject({ attempt: 1, applied: false });

    // Nothing moved: the run, its result and its side effect are attempt 2's.
    expect(await stack.waitForRun(run.id)).toMatchObject({ status: 'succeeded', attempts: 2, result: { recorded: true } });
    expect(ledger.counts()[key]).toBe(1);
    expect((await attemptRows(db, run.id))[1]).toEqual({ attempt: 2, outcome: 'succeeded', code: null });
  }, 230_000);
});

describe('a dead letter requeued while a runner still holds its old job', () => {
  let stack: Stack;
  let db: Client;
  let holder: Worker | undefined;
  beforeAll(async () => {
    stack = await startStack({ vault: false });
    await stack.publish(join(BOTS, 'dlq-flaky'));
    db = await connect(stack);
  }, 60_000);
  afterAll(async () => {
    await holder?.close(true);
    await db?.end();
    await stack?.close();
  });

  test('is refused with ORDERLY_E_JOB_LOCKED (retryable), and goes through once the runner lets go of the job', async () => {
    // No runner serves `other`: the test's own worker takes the run's job and holds it, as a
    // runner does between reporting an attempt's final failure and failing its job.
    const created = await stack.startRun({ bot: 'dlq-flaky', segment: 'other', input: { targetUrl: failingUrl, memberId: 'ZZT000000003' } });
    const queue = queueOf(stack, 'other');
    let letGo!: () => void;
    const held = new Promise<void>((resolve) => (letGo = resolve));
    let taken = false;
    try {
      const jobId = await waitFor(() => runJobId(queue, created.id).catch(() => undefined), 10_000, 'the job to be queued');
      const worker: Worker = new Worker(
        runQueueName('other' as SegmentName),
        async (): Promise<void> => {
          taken = true;
          await held;
          // It takes no other job (the fresh one is for a real runner), and fails this one as a
          // runner fails a job with no attempts left.
          void worker.close();
          throw new UnrecoverableError('the final attempt failed');
        },
        { connection: { url: TEST_REDIS_URL, maxRetriesPerRequest: null }, prefix: stack.prefix },
      );
      holder = worker;
      await waitFor(async () => (taken && (await queue.getJobState(jobId)) === 'active' ? true : undefined), 10_000, 'the job to be held');
      // The run as the control room records it once that final report is consumed.
      await db.query("UPDATE runs SET status = 'dead_lettered', finished_at = now(), error = $2 WHERE id = $1", [
        created.id,
        JSON.stringify({ code: 'ORDERLY_E_BOT_FAILED', message: 'target answered 500', retryable: true, details: {} }),
      ]);

      const refused = await stack.api('POST', `/v1/dlq/${created.id}/requeue`, { reason: 'target fixed' });
      expect({ status: refused.status, code: refused.body.error.code, retryable: refused.body.error.retryable }).toEqual({
        status: 409,
        code: 'ORDERLY_E_JOB_LOCKED',
        retryable: true,
      });
      expect((await stack.api('GET', `/v1/runs/${created.id}`)).body.status).toBe('dead_lettered');
      expect(await queue.getJobState(jobId)).toBe('active');
      expect((await auditRows(db, 'dlq.requeue', `run:${created.id}`)).filter((e) => e.outcome === 'success')).toEqual([]);

      // Retried while the runner is finishing: the requeue waits for it, then goes through.
      const retry = stack.api('POST', `/v1/dlq/${created.id}/requeue`, { reason: 'target fixed' });
      setTimeout(letGo, 1000);
      const accepted = await retry;
      expect(accepted).toMatchObject({ status: 200, body: { runId: created.id, status: 'waiting', requeues: 1 } });
      // A fresh job under the same id, waiting for a runner of `other`.
      await worker.close();
      holder = undefined;
      expect(await waitFor(async () => ((await queue.getJobState(jobId)) === 'waiting' ? true : undefined), 10_000, 'the fresh job')).toBe(true);
    } finally {
      letGo();
      await queue.close();
    }
  }, 70_000);
});

describe('a runner shut down past its grace period', () => {
  let stack: Stack;
  let db: Client;
  const started: string[] = [];
  beforeAll(async () => {
    stack = await startStack({ vault: false });
    await stack.publish(join(BOTS, 'cancel-slow'));
    db = await connect(stack);
  }, 60_000);
  afterAll(async () => {
    await db?.end();
    await stack?.close();
  });

  test('aborts the bot when the grace ends; the run is retried by another runner and succeeds', async () => {
    // The harness gives runners a 5 s grace; this bot works 8 s, so it is still working when it ends.
    const first = await stack.startRunner({ env: FAST_TAKEOVER, onBotStarted: (runId) => started.push(runId) });
    const created = await stack.startRun({ bot: 'cancel-slow', input: { seconds: 8 } });
    await waitFor(() => started.includes(created.id) || undefined, 30_000, 'the bot to start');
    const closing = Date.now();
    await first.close();
    const closedAfter = Date.now() - closing;
    expect(closedAfter).toBeGreaterThanOrEqual(4500); // it waited out the grace
    const attempt1 = await waitFor(
      async () => {
        const rows = await attemptRows(db, created.id);
        return rows[0]?.outcome ? rows : undefined;
      },
      20_000,
      'attempt 1 to be recorded',
    );
    expect(attempt1[0]).toMatchObject({ attempt: 1, outcome: 'failed' });
    const run = (await stack.api('GET', `/v1/runs/${created.id}`)).body;
    expect(run.status).not.toBe('dead_lettered');
    expect(run.error ?? { retryable: true }).toMatchObject({ retryable: true });

    await stack.startRunner({ env: FAST_TAKEOVER, onBotStarted: (runId) => started.push(runId) });
    const ended = await stack.waitForRun(created.id, undefined, 60_000);
    expect(ended).toMatchObject({ status: 'succeeded', attempts: 2, result: { finished: true } });
    expect((await attemptRows(db, created.id)).map((r) => r.outcome)).toEqual(['failed', 'succeeded']);
    const lines = (await db.query<{ attempt: number; msg: string }>('SELECT attempt, msg FROM run_logs WHERE run_id = $1 ORDER BY attempt, seq', [created.id]))
      .rows;
    expect(lines.filter((l) => l.msg.includes('work started')).map((l) => l.attempt)).toEqual([1, 2]);
    expect(lines.filter((l) => l.msg.includes('work finished')).map((l) => l.attempt)).toEqual([2]);
  }, 140_000);
});
