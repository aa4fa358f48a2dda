import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { createLogger } from '@orderly/shared';
import { createTestDatabase, waitFor } from '@orderly/shared/testing';
import { Db, pgliteDb, postgresDb } from './db';
import { LEADER_APPLICATION_NAME, Leadership, startLeadership } from './leadership';

/** Leadership by a session advisory lock (real PostgreSQL), and PGlite's single process leading alone. */
const log = createLogger({ level: 'silent', name: 'leadership-test' });
const LOCK = 917_302; // not the control room's: this test's own lock id

describe('on PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const dbs: Db[] = [];
  const leaderships: Leadership[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterEach(async () => {
    for (const l of leaderships.splice(0)) await l.close();
    for (const d of dbs.splice(0)) await d.close();
  });
  afterAll(() => database?.drop());

  const replica = async () => {
    const db = postgresDb(database.url);
    dbs.push(db);
    const leadership = await startLeadership({ db, databaseUrl: database.url, log, pollMs: 50, lockId: LOCK });
    leaderships.push(leadership);
    const ran = { count: 0 };
    leadership.every('count', 20, async () => void ran.count++);
    return { leadership, ran };
  };

  test('one replica leads and alone runs the tasks; when it closes, another takes over', async () => {
    const a = await replica();
    const b = await replica();
    expect([a.leadership.isLeader, b.leadership.isLeader]).toEqual([true, false]);
    await waitFor(async () => (a.ran.count >= 3 ? true : undefined), 10_000, 'the leader to run its task');
    expect(b.ran.count).toBe(0);
    await a.leadership.close();
    await waitFor(async () => (b.leadership.isLeader ? true : undefined), 10_000, 'b to lead');
    await waitFor(async () => (b.ran.count >= 3 ? true : undefined), 10_000, 'the new leader to run its task');
    expect(a.leadership.isLeader).toBe(false);
  });

  test('a leader whose session is terminated steps down, and leadership moves', async () => {
    const a = await replica();
    const b = await replica();
    expect(a.leadership.isLeader).toBe(true);
    const admin = new Client({ connectionString: database.url });
    await admin.connect();
    try {
      const { rows } = await admin.query(
        'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()',
        [LEADER_APPLICATION_NAME()],
      );
      expect(rows.length).toBeGreaterThanOrEqual(1);
    } finally {
      await admin.end();
    }
    // Both replicas are this process (one application name): whichever takes the lock next, exactly one leads.
    await waitFor(async () => ([a, b].filter((r) => r.leadership.isLeader).length === 1 ? true : undefined), 10_000, 'one leader again');
  });
});

test('on PGlite (one process) the replica leads at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'orderly-leadership-'));
  const db = await pgliteDb(join(dir, 'pglite'));
  try {
    const leadership = await startLeadership({ db, databaseUrl: undefined, log, pollMs: 50 });
    let ran = 0;
    leadership.every('count', 20, async () => void ran++);
    expect(leadership.isLeader).toBe(true);
    await waitFor(async () => (ran >= 2 ? true : undefined), 10_000, 'the task to run');
    await leadership.close();
    expect(leadership.isLeader).toBe(false);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
