import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { loadPrivateKey, parseControlRoomPublicKeys, reportAad, reportsQueueName, sealTo, SegmentName, signReport, UnsignedReport } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { Stack, startStack } from '../../../test/harness';
import { runnerSigningKeyPath, runnerTokenPath } from '../keys/secrets';
import { dlqQueueName } from '../runs/queues';
import { DeadLettering, DLQ_JOB_NAME, DlqQueueEntry } from './dead-letter';

/**
 * Every way a run becomes dead-lettered goes through `DeadLettering` (dead-letter.ts), and each
 * leaves the three things a dead letter is: the run's state, the `run.dead_lettered` alert in the
 * outbox, and a v1 entry on `orderly.dlq.<segment>`. Real PostgreSQL and Redis; no runner: the
 * test claims over the runner API and sends reports signed with the demo runner's own key.
 */
const MEMBER = { memberId: 'ZZT100200304', dateOfBirth: '1900-03-31' };
let stack: Stack;
let db: Client;
let reports: Queue;
let dlq: Queue;
let secretDir: string;
let token: string;
const within = jest.spyOn(DeadLettering.prototype, 'within');

beforeAll(async () => {
  // A webhook nobody answers: alerts stay in the outbox, where the test reads them.
  secretDir = mkdtempSync(join(tmpdir(), 'orderly-dl-secret-'));
  writeFileSync(join(secretDir, 'secret'), 'fake-webhook-secret-for-tests', { mode: 0o600 });
  stack = await startStack({
    controlRoomEnv: { ORDERLY_ALERT_WEBHOOK_URL: 'http://127.0.0.1:9/fake-hook', ORDERLY_ALERT_WEBHOOK_SECRET_FILE: join(secretDir, 'secret') },
  });
  await stack.publish();
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  reports = new Queue(reportsQueueName(SegmentName.parse('demo')), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
  dlq = new Queue(dlqQueueName('demo'), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
  token = readFileSync(runnerTokenPath(secrets(), 'demo'), 'utf8').trim();
}, 120_000);
afterAll(async () => {
  await reports?.close();
  await dlq?.close();
  await db?.end();
  await stack?.close();
  rmSync(secretDir, { recursive: true, force: true });
});
beforeEach(() => within.mockClear());

const secrets = () => join(stack.dataDir, 'secrets');
let seq = 0;
/** A waiting run with `attempts` attempts in all (the manifest's 3 lowered in the database). */
async function waitingRun(attempts: number): Promise<string> {
  const run = await stack.startRun({ bot: 'eligibility-check', input: { portalUrl: stack.portal.url, ...MEMBER }, idempotencyKey: `dead-letter-${++seq}` });
  await db.query('UPDATE runs SET max_attempts = $2 WHERE id = $1', [run.id, attempts]);
  return run.id;
}
const claim = (id: string) => stack.api('POST', `/v1/runner/runs/${id}/claim`, { runnerId: 'dead-letter-test' }, token);
const expireLease = (id: string) =>
  db.query("UPDATE run_attempts SET lease_expires_at = now() - interval '1 second' WHERE run_id = $1 AND finished_at IS NULL", [id]);

function signed(report: UnsignedReport) {
  return signReport(loadPrivateKey(readFileSync(runnerSigningKeyPath(secrets(), 'demo'), 'utf8')), report);
}
function sealed(runId: string, attempt: number, body: object) {
  const sealing = parseControlRoomPublicKeys(readFileSync(join(secrets(), 'control-room.pub'), 'utf8')).sealing;
  return sealTo(sealing, Buffer.from(JSON.stringify(body)), reportAad(runId, attempt));
}
const send = (report: UnsignedReport) => reports.add('report', signed(report), { jobId: `dl-${++seq}-${randomBytes(4).toString('hex')}`, attempts: 1 });
function finished(runId: string, attempt: number, fence: string, outcome: 'succeeded' | 'failed'): UnsignedReport {
  const body =
    outcome === 'succeeded'
      ? { result: { eligible: true }, lines: [] }
      : { error: { code: 'ORDERLY_E_BOT_FAILED', message: 'the portal answered 500', retryable: true, details: {} }, lines: [] };
  return {
    v: 1,
    kind: 'finished',
    runnerId: 'dead-letter-test',
    at: new Date().toISOString(),
    runId: runId as never,
    attempt,
    outcome,
    final: true,
    durationMs: 5,
    fence,
    sealed: sealed(runId, attempt, body),
  };
}

/** The three parts of a dead letter, for run `id`. */
async function deadLetterOf(id: string) {
  const run = (await stack.api('GET', `/v1/runs/${id}`)).body as { status: string; attempts: number; error?: { code: string } };
  const alerts = (
    await db.query<{ body: Record<string, unknown> }>("SELECT body FROM alert_outbox WHERE kind = 'run.dead_lettered' AND body->>'runId' = $1", [id])
  ).rows.map((r) => r.body);
  const job = await dlq.getJob(id);
  return { run, alerts, job: job ? { name: job.name, entry: DlqQueueEntry.parse(job.data) } : undefined };
}
const expectDeadLetter = async (id: string, errorCode: string, attempts: number) => {
  const found = await waitFor(
    async () => {
      const d = await deadLetterOf(id);
      return d.run.status === 'dead_lettered' && d.job ? d : undefined;
    },
    20_000,
    `run ${id} to be dead-lettered`,
  );
  expect(found.run).toMatchObject({ status: 'dead_lettered', attempts, error: { code: errorCode } });
  expect(found.alerts).toEqual([{ kind: 'run.dead_lettered', runId: id, bot: 'eligibility-check', segment: 'demo', errorCode, attempts }]);
  expect(found.job).toEqual({
    name: DLQ_JOB_NAME,
    entry: { v: 1, runId: id, bot: 'eligibility-check', segment: 'demo', errorCode, attempts, deadLetteredAt: expect.any(String) },
  });
  // Through the one way in, for this run.
  expect(within.mock.calls.map((c) => c[1])).toContain(id);
};

test('claim: the last attempt lost is dead-lettered through DeadLettering, with its alert and DLQ entry', async () => {
  const id = await waitingRun(1);
  expect((await claim(id)).body).toMatchObject({ attempt: 1, final: true });
  await expireLease(id);
  const refused = await claim(id);
  expect({ status: refused.status, code: refused.body.error?.code }).toEqual({ status: 409, code: 'ORDERLY_E_RUN_NOT_CLAIMABLE' });
  await expectDeadLetter(id, 'ORDERLY_E_ATTEMPT_LOST', 1);
});

test('claim: a last attempt that cannot start (Vault sealed while issuing its SecretID) is dead-lettered through DeadLettering', async () => {
  const id = await waitingRun(1);
  stack.vault!.devVault.seal();
  let refused;
  try {
    refused = await claim(id);
  } finally {
    stack.vault!.devVault.unseal();
  }
  expect(refused.status).toBeGreaterThanOrEqual(400);
  const code = refused.body.error.code as string;
  expect(code).toMatch(/^ORDERLY_E_VAULT_/);
  await expectDeadLetter(id, code, 1);
});

test('finish: a failed report of the last attempt is dead-lettered through DeadLettering, with its alert and DLQ entry', async () => {
  const id = await waitingRun(1);
  const claimed = await claim(id);
  expect(claimed.body).toMatchObject({ attempt: 1, final: true });
  await send(finished(id, 1, claimed.body.fence as string, 'failed'));
  await expectDeadLetter(id, 'ORDERLY_E_BOT_FAILED', 1);
});

test("report consumer: a runner's refusal of a run's job is dead-lettered through DeadLettering, with its alert and DLQ entry", async () => {
  const id = await waitingRun(3);
  await send({
    v: 1,
    kind: 'refused',
    runnerId: 'dead-letter-test',
    at: new Date().toISOString(),
    jobId: `job-of-${id}`,
    runId: id as never,
    errorCode: 'ORDERLY_E_JOB_EXPIRED',
    reason: 'the job envelope expired',
  });
  await expectDeadLetter(id, 'ORDERLY_E_JOB_EXPIRED', 1);
});

test('a dead letter is not dead-lettered twice: a repeated refusal adds no second alert', async () => {
  const id = await waitingRun(3);
  const refusal: UnsignedReport = {
    v: 1,
    kind: 'refused',
    runnerId: 'dead-letter-test',
    at: new Date().toISOString(),
    jobId: `job-of-${id}`,
    runId: id as never,
    errorCode: 'ORDERLY_E_JOB_EXPIRED',
    reason: 'expired',
  };
  await send(refusal);
  await expectDeadLetter(id, 'ORDERLY_E_JOB_EXPIRED', 1);
  await send(refusal);
  await waitFor(
    async () => ((await db.query('SELECT 1 FROM job_refusals WHERE run_id = $1', [id])).rows.length >= 2 ? true : undefined),
    20_000,
    'the second refusal',
  );
  expect((await deadLetterOf(id)).alerts).toHaveLength(1);
}, 70_000);

test("a late report of a replaced attempt leaves that attempt's recorded outcome and the run as they are (issue 12)", async () => {
  const id = await waitingRun(3);
  const first = await claim(id);
  expect(first.body).toMatchObject({ attempt: 1 });
  // Attempt 1's runner stalls: its lease lapses, the claim records it lost, attempt 2 starts.
  await expireLease(id);
  expect((await claim(id)).body).toMatchObject({ lostAttempt: 1 });
  expect((await claim(id)).body).toMatchObject({ attempt: 2 });
  const attempt1 = async () =>
    (
      await db.query<{ outcome: string; code: string | null; finished_at: Date }>(
        "SELECT outcome, error->>'code' AS code, finished_at FROM run_attempts WHERE run_id = $1 AND attempt = 1",
        [id],
      )
    ).rows[0]!;
  const recorded = await attempt1();
  expect(recorded).toMatchObject({ outcome: 'failed', code: 'ORDERLY_E_ATTEMPT_LOST' });

  // Attempt 1 reports after all, with its own (genuine) fencing token: recorded, moves nothing.
  await send(finished(id, 1, first.body.fence as string, 'succeeded'));
  const audited = await waitFor(
    async () =>
      (
        await db.query<{ details: { attempt: number; applied: boolean } }>("SELECT details FROM audit_events WHERE action = 'run.result' AND target = $1", [id])
      ).rows.find((r) => r.details.attempt === 1),
    20_000,
    "attempt 1's late report to be recorded",
  );
  expect(audited.details).toMatchObject({ attempt: 1, applied: false });
  expect(await attempt1()).toEqual(recorded);
  expect((await stack.api('GET', `/v1/runs/${id}`)).body).toMatchObject({ status: 'active', attempts: 2 });
});
