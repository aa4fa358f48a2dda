import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { parseControlRoomPublicKeys, REPORTS_QUEUE, reportAad, sealTo, signReport, UnsignedReport } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { Stack, startStack } from '../harness';

/**
 * Reports count only when a runner of the run's segment signed them. Report bodies are sealed to
 * the control room's public key, which anyone can seal to: without the signature, whoever can
 * write to Redis could report a run's outcome.
 */
let stack: Stack;
let db: Client;
let reports: Queue;

beforeAll(async () => {
  stack = await startStack();
  await stack.publish();
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  reports = new Queue(REPORTS_QUEUE, { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
});
afterAll(async () => {
  await reports?.close();
  await db?.end();
  await stack?.close();
});

const secrets = () => join(stack.dataDir, 'secrets');
const tokenSha256 = (token: string) => createHash('sha256').update(token).digest();
const runnerToken = (segment: string) => readFileSync(join(secrets(), `runner-${segment}.token`), 'utf8').trim();

function logsReport(runId: string, marker: string): UnsignedReport {
  const sealing = parseControlRoomPublicKeys(readFileSync(join(secrets(), 'control-room.pub'), 'utf8')).sealing;
  const body = { lines: [{ seq: 0, at: new Date().toISOString(), level: 'info', source: 'bot', msg: marker }] };
  return { v: 1, kind: 'logs', runnerId: 'someone', at: new Date().toISOString(), runId: runId as never, attempt: 1, sealed: sealTo(sealing, Buffer.from(JSON.stringify(body)), reportAad(runId, 1)) };
}

test('reports signed by an unknown credential or by a runner of another segment are refused; a runner of the segment is heard', async () => {
  const run = await stack.startRun({ bot: 'eligibility-check', input: { portalUrl: stack.portal.url, memberId: 'ZZT100200301', dateOfBirth: '1900-01-15' } });
  const add = (name: string, report: object) => reports.add('logs', report, { jobId: `${name}-${randomBytes(4).toString('hex')}`, attempts: 1 });

  await add('unsigned', logsReport(run.id, 'FORGED-UNSIGNED'));
  await add('stranger', signReport(tokenSha256(`orderly_${randomBytes(24).toString('base64url')}`), logsReport(run.id, 'FORGED-STRANGER')));
  await add('other-segment', signReport(tokenSha256(runnerToken('other')), logsReport(run.id, 'FORGED-OTHER-SEGMENT')));
  const tampered = signReport(tokenSha256(runnerToken('demo')), logsReport(run.id, 'GENUINE-THEN-CHANGED'));
  await add('tampered', { ...tampered, runnerId: 'changed-after-signing' });
  await add('genuine', signReport(tokenSha256(runnerToken('demo')), logsReport(run.id, 'GENUINE')));

  const lines = await waitFor(async () => {
    const rows = (await db.query<{ msg: string }>('SELECT msg FROM run_logs WHERE run_id = $1', [run.id])).rows.map((r) => r.msg);
    return rows.includes('GENUINE') ? rows : undefined;
  }, 15_000, 'the genuine report');
  const refusals = await waitFor(async () => {
    const rows = (await db.query<{ reason: string; error_code: string }>("SELECT reason, error_code FROM job_refusals WHERE run_id = $1 ORDER BY id", [run.id])).rows;
    return rows.length >= 3 ? rows : undefined;
  }, 15_000, 'three refusals');
  expect(lines).toEqual(['GENUINE']);
  expect(refusals.map((r) => r.error_code)).toEqual(['ORDERLY_E_REPORT_FORGED', 'ORDERLY_E_REPORT_FORGED', 'ORDERLY_E_REPORT_FORGED']);
  expect(refusals.map((r) => r.reason).sort()).toEqual([
    'sent by a runner of segment other for a run of another segment',
    'signature does not verify',
    'signed with an unknown or revoked runner credential',
  ]);
  expect((await stack.api('GET', `/v1/runs/${run.id}`)).body.status).toBe('waiting');
});
