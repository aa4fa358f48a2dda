import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { waitFor } from '@orderly/shared/testing';
import { REPO, Stack, startStack } from '../../../test/harness';
import { AuditLog } from '../audit/audit';
import { Db, openDb } from '../db/db';
import { verifyAlertSignature } from '../alerts/signature';
import { SCHEDULED_COMPLIANCE_ACTOR } from './daily';
import { ComplianceReport } from './report';
import { Retention } from './retention';

/**
 * The compliance checks as the control room runs them on its own (the leader, every
 * ORDERLY_COMPLIANCE_INTERVAL_SECONDS, here 2 s) and the checks added for issue 16's review:
 * a pass-to-fail turn reaches a webhook receiver signed; retention purges that did not run fail;
 * runnable packages must be signed by an unrevoked key; sensitive role grants need an approver.
 * Real PostgreSQL and Redis; synthetic data only.
 */
// The secret file is read as text and trimmed (alerts/index.ts).
const secret = Buffer.from(randomBytes(24).toString('base64url'));
let secretDir: string;
let server: Server;
const received: { body: string; timestamp: string | undefined; signature: string | undefined }[] = [];
let stack: Stack;
let pg: Client;
let db: Db;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const header = (name: string) => (typeof req.headers[name] === 'string' ? (req.headers[name] as string) : undefined);
      received.push({ body, timestamp: header('x-orderly-timestamp'), signature: header('x-orderly-signature') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  secretDir = mkdtempSync(join(tmpdir(), 'orderly-compliance-hook-'));
  writeFileSync(join(secretDir, 'secret'), secret, { mode: 0o600 });
  stack = await startStack({
    vault: false,
    controlRoomEnv: {
      ORDERLY_ALERT_WEBHOOK_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
      ORDERLY_ALERT_WEBHOOK_SECRET_FILE: join(secretDir, 'secret'),
      ORDERLY_COMPLIANCE_INTERVAL_SECONDS: '2',
      // A day: the purges (on the audit tick, 300 s by default) do not run during the test; it runs them itself.
      ORDERLY_RUN_RETENTION_DAYS: '1',
    },
  });
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'no-browser'));
  pg = new Client({ connectionString: stack.databaseUrl });
  await pg.connect();
  db = await openDb({ databaseUrl: stack.databaseUrl, pgliteDir: '' });
}, 120_000);
afterAll(async () => {
  await db?.close();
  await pg?.end();
  await stack?.close();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  rmSync(secretDir, { recursive: true, force: true });
});

const check = async (): Promise<ComplianceReport> => {
  const res = await stack.api('GET', '/v1/compliance');
  expect(res.status).toBe(200);
  return res.body as ComplianceReport;
};
const resultOf = (report: ComplianceReport, id: string) => report.results.find((r) => r.checkId === id);
const scheduledReports = async () =>
  (
    await pg.query<{ target: string }>("SELECT target FROM audit_events WHERE action = 'compliance.report' AND actor = $1 ORDER BY seq", [
      SCHEDULED_COMPLIANCE_ACTOR,
    ])
  ).rows.map((r) => r.target);

test('the leader runs the checks on its interval; a check turning from pass to fail reaches the webhook, signed, once', async () => {
  // Nobody asks: the schedule alone writes signed reports into the chain.
  const first = await waitFor(async () => ((await scheduledReports()).length >= 1 ? scheduledReports() : undefined), 20_000, 'a scheduled report');
  const [stored] = (await pg.query<{ report: ComplianceReport }>('SELECT report FROM compliance_reports WHERE id = $1', [first[0]])).rows;
  expect(resultOf(stored!.report, 'auth.mfa-every-person')?.result).toBe('pass');
  expect(received.filter((r) => r.body.includes('compliance.check_failed'))).toEqual([]);

  // A person without a second factor: the next scheduled run fails the check and alerts.
  expect((await stack.api('POST', '/v1/users', { username: 'fake-scheduled-no-mfa', roles: ['operator'] })).status).toBe(201);
  const delivery = await waitFor(
    () => received.find((r) => r.body.includes('"compliance.check_failed"') && r.body.includes('auth.mfa-every-person')),
    30_000,
    'the compliance.check_failed alert at the webhook',
  );
  expect(verifyAlertSignature(secret, delivery, delivery.body)).toEqual({ ok: true });
  const alert = JSON.parse(delivery.body) as { kind: string; reportId: string; checkId: string; controlId: string };
  expect(alert).toMatchObject({ kind: 'compliance.check_failed', checkId: 'auth.mfa-every-person', controlId: '164.312(d)' });
  expect(await scheduledReports()).toContain(alert.reportId); // raised by a scheduled run, not a request
  // Further scheduled runs while it still fails: no second alert.
  const reportsSoFar = (await scheduledReports()).length;
  await waitFor(async () => ((await scheduledReports()).length >= reportsSoFar + 2 ? true : undefined), 20_000, 'two more scheduled reports');
  expect(received.filter((r) => r.body.includes('"compliance.check_failed"') && r.body.includes('auth.mfa-every-person'))).toHaveLength(1);
  await pg.query("UPDATE users SET disabled_at = now() WHERE username = 'fake-scheduled-no-mfa'");
  expect(resultOf(await check(), 'auth.mfa-every-person')?.result).toBe('pass');
}, 120_000);

test('retention: finished runs with PHI and logs left past the retention fail the check; the purge running passes it', async () => {
  expect(resultOf(await check(), 'media.retention-purges-ran')?.result).toBe('pass');
  const [pkg] = (await pg.query<{ digest: string; version: string }>("SELECT digest, version FROM packages WHERE name = 'no-browser'")).rows;
  const id = randomUUID();
  await pg.query(
    `INSERT INTO runs (id, idempotency_key, request_mac, bot_name, bot_version, digest, segment, status, input_sealed, max_attempts, started_at, finished_at, updated_at)
     VALUES ($1, $2, 'mac', 'no-browser', $3, $4, 'demo', 'succeeded', '{}', 1, now() - interval '4 days', now() - interval '4 days', now() - interval '4 days')`,
    [id, `fake-retention-${id}`, pkg!.version, pkg!.digest],
  );
  await pg.query(
    `INSERT INTO run_logs (run_id, attempt, seq, at, level, source, msg) VALUES ($1, 1, 0, now() - interval '4 days', 'info', 'bot', 'FAKE line')`,
    [id],
  );
  const failed = resultOf(await check(), 'media.retention-purges-ran');
  expect(failed).toMatchObject({ result: 'fail', controlId: '164.310(d)(2)(i)' });
  expect(failed?.observed).toContain('1 with PHI and 1 log lines past 1 days');

  // The purge the leader runs on the audit tick, run here: it disposes of them and records it.
  const purges = await new Retention({ db, audit: new AuditLog(db), screenshotRetentionDays: 30, auditRetentionDays: 2555, runRetentionDays: 1 }).purgeRuns();
  expect(purges[0]?.runs.count).toBe(1);
  const passed = resultOf(await check(), 'media.retention-purges-ran');
  expect(passed?.result).toBe('pass');
  expect(passed?.observed).toContain(`last purge ${purges[0]!.runs.disposedAt}`);
});

test('audit retention: a prefix older than the retention left in the chain fails the check', async () => {
  const first = (await pg.query<{ seq: string; at: Date }>('SELECT seq, at FROM audit_events ORDER BY seq LIMIT 2')).rows;
  await pg.query('ALTER TABLE audit_events DISABLE TRIGGER USER');
  try {
    // Backdate the first events beyond the 2555-day retention (as if the expiry had not run for years).
    await pg.query("UPDATE audit_events SET at = now() - interval '2600 days' WHERE seq = ANY($1)", [first.map((r) => r.seq)]);
    const report = await check();
    expect(resultOf(report, 'media.retention-purges-ran')).toMatchObject({
      result: 'fail',
      observed: expect.stringContaining('audit: 2 events past 2555 days'),
    });
  } finally {
    for (const row of first) await pg.query('UPDATE audit_events SET at = $2 WHERE seq = $1', [row.seq, row.at]);
    await pg.query('ALTER TABLE audit_events ENABLE TRIGGER USER');
  }
  const restored = await check();
  expect(resultOf(restored, 'media.retention-purges-ran')?.result).toBe('pass');
  expect(resultOf(restored, 'audit.chain-verifies')?.result).toBe('pass');
});

test('integrity: a runnable package whose key is revoked, or whose signature no longer verifies, fails; restored it passes', async () => {
  expect(resultOf(await check(), 'integrity.runnable-signed')?.result).toBe('pass');
  const [pkg] = (
    await pg.query<{ digest: string; publisher_key_id: string; envelope: unknown }>(
      "SELECT digest, publisher_key_id, envelope FROM packages WHERE name = 'no-browser'",
    )
  ).rows;
  expect((await stack.api('POST', `/v1/keys/${pkg!.publisher_key_id}/revoke`, {})).status).toBe(200);
  expect(resultOf(await check(), 'integrity.runnable-signed')).toMatchObject({ result: 'fail', observed: expect.stringContaining('no-browser@') });
  await pg.query('UPDATE publisher_keys SET revoked_at = NULL, revoked_by = NULL WHERE key_id = $1', [pkg!.publisher_key_id]);
  expect(resultOf(await check(), 'integrity.runnable-signed')?.result).toBe('pass');

  // The stored envelope altered (its signature no longer covers it): the check re-verifies every runnable package.
  const envelope = pkg!.envelope as { payload: string };
  const tampered = {
    ...envelope,
    payload: Buffer.from(Buffer.from(envelope.payload, 'base64').toString('utf8').replace('no-browser', 'no-browsex')).toString('base64'),
  };
  await pg.query('UPDATE packages SET envelope = $2 WHERE digest = $1', [pkg!.digest, JSON.stringify(tampered)]);
  expect(resultOf(await check(), 'integrity.runnable-signed')).toMatchObject({
    result: 'fail',
    observed: expect.stringContaining('signature does not verify'),
  });
  await pg.query('UPDATE packages SET envelope = $2 WHERE digest = $1', [pkg!.digest, JSON.stringify(envelope)]);
  expect(resultOf(await check(), 'integrity.runnable-signed')?.result).toBe('pass');
});

test('access: a sensitive role held without an approved two-person request fails; the approval on record passes', async () => {
  expect(resultOf(await check(), 'access.grant-approver')?.result).toBe('pass');
  // A person given `approver` by a security user outside the two-person flow (written straight to the table).
  const id = randomUUID();
  await pg.query("INSERT INTO users (id, username, roles, created_by) VALUES ($1, 'fake-unapproved', ARRAY['approver@demo'], 'user:fake-security')", [id]);
  expect(resultOf(await check(), 'access.grant-approver')).toMatchObject({
    result: 'fail',
    observed: expect.stringContaining('fake-unapproved (approver@demo)'),
  });
  await pg.query(
    `INSERT INTO access_requests (id, kind, target_id, target_name, roles_before, roles_after, requested_by, status, decided_by, decided_at)
     VALUES ($1, 'grant_roles', $2, 'fake-unapproved', '{}', ARRAY['approver@demo'], 'user:fake-security', 'approved', 'user:fake-security-2', now())`,
    [randomUUID(), id],
  );
  expect(resultOf(await check(), 'access.grant-approver')?.result).toBe('pass');
});
