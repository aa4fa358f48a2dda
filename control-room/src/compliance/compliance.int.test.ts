import { Client } from 'pg';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPrivateKey } from '@orderly/shared';
import { createUser, Stack, startStack } from '../../../test/harness';
import { ComplianceReport, verifyReport } from './report';

/** The checks on a real stack (PostgreSQL): each flipped to fail and back to pass through real state. */
let stack: Stack;
let pg: Client;
let secretDir: string;
beforeAll(async () => {
  // A webhook nobody answers: alerts stay in the outbox, where the test reads them.
  secretDir = mkdtempSync(join(tmpdir(), 'orderly-alert-secret-'));
  writeFileSync(join(secretDir, 'secret'), 'fake-webhook-secret-for-tests', { mode: 0o600 });
  stack = await startStack({
    vault: false,
    controlRoomEnv: { ORDERLY_ALERT_WEBHOOK_URL: 'http://127.0.0.1:9/fake-hook', ORDERLY_ALERT_WEBHOOK_SECRET_FILE: join(secretDir, 'secret') },
  });
  pg = new Client({ connectionString: stack.databaseUrl });
  await pg.connect();
}, 120_000);
afterAll(async () => {
  await pg?.end();
  await stack?.close();
  rmSync(secretDir, { recursive: true, force: true });
});

const check = async (token?: string): Promise<ComplianceReport> => {
  const res = await stack.api('GET', '/v1/compliance', undefined, token);
  expect(res.status).toBe(200);
  return res.body as ComplianceReport;
};
const resultOf = (report: ComplianceReport, id: string) => report.results.find((r) => r.checkId === id)?.result;

test('the signed report has at least 20 cited checks, and its digest is in the audit chain', async () => {
  const auditor = await createUser(stack, 'fake-auditor', ['auditor']);
  const report = await check(auditor.token);
  expect(report.results.length).toBeGreaterThanOrEqual(20);
  for (const r of report.results) expect(r.controlId).toMatch(/^164\.(308|310|312)\(/);
  const releaseKey = loadPrivateKey(readFileSync(join(stack.dataDir, 'secrets', 'release.key'), 'utf8'));
  expect(verifyReport(report, createPublicKey(releaseKey))).toBe(true);
  const events = await stack.api('GET', '/v1/audit/events?limit=1000');
  const logged = (events.body.events as { action: string; details: { digest?: string }; actor: string }[]).find(
    (e) => e.action === 'compliance.report' && e.details.digest === report.digest,
  );
  expect(logged?.actor).toBe('user:fake-auditor');
  const operator = await createUser(stack, 'fake-operator', ['operator']);
  expect((await stack.api('GET', '/v1/compliance', undefined, operator.token)).status).toBe(403);
});

test('MFA: a person without a second factor fails the check; disabling them passes it', async () => {
  expect(resultOf(await check(), 'auth.mfa-every-person')).toBe('pass');
  const created = await stack.api('POST', '/v1/users', { username: 'fake-no-mfa', roles: ['operator'] });
  expect(created.status).toBe(201);
  const failed = await check();
  expect(resultOf(failed, 'auth.mfa-every-person')).toBe('fail');
  // It passed in the previous report: the turn to fail is an alert for the signed webhook.
  const alerts = (await pg.query("SELECT body FROM alert_outbox WHERE kind = 'compliance.check_failed'")).rows.map(
    (r: { body: { checkId: string; reportId: string } }) => r.body,
  );
  expect(alerts).toContainEqual(expect.objectContaining({ checkId: 'auth.mfa-every-person', reportId: failed.id }));
  await check(); // still failing: no second alert
  expect(
    (await pg.query("SELECT count(*) AS n FROM alert_outbox WHERE kind = 'compliance.check_failed' AND body->>'checkId' = 'auth.mfa-every-person'")).rows[0].n,
  ).toBe('1');
  await pg.query("UPDATE users SET disabled_at = now() WHERE username = 'fake-no-mfa'");
  expect(resultOf(await check(), 'auth.mfa-every-person')).toBe('pass');
});

test('audit chain: a changed event and disabled triggers fail; restoring them passes', async () => {
  expect(resultOf(await check(), 'audit.chain-verifies')).toBe('pass');
  expect(resultOf(await check(), 'audit.append-only')).toBe('pass');
  await pg.query('ALTER TABLE audit_events DISABLE TRIGGER USER');
  const [row] = (await pg.query<{ seq: string; target: string }>('SELECT seq, target FROM audit_events ORDER BY seq LIMIT 1')).rows;
  await pg.query("UPDATE audit_events SET target = 'tampered' WHERE seq = $1", [row!.seq]);
  let report = await check();
  expect(resultOf(report, 'audit.chain-verifies')).toBe('fail');
  expect(resultOf(report, 'audit.append-only')).toBe('fail');
  await pg.query('UPDATE audit_events SET target = $2 WHERE seq = $1', [row!.seq, row!.target]);
  await pg.query('ALTER TABLE audit_events ENABLE TRIGGER USER');
  report = await check();
  expect(resultOf(report, 'audit.chain-verifies')).toBe('pass');
  expect(resultOf(report, 'audit.append-only')).toBe('pass');
});

test('stale token: a live token unused for 100 days fails; using it again passes', async () => {
  expect(resultOf(await check(), 'access.stale-tokens')).toBe('pass');
  const user = await createUser(stack, 'fake-stale', ['auditor']);
  await pg.query("UPDATE api_tokens SET created_at = now() - interval '100 days', last_used_at = now() - interval '100 days' WHERE id = $1", [user.tokenId]);
  expect(resultOf(await check(), 'access.stale-tokens')).toBe('fail');
  await pg.query('UPDATE api_tokens SET last_used_at = now() WHERE id = $1', [user.tokenId]);
  expect(resultOf(await check(), 'access.stale-tokens')).toBe('pass');
});

test('backup and reviews: missing evidence fails, recorded evidence passes', async () => {
  let report = await check();
  expect(resultOf(report, 'contingency.backup')).toBe('fail');
  expect(resultOf(report, 'audit.activity-review')).toBe('fail');
  for (const kind of ['backup', 'audit_review'])
    expect((await stack.api('POST', '/v1/compliance/evidence', { kind, details: { note: 'FAKE-1' } })).status).toBe(201);
  report = await check();
  expect(resultOf(report, 'contingency.backup')).toBe('pass');
  expect(resultOf(report, 'audit.activity-review')).toBe('pass');
  expect((await stack.api('POST', '/v1/compliance/evidence', { kind: 'coffee' })).body.error.code).toBe('ORDERLY_E_BAD_REQUEST');
});

test('dead letters past their SLA fail the incident check', async () => {
  expect(resultOf(await check(), 'incident.dead-letters')).toBe('pass');
  // A synthetic dead-lettered run finished two days ago (a package row is needed for the reference).
  await pg.query("INSERT INTO publisher_keys (key_id, name, public_key_pem) VALUES ('fake-key', 'fake-key', 'fake')");
  await pg.query(
    "INSERT INTO packages (digest, name, version, publisher_key_id, manifest, envelope, size) VALUES ('sha256:fake', 'fake-bot', '1.0.0', 'fake-key', '{}', '{}', 1)",
  );
  await pg.query(`INSERT INTO runs (id, idempotency_key, request_mac, bot_name, bot_version, digest, segment, status, input_sealed, max_attempts, started_at, finished_at)
    VALUES (gen_random_uuid(), 'fake-key-1', 'mac', 'fake-bot', '1.0.0', 'sha256:fake', 'demo', 'dead_lettered', '{}', 1, now() - interval '49 hours', now() - interval '48 hours')`);
  expect(resultOf(await check(), 'incident.dead-letters')).toBe('fail');
  await pg.query("UPDATE runs SET status = 'discarded' WHERE idempotency_key = 'fake-key-1'");
  expect(resultOf(await check(), 'incident.dead-letters')).toBe('pass');
});

test('access review: an item left past its due date fails the check; completing the campaign passes it', async () => {
  expect(resultOf(await check(), 'access.review')).toBe('fail'); // never reviewed
  const target = await createUser(stack, 'fake-leaver', ['operator']);
  const started = await stack.api('POST', '/v1/access-reviews', { dueInDays: 7 });
  expect(started.status).toBe(201);
  const review = started.body as { id: string; items: { itemId: number; kind: string; label: string; subjectId: string }[] };
  expect(new Set(review.items.map((i) => i.kind))).toEqual(new Set(['person', 'api_token']));
  expect(review.items.some((i) => i.kind === 'person' && i.label === 'fake-leaver')).toBe(true);

  await pg.query("UPDATE access_reviews SET due_at = now() - interval '1 day' WHERE id = $1", [review.id]);
  const decide = (itemId: number, decision: string) => stack.api('POST', `/v1/access-reviews/${review.id}/items/${itemId}`, { decision });
  const [first, ...rest] = review.items.filter((i) => !(i.kind === 'person' && i.label === 'fake-leaver'));
  expect((await decide(first!.itemId, 'confirmed')).status).toBe(200);
  let report = await check();
  expect(resultOf(report, 'access.review')).toBe('fail');
  expect(report.results.find((r) => r.checkId === 'access.review')?.observed).toMatch(/items past due/);
  expect((await decide(first!.itemId, 'revoked')).body.error.code).toBe('ORDERLY_E_BAD_REQUEST'); // decided once

  for (const item of rest) expect((await decide(item.itemId, 'confirmed')).status).toBe(200);
  const leaver = review.items.find((i) => i.kind === 'person' && i.label === 'fake-leaver')!;
  const last = await decide(leaver.itemId, 'revoked');
  expect(last.body.completedAt).toEqual(expect.any(String));
  // Revoked at once: the person's token no longer works.
  expect((await stack.api('GET', '/v1/compliance', undefined, target.token)).status).toBe(401);
  report = await check();
  expect(resultOf(report, 'access.review')).toBe('pass');
  expect(resultOf(report, 'workforce.termination')).toBe('pass');
});
