import { generateKeyPairSync } from 'node:crypto';
import { createTestDatabase } from '@orderly/shared/testing';
import { Db, postgresDb } from '../db/db';
import { migrate } from '../db/migrations';
import { AuditLog } from './audit';
import { AuditHeads } from './heads';
import { verifyAuditLog } from './verify';

/** Retention: a prefix older than the setting goes, through the one path the trigger allows, and is itself audited. */
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Db;

beforeAll(async () => {
  database = await createTestDatabase();
  db = postgresDb(database.url);
  await migrate(db);
});
afterAll(async () => {
  await db?.close();
  await database?.drop();
});

test('expiry removes the old prefix only, records audit.expire, and the rest still verifies from its anchor', async () => {
  const day = 24 * 3600 * 1000;
  let now = Date.parse('2026-01-01T00:00:00Z');
  const audit = new AuditLog(db, () => new Date(now));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const heads = new AuditHeads(db, audit, privateKey, () => new Date(now));
  const event = (i: number) => ({ actor: 'admin', action: 'run.create', target: `/v1/runs/${i}`, outcome: 'success' as const, details: { i } });

  for (let i = 0; i < 4; i++) await audit.append(event(i)); // old: day 0
  await heads.signIfMoved();
  now += 40 * day;
  for (let i = 4; i < 6; i++) await audit.append(event(i)); // recent: day 40
  await heads.signIfMoved();
  now += 1 * day;

  expect(await audit.expire(0)).toBeUndefined(); // 0 keeps everything
  const before = await audit.list();
  const expired = await audit.expire(30);
  expect(expired).toEqual({ count: 4, throughSeq: before[3]!.seq, throughHash: before[3]!.hash });

  const after = await audit.list();
  expect(after.map((e) => e.details.i ?? e.action)).toEqual([4, 5, 'audit.expire']);
  expect(after.at(-1)!.details).toMatchObject({ count: 4, throughSeq: before[3]!.seq, retentionDays: 30 });
  const verdict = verifyAuditLog(after, await heads.list(), publicKey);
  expect(verdict).toMatchObject({ ok: true, anchoredByExpiry: true, headsChecked: 1, headsBeforeRetention: 1 });

  // Without the expiry record the shortened chain does not verify: a silently dropped prefix shows.
  expect(verifyAuditLog(after.slice(0, -1), [], publicKey)).toMatchObject({ ok: false, seq: after[0]!.seq, reason: expect.stringMatching(/genesis/) });
  // Nothing left to expire; the newest event is never removed, so the chain always continues.
  expect(await audit.expire(30)).toBeUndefined();
  now += 400 * day;
  expect(await audit.expire(30)).toMatchObject({ count: 2 }); // events 4 and 5; the first expiry record is the newest and stays
  const last = await audit.list();
  expect(last.map((e) => e.action)).toEqual(['audit.expire', 'audit.expire']);
  expect(verifyAuditLog(last, await heads.list(), publicKey)).toMatchObject({ ok: true, anchoredByExpiry: true });
});
