import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { createUser, Stack, startStack } from '../../../test/harness';
import { ComplianceReport } from './report';

/**
 * Emergency access in production: the bootstrap admin token is the break-glass identity, and each
 * use raises an `access.break_glass_used` alert for the signed webhook (one per route and minute).
 * The `access.emergency-procedure` check fails when uses in the audit chain have no alert.
 */
let stack: Stack;
let pg: Client;
let secretDir: string;
beforeAll(async () => {
  // A webhook nobody answers: alerts stay in the outbox, where the test reads them.
  secretDir = mkdtempSync(join(tmpdir(), 'orderly-break-glass-'));
  writeFileSync(join(secretDir, 'secret'), 'fake-webhook-secret-for-tests', { mode: 0o600 });
  stack = await startStack({
    vault: false,
    controlRoomEnv: {
      ORDERLY_ENV: 'production',
      ORDERLY_TLS_TERMINATED: 'true',
      ORDERLY_ALERT_WEBHOOK_URL: 'http://127.0.0.1:9/fake-hook',
      ORDERLY_ALERT_WEBHOOK_SECRET_FILE: join(secretDir, 'secret'),
    },
  });
  pg = new Client({ connectionString: stack.databaseUrl });
  await pg.connect();
}, 120_000);
afterAll(async () => {
  await pg?.end();
  await stack?.close();
  rmSync(secretDir, { recursive: true, force: true });
});

const emergencyCheck = async (token?: string) => {
  const res = await stack.api('GET', '/v1/compliance', undefined, token);
  expect(res.status).toBe(200);
  return (res.body as ComplianceReport).results.find((r) => r.checkId === 'access.emergency-procedure');
};
const breakGlassAlerts = async () =>
  (await pg.query<{ body: { kind: string; route: string } }>("SELECT body FROM alert_outbox WHERE kind = 'access.break_glass_used'")).rows.map((r) => r.body);

test('each use of the bootstrap admin token alerts; uses without their alert fail the emergency access check', async () => {
  // The admin's own request alerts before its report is made: the check passes.
  expect(await emergencyCheck()).toMatchObject({ result: 'pass', controlId: '164.312(a)(2)(ii)' });
  expect(await breakGlassAlerts()).toEqual([expect.objectContaining({ kind: 'access.break_glass_used', route: 'GET /v1/compliance' })]);
  await emergencyCheck(); // the same route within the minute: no second alert
  expect((await breakGlassAlerts()).filter((a) => a.route === 'GET /v1/compliance')).toHaveLength(1);

  // An auditor (not break-glass) asks after the admin's uses lost their alerts: the check fails.
  const auditor = await createUser(stack, 'fake-auditor', ['auditor']);
  await pg.query("DELETE FROM alert_outbox WHERE kind = 'access.break_glass_used'");
  const failed = await emergencyCheck(auditor.token);
  expect(failed).toMatchObject({ result: 'fail', observed: expect.stringMatching(/[1-9]\d* bootstrap admin actions, 0 break-glass alerts/) });
  expect(await breakGlassAlerts()).toEqual([]); // the auditor's request raised none
  // The admin again: that use alerts, and the check passes.
  expect((await emergencyCheck())?.result).toBe('pass');
}, 120_000);
