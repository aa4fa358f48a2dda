import { generateKeyPairSync } from 'node:crypto';
import { createTestDatabase } from '@orderly/shared/testing';
import { AuditLog } from '../audit/audit';
import { verifyAuditLog } from '../audit/verify';
import { Db, postgresDb } from '../db/db';
import { migrate } from '../db/migrations';
import { listDisposals, Retention } from './retention';

/** The retention purges against real PostgreSQL: each records what it disposed of, in its own transaction, and the records cannot be changed. */
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Db;
const DAY = 24 * 3600 * 1000;

beforeAll(async () => {
  database = await createTestDatabase();
  db = postgresDb(database.url);
  await migrate(db);
  await db.query("INSERT INTO publisher_keys (key_id, name, public_key_pem) VALUES ('fake-key', 'fake-key', 'fake')");
  await db.query("INSERT INTO packages (digest, name, version, publisher_key_id, manifest, envelope, size) VALUES ('sha256:fake', 'fake-bot', '1.0.0', 'fake-key', '{}', '{}', 1)");
});
afterAll(async () => {
  await db?.close();
  await database?.drop();
});

test('the screenshot purge deletes expired screenshots only and records kind, count, time range and policy, never content', async () => {
  const [run] = await db.query<{ id: string }>(`INSERT INTO runs (id, idempotency_key, request_mac, bot_name, bot_version, digest, segment, status, input_sealed, max_attempts)
    VALUES (gen_random_uuid(), 'fake-run-1', 'mac', 'fake-bot', '1.0.0', 'sha256:fake', 'demo', 'succeeded', '{}', 1) RETURNING id`);
  const at = (daysAgo: number) => new Date(Date.now() - daysAgo * DAY).toISOString();
  const created = { a: at(50), b: at(45), c: at(31) };
  await db.query(`INSERT INTO run_screenshots (run_id, attempt, name, png_sealed, bytes, created_at, expires_at) VALUES
    ($1, 1, 'fake-a', '{"fake":"sealed-a"}', 10, $2, $3), ($1, 1, 'fake-b', '{"fake":"sealed-b"}', 10, $4, $5), ($1, 2, 'fake-c', '{"fake":"sealed-c"}', 10, $6, $7), ($1, 2, 'fake-kept', '{}', 10, $8, $9)`,
  [run!.id, created.a, at(20), created.b, at(15), created.c, at(1), at(2), at(-28)]);
  const retention = new Retention({ db, audit: new AuditLog(db), screenshotRetentionDays: 30, auditRetentionDays: 30 });

  const record = await retention.purgeScreenshots();
  expect(record).toEqual({
    id: expect.any(Number), disposedAt: expect.any(String), kind: 'screenshots', count: 3, rangeStart: created.a, rangeEnd: created.c,
    policy: 'expired (ORDERLY_SCREENSHOT_RETENTION_DAYS=30)', actor: 'control-room', details: {},
  });
  expect((await db.query('SELECT name FROM run_screenshots')).map((r) => r.name)).toEqual(['fake-kept']);
  const [stored] = await db.query('SELECT * FROM disposal_records');
  expect(JSON.stringify(stored)).not.toMatch(/sealed|fake-a|fake-b|fake-c/); // counts and times, no content or names

  expect(await retention.purgeScreenshots()).toBeUndefined(); // nothing expired: no empty record
  expect(await listDisposals(db)).toEqual([record]);
});

test('the audit purge records the expired prefix (count, time range, seq bounds) in the expiry\'s transaction, and the chain still verifies', async () => {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const audit = new AuditLog(db, () => new Date(now));
  const event = (i: number) => ({ actor: 'admin', action: 'run.create', target: `/v1/runs/fake-${i}`, outcome: 'success' as const, details: { i } });
  for (let i = 0; i < 3; i++) {
    await audit.append(event(i));
    now += 60_000;
  }
  const old = await audit.list();
  now += 40 * DAY;
  await audit.append(event(3));
  now += DAY;

  const retention = new Retention({ db, audit, screenshotRetentionDays: 30, auditRetentionDays: 30 });
  const record = await retention.purgeAudit();
  expect(record).toMatchObject({
    kind: 'audit_events', count: 3, rangeStart: old[0]!.at, rangeEnd: old[2]!.at, policy: 'older than 30 days (ORDERLY_AUDIT_RETENTION_DAYS)',
    details: { firstSeq: old[0]!.seq, throughSeq: old[2]!.seq, before: new Date(now - 30 * DAY).toISOString() },
  });
  const remaining = await audit.list();
  expect(remaining.map((e) => e.action)).toEqual(['run.create', 'audit.expire']);
  expect(verifyAuditLog(remaining, [], generateKeyPairSync('ed25519').publicKey)).toMatchObject({ ok: true, anchoredByExpiry: true });
  expect(await retention.purgeAudit()).toBeUndefined();
  expect((await listDisposals(db, { kind: 'audit_events' })).map((d) => d.id)).toEqual([record!.id]);
  expect((await listDisposals(db)).map((d) => d.kind)).toEqual(['audit_events', 'screenshots']);
});

test('disposal records are append-only', async () => {
  await expect(db.query("UPDATE disposal_records SET count = 1 WHERE kind = 'screenshots'")).rejects.toThrow(/append-only/);
  await expect(db.query('DELETE FROM disposal_records')).rejects.toThrow(/append-only/);
});
