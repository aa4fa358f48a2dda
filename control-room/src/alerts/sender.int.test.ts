import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@orderly/shared';
import { CapturedLog } from '../../../test/harness';
import { AuditLog } from '../audit/audit';
import { Db, pgliteDb } from '../db/db';
import { migrate } from '../db/migrations';
import { AlertOutbox, FAILING_AFTER_ATTEMPTS } from './outbox';
import { AlertSender } from './sender';
import { verifyAlertSignature } from './signature';

/** The outbox and sender on embedded PGlite (the zero-setup database), against a local receiver. */
const dir = mkdtempSync(join(tmpdir(), 'orderly-alerts-'));
const secret = randomBytes(32);
let db: Db;
let server: Server;
let url: string;
let status = 500;
const received: { body: string; timestamp: string; signature: string }[] = [];

beforeAll(async () => {
  db = await pgliteDb(join(dir, 'pglite'));
  await migrate(db);
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ body, timestamp: String(req.headers['x-orderly-timestamp']), signature: String(req.headers['x-orderly-signature']) });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}, 60_000);

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

test('an undeliverable alert is retried past the failing mark, logged at error level, audited once, then delivered; never dropped', async () => {
  const log = new CapturedLog();
  const logger = createLogger({ level: 'info', name: 'control-room' }, log);
  const outbox = new AlertOutbox(db, logger, true);
  const audit = new AuditLog(db);
  await outbox.queueAge({ kind: 'queue.age', segment: 'demo', queue: 'orderly.run.demo', oldestWaitingSeconds: 901, waiting: 3, thresholdSeconds: 900 });
  // Within the same window, a second one is not raised.
  await outbox.queueAge({ kind: 'queue.age', segment: 'demo', queue: 'orderly.run.demo', oldestWaitingSeconds: 905, waiting: 4, thresholdSeconds: 900 });
  expect((await outbox.stats()).pending).toBe(1);

  // No backoff here (base 0), so every pass is one more failed delivery.
  const sender = new AlertSender({ db, audit, log: logger, webhookUrl: url, secret, retryBaseMs: 0, retryMaxMs: 0 });
  for (let i = 0; i < FAILING_AFTER_ATTEMPTS + 2; i++) expect(await sender.deliverDue()).toBe(0);
  const stats = await outbox.stats();
  expect(stats).toMatchObject({ pending: 1, failing: 1, delivered: 0 });
  expect(stats.undelivered).toEqual([expect.objectContaining({ kind: 'queue.age', attempts: FAILING_AFTER_ATTEMPTS + 2, lastError: 'HTTP 500' })]);
  const errors = log.lines.map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === 'error');
  expect(errors.map((l) => l.msg)).toEqual(Array(3).fill('alert delivery keeps failing; still retrying'));
  expect((await audit.list()).filter((e) => e.action === 'alert.delivery_failing')).toHaveLength(1);

  status = 204;
  expect(await sender.deliverDue()).toBe(1);
  expect(await outbox.stats()).toMatchObject({ pending: 0, failing: 0, delivered: 1 });
  const last = received[received.length - 1]!;
  expect(verifyAlertSignature(secret, { timestamp: last.timestamp, signature: last.signature }, last.body)).toEqual({ ok: true });
  expect(JSON.parse(last.body)).toMatchObject({ v: 1, kind: 'queue.age', segment: 'demo', waiting: 3 });
  expect(received).toHaveLength(FAILING_AFTER_ATTEMPTS + 3);
  // Delivered: nothing more is sent.
  expect(await sender.deliverDue()).toBe(0);
  expect(received).toHaveLength(FAILING_AFTER_ATTEMPTS + 3);
});

test('a row being delivered by one sender is not taken by another (claimed with SKIP LOCKED and a lease)', async () => {
  const logger = createLogger({ level: 'silent', name: 'control-room' });
  const outbox = new AlertOutbox(db, logger, true);
  await outbox.queueAge({ kind: 'queue.age', segment: 'other', queue: 'orderly.run.other', oldestWaitingSeconds: 10, waiting: 1, thresholdSeconds: 5 });
  status = 204;
  const before = received.length;
  const a = new AlertSender({ db, audit: new AuditLog(db), log: logger, webhookUrl: url, secret });
  const b = new AlertSender({ db, audit: new AuditLog(db), log: logger, webhookUrl: url, secret });
  const delivered = await Promise.all([a.deliverDue(), b.deliverDue()]);
  expect(delivered.sort()).toEqual([0, 1]);
  expect(received.length - before).toBe(1);
});
