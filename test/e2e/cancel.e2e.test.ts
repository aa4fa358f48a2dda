import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { runQueueName, SegmentName } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { runJobIdHasher } from '@orderly/control-room';
import { REPO, Stack, startStack } from '../harness';

/**
 * `orderly run cancel`: a waiting run leaves the queue; an active run's bot is aborted through
 * ctx.signal by its runner, the job fails without retry and the run ends `cancelled`. Real Redis,
 * PostgreSQL and Chromium.
 */
let stack: Stack;
let db: Client;
/** Runs whose bot has started: the runner calls back as the bot's run() is called. */
const startedRuns = new Set<string>();

beforeAll(async () => {
  stack = await startStack({ vault: false });
  await stack.startRunner({ onBotStarted: (runId) => startedRuns.add(runId) });
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'cancel-slow'));
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
}, 90_000);

afterAll(async () => {
  await db?.end();
  await stack?.close();
});

/** Run job ids are keyed hashes of idempotency keys (never the key itself): the test holds the data key. */
const jobIdOf = (idempotencyKey: string) =>
  runJobIdHasher(Buffer.from(readFileSync(join(stack.dataDir, 'secrets', 'data.key'), 'utf8').trim(), 'base64'))(idempotencyKey);
const queueOf = (segment: string) => new Queue(runQueueName(segment as SegmentName), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });

test('a waiting run is cancelled and its job leaves the queue; a finished run cannot be cancelled', async () => {
  // No runner serves `other`, so the run waits.
  const created = await stack.startRun({ bot: 'cancel-slow', segment: 'other', input: { seconds: 1 } });
  const queue = queueOf('other');
  try {
    await waitFor(async () => ((await queue.getJob(jobIdOf(created.idempotencyKey))) ? true : undefined), 10_000, 'the job to be queued');
    const cancelled = await stack.api('POST', `/v1/runs/${created.id}/cancel`);
    expect(cancelled).toEqual({ status: 200, body: { runId: created.id, status: 'cancelled', previous: 'waiting', jobRemoved: true } });
    expect(await queue.getJob(jobIdOf(created.idempotencyKey))).toBeUndefined();
  } finally {
    await queue.close();
  }
  expect((await stack.api('GET', `/v1/runs/${created.id}`)).body).toMatchObject({ status: 'cancelled', finishedAt: expect.any(String) });

  const again = await stack.api('POST', `/v1/runs/${created.id}/cancel`);
  expect([again.status, again.body.error.code]).toEqual([409, 'ORDERLY_E_RUN_NOT_CANCELLABLE']);
  const unknown = await stack.api('POST', '/v1/runs/00000000-0000-4000-8000-000000000000/cancel');
  expect([unknown.status, unknown.body.error.code]).toEqual([404, 'ORDERLY_E_NOT_FOUND']);
  const noToken = await stack.api('POST', `/v1/runs/${created.id}/cancel`, undefined, '');
  expect(noToken.status).toBe(401);

  // The same through the CLI.
  const other = await stack.startRun({ bot: 'cancel-slow', segment: 'other', input: { seconds: 1 } });
  const cli = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const child = spawn(join(REPO, 'node_modules', '.bin', 'orderly'), ['run', 'cancel', other.id, '--json'], {
      env: { PATH: process.env.PATH ?? '', HOME: stack.dataDir, ORDERLY_URL: stack.controlRoom.url, ORDERLY_TOKEN: stack.adminToken },
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('close', (code) => resolve({ code, stdout }));
  });
  expect(cli.code).toBe(0);
  expect(JSON.parse(cli.stdout)).toMatchObject({ runId: other.id, status: 'cancelled', previous: 'waiting' });
});

test('an active run is aborted through ctx.signal, not retried, and ends cancelled before its work is done', async () => {
  const created = await stack.startRun({ bot: 'cancel-slow', input: { seconds: 60 } });
  // The bot host says `started` right before it calls the bot's run(), whose first act is its
  // `work started` line: a cancel from here on reaches the bot's loop, not a bot yet to start.
  await waitFor(() => startedRuns.has(created.id) || undefined, 30_000, 'the bot to start');
  expect((await stack.api('GET', `/v1/runs/${created.id}`)).body.status).toBe('active');
  const started = Date.now();
  const cancelled = await stack.api('POST', `/v1/runs/${created.id}/cancel`);
  expect(cancelled.body).toMatchObject({ runId: created.id, status: 'cancelled', previous: 'active', jobRemoved: false });

  // The runner fails the job at once, without retry (the manifest allows 3 attempts).
  const queue = queueOf('demo');
  try {
    // The job is read after it is seen failed: a copy read before would hold the attempts of then.
    const job = await waitFor(
      async () => ((await queue.getJobState(jobIdOf(created.idempotencyKey))) === 'failed' ? queue.getJob(jobIdOf(created.idempotencyKey)) : undefined),
      20_000,
      'the job to fail',
    );
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toBe('ORDERLY_E_RUN_CANCELLED');
  } finally {
    await queue.close();
  }
  expect(Date.now() - started).toBeLessThan(20_000);
  const attempt = await waitFor(
    async () => {
      const rows = (await db.query('SELECT attempt, outcome, error FROM run_attempts WHERE run_id = $1', [created.id])).rows;
      return rows[0]?.outcome ? rows : undefined;
    },
    10_000,
    'the attempt to be recorded',
  );
  expect(attempt).toEqual([{ attempt: 1, outcome: 'failed', error: expect.objectContaining({ code: 'ORDERLY_E_RUN_CANCELLED', retryable: false }) }]);

  const run = (await stack.api('GET', `/v1/runs/${created.id}`)).body;
  expect(run.status).toBe('cancelled');
  expect(run.result).toBeUndefined();
  const lines = ((await stack.api('GET', `/v1/runs/${created.id}/logs`)).body.lines as { msg: string }[]).map((l) => l.msg);
  expect(lines).toContainEqual(expect.stringContaining('work started'));
  expect(lines).not.toContainEqual(expect.stringContaining('work finished'));

  // The runner and its bot host are fine afterwards: the next run goes through.
  const next = await stack.startRun({ bot: 'cancel-slow', input: { seconds: 0 } });
  expect((await stack.waitForRun(next.id)).status).toBe('succeeded');
}, 120_000);
