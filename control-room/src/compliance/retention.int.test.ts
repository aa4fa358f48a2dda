import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createTestDatabase } from '@orderly/shared/testing';
import { AuditLog } from '../audit/audit';
import { verifyAuditLog } from '../audit/verify';
import { Db, postgresDb } from '../db/db';
import { migrate } from '../db/migrations';
import { localAtRestCipher } from '../keys/at-rest';
import { inputAad, resultAad, RunRepository } from '../runs/repository';
import { listDisposals, Retention, RUN_PHI_PURGE_ACTION } from './retention';

/** The retention purges against real PostgreSQL: each records what it disposed of, in its own transaction, and the records cannot be changed. */
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Db;
const DAY = 24 * 3600 * 1000;

beforeAll(async () => {
  database = await createTestDatabase();
  db = postgresDb(database.url);
  await migrate(db);
  await db.query("INSERT INTO publisher_keys (key_id, name, public_key_pem) VALUES ('fake-key', 'fake-key', 'fake')");
  await db.query(
    "INSERT INTO packages (digest, name, version, publisher_key_id, manifest, envelope, size) VALUES ('sha256:fake', 'fake-bot', '1.0.0', 'fake-key', '{}', '{}', 1)",
  );
});
afterAll(async () => {
  await db?.close();
  await database?.drop();
});

test('the screenshot purge deletes expired screenshots only and records kind, count, time range and policy, never content', async () => {
  const [run] = await db.query<{
    id: string;
  }>(`INSERT INTO runs (id, idempotency_key, request_mac, bot_name, bot_version, digest, segment, status, input_sealed, max_attempts)
    VALUES (gen_random_uuid(), 'fake-run-1', 'mac', 'fake-bot', '1.0.0', 'sha256:fake', 'demo', 'succeeded', '{}', 1) RETURNING id`);
  const at = (daysAgo: number) => new Date(Date.now() - daysAgo * DAY).toISOString();
  const created = { a: at(50), b: at(45), c: at(31) };
  await db.query(
    `INSERT INTO run_screenshots (run_id, attempt, name, png_sealed, bytes, created_at, expires_at) VALUES
    ($1, 1, 'fake-a', '{"fake":"sealed-a"}', 10, $2, $3), ($1, 1, 'fake-b', '{"fake":"sealed-b"}', 10, $4, $5), ($1, 2, 'fake-c', '{"fake":"sealed-c"}', 10, $6, $7), ($1, 2, 'fake-kept', '{}', 10, $8, $9)`,
    [run!.id, created.a, at(20), created.b, at(15), created.c, at(1), at(2), at(-28)],
  );
  const retention = new Retention({ db, audit: new AuditLog(db), screenshotRetentionDays: 30, auditRetentionDays: 30 });

  const record = await retention.purgeScreenshots();
  expect(record).toEqual({
    id: expect.any(Number),
    disposedAt: expect.any(String),
    kind: 'screenshots',
    count: 3,
    rangeStart: created.a,
    rangeEnd: created.c,
    policy: 'expired (ORDERLY_SCREENSHOT_RETENTION_DAYS=30)',
    actor: 'control-room',
    details: {},
  });
  expect((await db.query('SELECT name FROM run_screenshots')).map((r) => r.name)).toEqual(['fake-kept']);
  const [stored] = await db.query('SELECT * FROM disposal_records');
  expect(JSON.stringify(stored)).not.toMatch(/sealed|fake-a|fake-b|fake-c/); // counts and times, no content or names

  expect(await retention.purgeScreenshots()).toBeUndefined(); // nothing expired: no empty record
  expect(await listDisposals(db)).toEqual([record]);
});

test("the audit purge records the expired prefix (count, time range, seq bounds) in the expiry's transaction, and the chain still verifies", async () => {
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
    kind: 'audit_events',
    count: 3,
    rangeStart: old[0]!.at,
    rangeEnd: old[2]!.at,
    policy: 'older than 30 days (ORDERLY_AUDIT_RETENTION_DAYS)',
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

describe("the finished runs' PHI purge", () => {
  const cipher = localAtRestCipher(randomBytes(32), 'fake-local');
  let n = 0;
  /** A run in `status`, finished and last changed `daysAgo`, with sealed input/result, a step result, two log lines and a screenshot. */
  async function seedRun(status: string, daysAgo: number): Promise<string> {
    const id = randomUUID();
    const when = new Date(Date.now() - daysAgo * DAY).toISOString();
    const input = await cipher.seal({ memberId: `fake-member-${++n}` }, inputAad(id));
    const result = await cipher.seal({ claimStatus: 'fake-paid' }, resultAad(id));
    await db.query(
      `INSERT INTO runs (id, idempotency_key, request_mac, bot_name, bot_version, digest, segment, status, input_sealed, result_sealed, max_attempts, attempts,
      created_at, started_at, finished_at, updated_at) VALUES ($1, $2, 'mac', 'fake-bot', '1.0.0', 'sha256:fake', 'demo', $3, $4, $5, 1, 1, $6, $6, $6, $6)`,
      [id, `fake-purge-${id}`, status, JSON.stringify(input), JSON.stringify(result), when],
    );
    await db.query("INSERT INTO run_steps (run_id, name, attempt, status, result_sealed, done_at) VALUES ($1, 'fake-step', 1, 'done', $2, now())", [
      id,
      JSON.stringify(result),
    ]);
    await db.query(
      "INSERT INTO run_logs (run_id, attempt, seq, at, level, source, msg) VALUES ($1, 1, 1, $2, 'info', 'bot', 'fake line one'), ($1, 1, 2, $2, 'info', 'bot', 'fake line two')",
      [id, when],
    );
    await db.query(
      "INSERT INTO run_screenshots (run_id, attempt, name, png_sealed, bytes, created_at, expires_at) VALUES ($1, 1, 'fake-shot', '{\"fake\":\"sealed\"}', 10, $2, now() + interval '30 days')",
      [id, when],
    );
    return id;
  }
  const retentionWith = (audit: AuditLog, runRetentionDays: number, runBatchSize?: number) =>
    new Retention({ db, audit, screenshotRetentionDays: 30, auditRetentionDays: 0, runRetentionDays, ...(runBatchSize ? { runBatchSize } : {}) });
  const phiLeft = async (id: string) => {
    const [run] = await db.query<{ input_sealed: unknown; result_sealed: unknown; phi_purged_at: Date | null; status: string; bot_name: string }>(
      'SELECT * FROM runs WHERE id = $1',
      [id],
    );
    const [logs] = await db.query<{ n: string }>('SELECT count(*) AS n FROM run_logs WHERE run_id = $1', [id]);
    const [shots] = await db.query<{ n: string }>('SELECT count(*) AS n FROM run_screenshots WHERE run_id = $1', [id]);
    const [steps] = await db.query<{ n: string; sealed: string }>('SELECT count(*) AS n, count(result_sealed) AS sealed FROM run_steps WHERE run_id = $1', [
      id,
    ]);
    return {
      input: run!.input_sealed !== null,
      result: run!.result_sealed !== null,
      purged: run!.phi_purged_at !== null,
      status: run!.status,
      bot: run!.bot_name,
      logs: Number(logs!.n),
      screenshots: Number(shots!.n),
      steps: Number(steps!.n),
      stepResults: Number(steps!.sealed),
    };
  };
  const untouched = { input: true, result: true, purged: false, logs: 2, screenshots: 1, steps: 1, stepResults: 1 };

  test('purges finished runs past the retention (never dead letters or recent runs), keeps the row, records disposals and an audit event, and PHI reads refuse', async () => {
    await db.query('DELETE FROM run_screenshots');
    const old = {
      succeeded: await seedRun('succeeded', 100),
      failed: await seedRun('failed', 95),
      cancelled: await seedRun('cancelled', 91),
      discarded: await seedRun('discarded', 92),
    };
    const deadLetter = await seedRun('dead_lettered', 200);
    const recent = await seedRun('succeeded', 10);
    const audit = new AuditLog(db);

    expect(await retentionWith(audit, 0).purgeRuns()).toEqual([]); // 0 keeps runs forever
    const purges = await retentionWith(audit, 90).purgeRuns();

    expect(purges).toHaveLength(1);
    const [purge] = purges;
    expect(purge).toMatchObject({
      runs: {
        kind: 'runs',
        count: 4,
        policy: 'finished over 90 days ago (ORDERLY_RUN_RETENTION_DAYS=90)',
        actor: 'control-room',
        details: { stepResults: 4, logLines: 8, screenshots: 4 },
      },
      runLogs: { kind: 'run_logs', count: 8 },
      screenshots: { kind: 'screenshots', count: 4 },
      stepResults: 4,
    });
    expect(Date.parse(purge!.runs.rangeStart)).toBeLessThan(Date.parse(purge!.runs.rangeEnd));
    for (const [status, id] of Object.entries(old)) {
      expect(await phiLeft(id)).toEqual({
        input: false,
        result: false,
        purged: true,
        status,
        bot: 'fake-bot',
        logs: 0,
        screenshots: 0,
        steps: 1,
        stepResults: 0,
      });
    }
    expect(await phiLeft(deadLetter)).toEqual({ ...untouched, status: 'dead_lettered', bot: 'fake-bot' });
    expect(await phiLeft(recent)).toEqual({ ...untouched, status: 'succeeded', bot: 'fake-bot' });

    const events = (await audit.list()).filter((e) => e.action === RUN_PHI_PURGE_ACTION);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      actor: 'control-room',
      target: 'runs',
      outcome: 'success',
      details: { runs: 4, logLines: 8, screenshots: 4, stepResults: 4, retentionDays: 90, disposalId: purge!.runs.id },
    });
    const stored = JSON.stringify([await db.query("SELECT * FROM disposal_records WHERE kind IN ('runs', 'run_logs')"), events]);
    expect(stored).not.toMatch(/fake-member|fake line|fake-paid|fake-purge/); // counts and times, never content or keys

    const repository = new RunRepository(db, cipher);
    await expect(repository.readPhi(old.succeeded)).rejects.toMatchObject({ code: 'ORDERLY_E_RUN_PHI_PURGED', status: 410, details: { runId: old.succeeded } });
    await expect(repository.logs(old.failed)).rejects.toMatchObject({ code: 'ORDERLY_E_RUN_PHI_PURGED' });
    expect(await repository.get(old.succeeded)).toMatchObject({ id: old.succeeded, status: 'succeeded', bot: 'fake-bot' }); // the state stays readable
    expect(await repository.readPhi(recent)).toEqual({ input: { memberId: expect.stringMatching(/^fake-member-/) }, result: { claimStatus: 'fake-paid' } });
    expect(await repository.readPhi(deadLetter)).toMatchObject({ result: { claimStatus: 'fake-paid' } });

    expect(await retentionWith(audit, 90).purgeRuns()).toEqual([]); // nothing left: no empty records
    expect(verifyAuditLog(await audit.list(), [], generateKeyPairSync('ed25519').publicKey)).toMatchObject({ ok: true });
  });

  test('works in batches, one transaction each, until no run is due', async () => {
    const ids = [await seedRun('succeeded', 120), await seedRun('failed', 120), await seedRun('succeeded', 120)];
    const purges = await retentionWith(new AuditLog(db), 90, 2).purgeRuns();
    expect(purges.map((p) => p.runs.count)).toEqual([2, 1]);
    for (const id of ids) expect((await phiLeft(id)).purged).toBe(true);
  });

  test('a failing disposal record rolls the whole batch back: nothing is purged, no audit event', async () => {
    const id = await seedRun('succeeded', 100);
    const audit = new AuditLog(db);
    const before = (await audit.list()).length;
    const disposalsBefore = (await listDisposals(db, { limit: 1000 })).length;
    await db.query(`CREATE FUNCTION fake_refuse_disposal() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'fake disposal failure'; END $$`);
    await db.query(
      "CREATE TRIGGER fake_refuse_disposal BEFORE INSERT ON disposal_records FOR EACH ROW WHEN (NEW.kind = 'run_logs') EXECUTE FUNCTION fake_refuse_disposal()",
    );
    try {
      await expect(retentionWith(audit, 90).purgeRuns()).rejects.toThrow(/fake disposal failure/);
    } finally {
      await db.query('DROP TRIGGER fake_refuse_disposal ON disposal_records');
      await db.query('DROP FUNCTION fake_refuse_disposal()');
    }
    expect(await phiLeft(id)).toEqual({ ...untouched, status: 'succeeded', bot: 'fake-bot' }); // the runs record went in first; it was rolled back too
    expect((await audit.list()).length).toBe(before);
    expect((await listDisposals(db, { limit: 1000 })).length).toBe(disposalsBefore);
    expect(await retentionWith(audit, 90).purgeRuns()).toHaveLength(1); // and the next tick purges it
    expect((await phiLeft(id)).purged).toBe(true);
  });

  test('the schema keeps the input until a purge, and purges only finished runs', async () => {
    const id = await seedRun('succeeded', 1);
    await expect(db.query('UPDATE runs SET input_sealed = NULL WHERE id = $1', [id])).rejects.toThrow(/runs_input_sealed_until_purged/);
    await db.query("UPDATE runs SET status = 'dead_lettered' WHERE id = $1", [id]);
    await expect(db.query('UPDATE runs SET phi_purged_at = now(), input_sealed = NULL WHERE id = $1', [id])).rejects.toThrow(/runs_purged_when_finished/);
  });
});
