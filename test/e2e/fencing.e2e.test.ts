import { Queue } from 'bullmq';
import { Client } from 'pg';
import { runQueueName, SegmentName } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { CuttableLink, Ledger, startCuttableLink, startLedger } from '../faults';
import { LEDGER_BOT, runJobId, Stack, startStack } from '../harness';

/**
 * Fencing and durable step completions (issue 12), struck inside the window that matters: the
 * ledger holds its answer until the test has struck, so every fault falls between a side effect
 * and the moment the bot learns it happened (and so before its step is completed).
 */
/**
 * Short leases (renewed every second, so a refused duplicate asks again within seconds) and a fast
 * stall check. Every runner of the file uses the same check interval: BullMQ's stall check skips
 * while the last check's marker lives, and that marker lasts the interval of the runner that set it.
 */
const RUNNER_ENV = { ORDERLY_ATTEMPT_LEASE_MS: '3000', ORDERLY_STALLED_INTERVAL_MS: '500' };

let ledger: Ledger;
let stack: Stack;
let db: Client;
let queue: Queue;
beforeAll(async () => {
  ledger = await startLedger();
  stack = await startStack({ vault: false });
  await stack.publish(LEDGER_BOT);
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  queue = new Queue(runQueueName('demo' as SegmentName), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
}, 60_000);
afterAll(async () => {
  await queue?.close();
  await db?.end();
  await stack?.close();
  await ledger?.close();
});

const attemptRows = async (runId: string) =>
  (await db.query<{ attempt: number; outcome: string | null }>('SELECT attempt, outcome FROM run_attempts WHERE run_id = $1 ORDER BY attempt', [runId])).rows;
const refusedClaims = async (runId: string) =>
  (
    await db.query<{ details: Record<string, unknown> }>(
      "SELECT details FROM audit_events WHERE action = 'run.claim' AND target = $1 AND outcome = 'failure' ORDER BY seq",
      [runId],
    )
  ).rows;

test('the genuine job re-added under another job id while attempt 1 runs: the bot runs once, the second claim is refused and recorded', async () => {
  const runner = await stack.startRunner({ concurrency: 2, env: RUNNER_ENV });
  try {
    const key = 'fencing-duplicate-1';
    const hold = ledger.holdNext(key);
    const run = await stack.startRun({ bot: 'ledger', input: { ledgerUrl: ledger.url }, idempotencyKey: key });
    await hold.arrived;
    // In flight: the side effect happened, the bot waits for the target's answer.
    expect((await stack.api('GET', `/v1/runs/${run.id}`)).body).toMatchObject({ status: 'active', attempts: 1 });

    // Whoever can write to Redis replays the genuine, validly signed envelope under a new job id.
    const genuine = await queue.getJob(await runJobId(queue, run.id));
    expect(genuine).toBeDefined();
    const duplicateId = `${key}-replayed`;
    await queue.add('run', genuine!.data, { jobId: duplicateId, attempts: 6 });

    // The second runner slot takes the duplicate at once; its claim is refused and audited.
    const refused = await waitFor(
      async () => ((await refusedClaims(run.id)).length > 0 ? refusedClaims(run.id) : undefined),
      20_000,
      'the duplicate claim to be refused',
    );
    expect(refused[0]!.details).toMatchObject({ code: 'ORDERLY_E_RUN_ALREADY_ACTIVE', activeAttempt: 1 });
    expect(await attemptRows(run.id)).toEqual([{ attempt: 1, outcome: null }]);

    hold.release();
    const ended = await stack.waitForRun(run.id);
    expect(ended).toMatchObject({ status: 'succeeded', attempts: 1, result: { recorded: true } });
    // Once the run has ended, the duplicate's next claim finds nothing to run and the job ends.
    await waitFor(async () => ((await queue.getJobState(duplicateId)) === 'completed' ? true : undefined), 20_000, 'the duplicate job to be dropped');
    expect((await queue.getJob(duplicateId))?.returnvalue).toEqual({ ok: false });
    expect(ledger.counts()[key]).toBe(1);
    expect(await attemptRows(run.id)).toEqual([{ attempt: 1, outcome: 'succeeded' }]);
  } finally {
    await runner.close();
  }
}, 150_000);

test("a live job that BullMQ wrongly declares stalled: the redelivery's claim is refused and the bot runs once", async () => {
  const runner = await stack.startRunner({ concurrency: 2, env: RUNNER_ENV });
  try {
    const key = 'fencing-stalled-1';
    const hold = ledger.holdNext(key);
    const run = await stack.startRun({ bot: 'ledger', input: { ledgerUrl: ledger.url }, idempotencyKey: key });
    await hold.arrived;
    expect((await stack.api('GET', `/v1/runs/${run.id}`)).body).toMatchObject({ status: 'active', attempts: 1 });
    // The job's lock vanishes while its runner is alive (a Redis failover, a long pause): BullMQ's
    // stall check puts the job back and the runner's free slot takes it again.
    expect(await stack.redis.del(`${stack.prefix}:${runQueueName('demo' as SegmentName)}:${await runJobId(queue, run.id)}:lock`)).toBe(1);
    const refused = await waitFor(
      async () => ((await refusedClaims(run.id)).length > 0 ? refusedClaims(run.id) : undefined),
      20_000,
      'the redelivered claim to be refused',
    );
    expect(refused[0]!.details).toMatchObject({ code: 'ORDERLY_E_RUN_ALREADY_ACTIVE', activeAttempt: 1 });
    expect(await attemptRows(run.id)).toEqual([{ attempt: 1, outcome: null }]);

    hold.release();
    const ended = await stack.waitForRun(run.id);
    expect(ended).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(ledger.counts()[key]).toBe(1);
    expect(await attemptRows(run.id)).toEqual([{ attempt: 1, outcome: 'succeeded' }]);
  } finally {
    await runner.close();
  }
}, 130_000);

describe('the control room unreachable between a side effect and its completion', () => {
  let link: CuttableLink;
  beforeAll(async () => {
    const target = new URL(stack.controlRoom.url);
    link = await startCuttableLink({ host: target.hostname, port: Number(target.port) });
  });
  afterAll(() => link?.close());

  test('the runner retries the completion until it is recorded: one side effect, one attempt, no uncertain step', async () => {
    const runner = await stack.startRunner({ env: { ...RUNNER_ENV, ORDERLY_CONTROL_ROOM_URL: `http://${link.address}` } });
    try {
      const key = 'fencing-outage-1';
      const hold = ledger.holdNext(key);
      const run = await stack.startRun({ bot: 'ledger', input: { ledgerUrl: ledger.url }, idempotencyKey: key });
      await hold.arrived;
      link.cut();
      hold.release();
      // The bot's step returned; its completion could not reach the control room and is retried.
      await waitFor(async () => (stack.log.text().includes('step completion not recorded; retrying') ? true : undefined), 20_000, 'a failed completion');
      expect((await db.query("SELECT status FROM run_steps WHERE run_id = $1 AND name = 'record'", [run.id])).rows).toEqual([{ status: 'started' }]);
      link.restore();
      const ended = await stack.waitForRun(run.id);
      expect(ended).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect((await db.query("SELECT status, attempt FROM run_steps WHERE run_id = $1 AND name = 'record'", [run.id])).rows).toEqual([
        { status: 'done', attempt: 1 },
      ]);
      expect(stack.log.text()).toContain('step completion recorded after retries');
      expect(ledger.counts()[key]).toBe(1);
    } finally {
      await runner.close();
    }
  }, 130_000);
});
