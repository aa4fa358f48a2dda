import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { ControlRoomConfigSchema, RunningControlRoom, startControlRoom } from '@orderly/control-room';
import { createLogger, runQueueName, SegmentName } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { verifyAlertSignature } from '../../control-room/src/alerts/signature';
import { dlqQueueName } from '../../control-room/src/runs/queues';
import { REPO, Stack, startStack } from '../harness';

/**
 * Issue 5's must-show: a run that fails every attempt lands in the DLQ with its history; a
 * requeue after the fault is gone makes it succeed with the same idempotency key; a discard
 * records its reason; both audited. Plus the alert webhook: signed, retried, durable. Real
 * Redis, PostgreSQL, Chromium; a local target and a local webhook receiver that the test drives.
 */
const MEMBER_ID = 'ZZT314159265';

/** The target the bot submits work to: answers 500 until told otherwise, and counts keys. */
class Target {
  failing = true;
  readonly accepted: string[] = [];
  readonly seen: string[] = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== '/submit') {
        res.writeHead(404).end(); // the browser's own requests (favicon)
        return;
      }
      const key = url.searchParams.get('key') ?? '';
      this.seen.push(key);
      if (this.failing) {
        res.writeHead(500, { 'content-type': 'text/html' }).end('<h1>Service unavailable</h1>');
        return;
      }
      this.accepted.push(key);
      res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>Accepted</h1>');
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/submit`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

interface Delivery {
  body: string;
  headers: IncomingMessage['headers'];
  answered: number;
}

/**
 * The alert webhook receiver. Each test sets its own answer (`answer` is given the alert and how
 * many times that alert id was delivered before), so no test leans on what an earlier one left.
 */
class Receiver {
  answer: (alert: { kind?: string; runId?: string }, previousDeliveries: number) => number = () => 200;
  readonly deliveries: Delivery[] = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const previous = this.deliveries.filter((d) => d.headers['x-orderly-alert-id'] === req.headers['x-orderly-alert-id']).length;
        const answered = this.answer(JSON.parse(body) as { kind?: string; runId?: string }, previous);
        this.deliveries.push({ body, headers: req.headers, answered });
        res.writeHead(answered).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/alerts`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  forRun(runId: string): Delivery[] {
    return this.deliveries.filter((d) => (JSON.parse(d.body) as { runId?: string }).runId === runId);
  }
}

const secret = randomBytes(32).toString('base64url');
const secretDir = mkdtempSync(join(tmpdir(), 'orderly-dlq-test-'));
const secretFile = join(secretDir, 'alert.secret');
const target = new Target();
const receiver = new Receiver();
let stack: Stack;
let db: Client;
let restarted: RunningControlRoom | undefined;

function controlRoomEnv(): Record<string, string> {
  return { ORDERLY_ALERT_WEBHOOK_URL: receiver.url, ORDERLY_ALERT_WEBHOOK_SECRET_FILE: secretFile, ORDERLY_ALERT_QUEUE_AGE_SECONDS: '3' };
}

beforeAll(async () => {
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  await target.start();
  await receiver.start();
  stack = await startStack({ runner: true, vault: false, controlRoomEnv: controlRoomEnv() });
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'dlq-flaky'));
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
}, 90_000);

afterAll(async () => {
  await db?.end();
  await restarted?.close();
  await stack?.close();
  await target.close();
  await receiver.close();
  rmSync(secretDir, { recursive: true, force: true });
});

async function deadLetter(key: string, segment = 'demo'): Promise<string> {
  const created = await stack.startRun({ bot: 'dlq-flaky', segment, idempotencyKey: key, input: { targetUrl: target.url, memberId: MEMBER_ID } });
  const run = await stack.waitForRun(created.id, (r) => r.status === 'dead_lettered' || r.status === 'succeeded', 60_000);
  expect(run.status).toBe('dead_lettered');
  return created.id;
}

async function auditEvents(action: string, runId: string): Promise<{ actor: string; outcome: string; details: Record<string, unknown> }[]> {
  return (await db.query('SELECT actor, outcome, details FROM audit_events WHERE action = $1 AND target = $2 ORDER BY seq', [action, `run:${runId}`])).rows;
}

const dlqQueue = () => new Queue(dlqQueueName('demo'), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });

test('a run that fails every attempt is dead-lettered with its history; requeued once the fault is gone, it succeeds with the same key', async () => {
  target.failing = true;
  // The first delivery of a dead-letter alert fails: it must be retried.
  receiver.answer = (alert, previous) => (alert.kind === 'run.dead_lettered' && previous === 0 ? 503 : 200);
  const runId = await deadLetter('dlq-must-show-1');

  const list = await stack.api('GET', '/v1/dlq?bot=dlq-flaky&segment=demo');
  expect(list.status).toBe(200);
  expect(list.body.entries.map((e: { runId: string }) => e.runId)).toContain(runId);

  const shown = await stack.api('GET', `/v1/dlq/${runId}`);
  expect(shown.status).toBe(200);
  expect(shown.body).toMatchObject({ runId, status: 'dead_lettered', idempotencyKey: 'dlq-must-show-1', attempts: 2, error: { code: 'ORDERLY_E_BOT_FAILED' } });
  expect(shown.body.attemptsHistory).toHaveLength(2);
  for (const attempt of shown.body.attemptsHistory) {
    expect(attempt).toMatchObject({ outcome: 'failed', runnerId: 'test-runner-0', error: { code: 'ORDERLY_E_BOT_FAILED' } });
    expect(attempt.error.message).toContain('target answered 500');
    // Redacted before it left the runner: the declared PHI value is masked.
    expect(attempt.error.message).not.toContain(MEMBER_ID);
  }
  expect(shown.body.lastScreenshotId).toEqual(expect.any(Number));
  const shot = await fetch(`${stack.controlRoom.url}/v1/runs/${runId}/screenshots/${shown.body.lastScreenshotId}`, {
    headers: { authorization: `Bearer ${stack.adminToken}`, 'x-orderly-reason': 'integration test, synthetic data' },
  });
  expect(shot.status).toBe(200);
  expect(shot.headers.get('content-type')).toBe('image/png');
  const queue = dlqQueue();
  try {
    expect((await queue.getJob(runId))?.data).toMatchObject({ runId, errorCode: 'ORDERLY_E_BOT_FAILED' });

    // The fault is gone; two operators requeue at once: exactly one wins, the other gets a stable 409.
    target.failing = false;
    const [a, b] = await Promise.all([
      stack.api('POST', `/v1/dlq/${runId}/requeue`, { reason: 'target fixed', ticket: 'OPS-101' }),
      stack.api('POST', `/v1/dlq/${runId}/requeue`, { reason: 'target fixed', ticket: 'OPS-101' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const loser = a.status === 409 ? a : b;
    expect(loser.body.error.code).toBe('ORDERLY_E_RUN_NOT_DEAD_LETTERED');
    expect((a.status === 200 ? a : b).body).toMatchObject({ runId, status: 'waiting', idempotencyKey: 'dlq-must-show-1', requeues: 1 });

    const done = await stack.waitForRun(runId, (r) => r.status === 'succeeded' || r.status === 'dead_lettered', 60_000);
    expect(done).toMatchObject({ status: 'succeeded', idempotencyKey: 'dlq-must-show-1', result: { accepted: true } });
    expect(target.accepted.filter((k) => k === 'dlq-must-show-1')).toEqual(['dlq-must-show-1']); // accepted once, whatever other tests submitted
    // Two failed attempts and the requeued one, all under the run's one idempotency key.
    expect(target.seen.filter((k) => k === 'dlq-must-show-1')).toHaveLength(3);
    expect(await queue.getJob(runId)).toBeUndefined();
  } finally {
    await queue.close();
  }
  const requeues = await auditEvents('dlq.requeue', runId);
  expect(requeues.map((e) => e.outcome).sort()).toEqual(['failure', 'success']);
  expect(requeues.find((e) => e.outcome === 'success')).toMatchObject({
    actor: 'admin',
    details: { reason: 'target fixed', ticket: 'OPS-101', bot: 'dlq-flaky', segment: 'demo' },
  });

  // Requeueing a run that is no longer dead-lettered is refused with the same code, and audited.
  const again = await stack.api('POST', `/v1/dlq/${runId}/requeue`, { reason: 'once more' });
  expect([again.status, again.body.error.code]).toEqual([409, 'ORDERLY_E_RUN_NOT_DEAD_LETTERED']);
  expect((await auditEvents('dlq.requeue', runId)).at(-1)).toMatchObject({ outcome: 'failure', details: { reason: 'once more', status: 'succeeded' } });

  // The dead-letter alert: first delivery answered 503, then retried and accepted, signed each time.
  const deliveries = await waitFor(
    () => {
      const d = receiver.forRun(runId);
      return d.some((x) => x.answered === 200) ? d : undefined;
    },
    20_000,
    'the dead-letter alert to be delivered',
  );
  expect(deliveries.map((d) => d.answered)).toEqual([503, 200]);
  for (const d of deliveries) {
    const verified = verifyAlertSignature(
      Buffer.from(secret),
      { timestamp: d.headers['x-orderly-timestamp'] as string, signature: d.headers['x-orderly-signature'] as string },
      d.body,
    );
    expect(verified).toEqual({ ok: true });
    expect(d.body).not.toContain(MEMBER_ID);
  }
  expect(deliveries[0]!.headers['x-orderly-alert-id']).toBe(deliveries[1]!.headers['x-orderly-alert-id']);
  expect(JSON.parse(deliveries[1]!.body)).toEqual({
    v: 1,
    id: deliveries[1]!.headers['x-orderly-alert-id'],
    kind: 'run.dead_lettered',
    runId,
    bot: 'dlq-flaky',
    segment: 'demo',
    errorCode: 'ORDERLY_E_BOT_FAILED',
    attempts: 2,
  });
  // A tampered body does not verify with the same headers.
  const first = deliveries[1]!;
  expect(
    verifyAlertSignature(
      Buffer.from(secret),
      { timestamp: first.headers['x-orderly-timestamp'] as string, signature: first.headers['x-orderly-signature'] as string },
      first.body.replace('dlq-flaky', 'other-bot'),
    ).ok,
  ).toBe(false);
}, 170_000);

test('discard records the reason (masked of PHI shapes) and audits it; a discarded run cannot be requeued', async () => {
  target.failing = true;
  const runId = await deadLetter('dlq-discard-1');
  expect((await stack.api('POST', `/v1/dlq/${runId}/discard`, {})).body.error.code).toBe('ORDERLY_E_BAD_REQUEST');

  const discarded = await stack.api('POST', `/v1/dlq/${runId}/discard`, { reason: 'duplicate of a manual submission for ZZT314159265, SSN 078-05-1120' });
  expect(discarded.status).toBe(200);
  expect(discarded.body).toMatchObject({ runId, status: 'discarded' });
  expect(discarded.body.reason).toContain('duplicate of a manual submission');
  expect(discarded.body.reason).not.toContain('078-05-1120');

  const shown = await stack.api('GET', `/v1/dlq/${runId}`);
  expect(shown.body).toMatchObject({ status: 'discarded', discardReason: discarded.body.reason });
  expect((await stack.api('GET', `/v1/runs/${runId}`)).body.status).toBe('discarded');
  expect((await stack.api('GET', '/v1/dlq?bot=dlq-flaky')).body.entries.map((e: { runId: string }) => e.runId)).not.toContain(runId);
  const queue = dlqQueue();
  try {
    expect(await queue.getJob(runId)).toBeUndefined();
  } finally {
    await queue.close();
  }
  const events = await auditEvents('dlq.discard', runId);
  expect(events).toEqual([{ actor: 'admin', outcome: 'success', details: expect.objectContaining({ reason: discarded.body.reason, bot: 'dlq-flaky' }) }]);

  const requeue = await stack.api('POST', `/v1/dlq/${runId}/requeue`, { reason: 'changed my mind' });
  expect([requeue.status, requeue.body.error.code]).toEqual([409, 'ORDERLY_E_RUN_NOT_DEAD_LETTERED']);
}, 120_000);

test('bulk requeue by filter: a dry run counts, a cap limits, every requeued run is audited', async () => {
  target.failing = true;
  // Only this test's dead letters: those other tests left do not count, whatever ran before.
  const since = new Date().toISOString();
  const first = await deadLetter('dlq-bulk-1');
  const second = await deadLetter('dlq-bulk-2');
  const filter = { bot: 'dlq-flaky', errorCode: 'ORDERLY_E_BOT_FAILED', since };
  const dry = await stack.api('POST', '/v1/dlq/requeue', { filter, reason: 'bulk retry', dryRun: true });
  expect(dry.body).toEqual({ dryRun: true, matched: 2, requeued: [], skipped: [] });
  expect((await stack.api('GET', `/v1/runs/${first}`)).body.status).toBe('dead_lettered');

  const paged = await stack.api('GET', `/v1/dlq?bot=dlq-flaky&since=${encodeURIComponent(since)}&limit=1`);
  expect(paged.body.entries).toHaveLength(1);
  const next = await stack.api('GET', `/v1/dlq?bot=dlq-flaky&since=${encodeURIComponent(since)}&limit=1&cursor=${paged.body.nextCursor}`);
  expect([paged.body.entries[0].runId, next.body.entries[0].runId].sort()).toEqual([first, second].sort());

  target.failing = false;
  const capped = await stack.api('POST', '/v1/dlq/requeue', { filter, reason: 'bulk retry', ticket: 'OPS-202', limit: 1 });
  expect(capped.body).toMatchObject({ dryRun: false, matched: 2, requeued: [first], skipped: [] });
  const rest = await stack.api('POST', '/v1/dlq/requeue', { filter, reason: 'bulk retry', ticket: 'OPS-202' });
  expect(rest.body).toMatchObject({ matched: 1, requeued: [second] });
  for (const id of [first, second]) {
    expect((await stack.waitForRun(id, (r) => r.status === 'succeeded' || r.status === 'dead_lettered', 60_000)).status).toBe('succeeded');
    expect(await auditEvents('dlq.requeue', id)).toEqual([
      { actor: 'admin', outcome: 'success', details: expect.objectContaining({ reason: 'bulk retry', ticket: 'OPS-202' }) },
    ]);
  }
}, 210_000);

describe('the orderly dlq commands', () => {
  const BIN = join(REPO, 'node_modules', '.bin', 'orderly');
  function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(BIN, args, {
        env: { PATH: process.env.PATH ?? '', HOME: stack.dataDir, ORDERLY_URL: stack.controlRoom.url, ORDERLY_TOKEN: stack.adminToken },
        cwd: stack.dataDir,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  test('ls, show, a bulk requeue that needs --yes, and discard', async () => {
    target.failing = true;
    const since = new Date().toISOString();
    const runId = await deadLetter('dlq-cli-1');
    const ls = await cli(['dlq', 'ls', '--bot', 'dlq-flaky', '--json']);
    expect(ls.code).toBe(0);
    expect((JSON.parse(ls.stdout) as { entries: { runId: string }[] }).entries.map((e) => e.runId)).toContain(runId);
    const show = await cli(['dlq', 'show', runId]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`dead letter ${runId} (dead_lettered)`);
    expect(show.stdout).toMatch(/attempt 2 .* failed {2}ORDERLY_E_BOT_FAILED: .*target answered 500/);
    expect(show.stdout).not.toContain(MEMBER_ID);

    const unconfirmed = await cli(['dlq', 'requeue', '--bot', 'dlq-flaky', '--since', since, '--reason', 'bulk from the cli']);
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.stdout).toContain('1 dead letter(s) match');
    expect(unconfirmed.stderr).toContain('orderly: ORDERLY_E_CONFIRMATION_REQUIRED');
    expect((await stack.api('GET', `/v1/runs/${runId}`)).body.status).toBe('dead_lettered');

    const discard = await cli(['dlq', 'discard', runId, '--reason', 'obsolete request', '--json']);
    expect(discard.code).toBe(0);
    expect(JSON.parse(discard.stdout)).toEqual({ runId, status: 'discarded', reason: 'obsolete request' });
    const twice = await cli(['dlq', 'discard', runId, '--reason', 'obsolete request']);
    expect([twice.code, twice.stderr.trim()]).toEqual([1, expect.stringContaining('orderly: ORDERLY_E_RUN_NOT_DEAD_LETTERED')]);
  }, 120_000);
});

test('a queue whose oldest waiting run passes the threshold raises one alert per window', async () => {
  receiver.answer = () => 200;
  // No runner serves segment `other`: its run waits.
  const created = await stack.startRun({ bot: 'dlq-flaky', segment: 'other', input: { targetUrl: target.url, memberId: MEMBER_ID } });
  const ageAlerts = () =>
    receiver.deliveries.filter(
      (d) => d.answered === 200 && (JSON.parse(d.body) as { kind: string; segment?: string }).kind === 'queue.age' && d.body.includes('"segment":"other"'),
    );
  const [alert] = await waitFor(() => (ageAlerts().length > 0 ? ageAlerts() : undefined), 15_000, 'a queue age alert');
  expect(JSON.parse(alert!.body)).toMatchObject({
    kind: 'queue.age',
    segment: 'other',
    queue: runQueueName('other' as SegmentName),
    waiting: 1,
    thresholdSeconds: 3,
  });
  expect(JSON.parse(alert!.body).oldestWaitingSeconds).toBeGreaterThanOrEqual(3);
  // Checked every 1.5 s, yet no two alerts for the queue within one 3 s threshold window: the
  // test waits for a few alerts' rows (however slowly the machine raises them), then checks their spacing.
  const raisedAt = async () =>
    (await db.query<{ at: Date }>("SELECT created_at AS at FROM alert_outbox WHERE kind = 'queue.age' AND body->>'segment' = 'other' ORDER BY id")).rows.map(
      (r) => r.at.getTime(),
    );
  const raised = await waitFor(
    async () => {
      const rows = await raisedAt();
      return rows.length >= 3 ? rows : undefined;
    },
    30_000,
    'three queue age alerts',
  );
  for (let i = 1; i < raised.length; i++) expect(raised[i]! - raised[i - 1]!).toBeGreaterThanOrEqual(3000);
  expect((await stack.api('POST', `/v1/runs/${created.id}/cancel`)).status).toBe(200);
}, 80_000);

test('an alert that cannot be delivered stays pending and visible, and is delivered after a control room restart', async () => {
  receiver.answer = () => 503;
  target.failing = true;
  const runId = await deadLetter('dlq-restart-1');
  await waitFor(() => (receiver.forRun(runId).length >= 2 ? true : undefined), 20_000, 'two failed deliveries');
  const status = await stack.api('GET', '/v1/alerts');
  expect(status.body).toMatchObject({ configured: true });
  expect(status.body.pending).toBeGreaterThanOrEqual(1);
  expect(status.body.undelivered).toContainEqual(expect.objectContaining({ kind: 'run.dead_lettered', lastError: 'HTTP 503' }));

  await stack.controlRoom.close();
  receiver.answer = () => 200;
  const before = receiver.forRun(runId).length;
  // On the same port, so the tests after this one reach the control room through the stack.
  restarted = await startControlRoom(
    ControlRoomConfigSchema.parse({
      ORDERLY_DATA_DIR: stack.dataDir,
      ORDERLY_PORT: new URL(stack.controlRoom.url).port,
      DATABASE_URL: stack.databaseUrl,
      REDIS_URL: TEST_REDIS_URL,
      ORDERLY_QUEUE_PREFIX: stack.prefix,
      ORDERLY_SEGMENTS: 'demo,other',
      ORDERLY_MAX_PACKAGE_BYTES: String(1024 * 1024),
      ...controlRoomEnv(),
    }),
    createLogger({ level: 'silent', name: 'control-room' }),
  );
  const delivered = await waitFor(
    () =>
      receiver
        .forRun(runId)
        .slice(before)
        .find((d) => d.answered === 200),
    20_000,
    'delivery after restart',
  );
  expect(JSON.parse(delivered.body)).toMatchObject({ kind: 'run.dead_lettered', runId });
  // Every dead-letter alert held back is delivered, this run's and any an earlier test left pending.
  const undelivered = await waitFor(
    async () => {
      const body = (await (
        await fetch(`${restarted!.url}/v1/alerts`, {
          headers: { authorization: `Bearer ${stack.adminToken}`, 'x-orderly-reason': 'integration test, synthetic data' },
        })
      ).json()) as { undelivered: { kind: string }[] };
      const left = body.undelivered.filter((u) => u.kind === 'run.dead_lettered');
      return left.length === 0 ? left : undefined;
    },
    20_000,
    'every dead-letter alert to be delivered',
  );
  expect(undelivered).toEqual([]);
}, 150_000);
