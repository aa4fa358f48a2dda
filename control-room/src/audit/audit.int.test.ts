import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase } from '@orderly/shared/testing';
import { Db, pgliteDb, postgresDb } from '../db/db';
import { migrate } from '../db/migrations';
import { AUDIT_GENESIS_HASH, AuditLog, verifyAuditChain } from './audit';

/** The audit log on both databases: a serialised hash chain, and a table that refuses UPDATE, DELETE and TRUNCATE. */
const event = (i: number) => ({
  actor: 'admin',
  action: 'credential.rotate',
  target: `bot-${i % 3}/api_key`,
  outcome: 'success' as const,
  requestId: `req-${i}`,
  sourceIp: '127.0.0.1',
  details: { version: i },
});

async function exercise(db: Db, concurrent: number): Promise<void> {
  await migrate(db);
  const audit = new AuditLog(db);
  // Concurrent appends must queue on the lock, not both extend the same last event.
  await Promise.all(Array.from({ length: concurrent }, (_, i) => audit.append(event(i))));
  const records = await audit.list();
  expect(records).toHaveLength(concurrent);
  expect(records[0]!.prevHash).toBe(AUDIT_GENESIS_HASH);
  expect(verifyAuditChain(records)).toEqual({ ok: true });
  expect(new Set(records.map((r) => r.prevHash)).size).toBe(concurrent);

  // Editing any field of a stored event, or dropping one, breaks the chain.
  const edited = records.map((r, i) => (i === 2 ? { ...r, target: 'bot-x/api_key' } : r));
  expect(verifyAuditChain(edited)).toMatchObject({ ok: false, seq: records[2]!.seq });
  expect(verifyAuditChain(records.filter((_, i) => i !== 1))).toMatchObject({ ok: false, seq: records[2]!.seq });

  for (const sql of ["UPDATE audit_events SET outcome = 'failure'", 'DELETE FROM audit_events WHERE seq = 1', 'TRUNCATE audit_events']) {
    await expect(db.query(sql)).rejects.toMatchObject({ message: expect.stringMatching(/append-only/) });
  }
  expect(verifyAuditChain(await audit.list())).toEqual({ ok: true });
  await expect(audit.append({ ...event(0), action: 'not an action' })).rejects.toThrow();
}

test('PostgreSQL: concurrent appends form one chain; UPDATE, DELETE and TRUNCATE are refused', async () => {
  const database = await createTestDatabase();
  const db = postgresDb(database.url);
  try {
    await exercise(db, 25);
  } finally {
    await db.close();
    await database.drop();
  }
});

test('PGlite: the same chain and the same refusals', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'orderly-audit-'));
  const db = await pgliteDb(join(dir, 'pglite'));
  try {
    await exercise(db, 8);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
