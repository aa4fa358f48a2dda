import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import parsePrometheusTextFormat, { ParsedFamily } from 'parse-prometheus-text-format';
import { loadPrivateKey, parseControlRoomPublicKeys, reportAad, reportsQueueName, sealTo, SegmentName, signReport, UnsignedReport } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { REPO, Stack, startStack } from '../../../test/harness';
import { runnerSigningKeyPath, runnerTokenPath } from '../keys/secrets';

/**
 * The counters a runner reports (redaction drops, sandbox denials) and those the control room keeps
 * (lease failures, refusals) move when the thing they count happens, and only then: a report with
 * another claim's fence, or a report delivered twice, moves nothing. Real PostgreSQL and Redis; the
 * test claims over the runner API and sends reports signed with the demo runner's own key.
 */
let stack: Stack;
let reports: Queue;
let token: string;
beforeAll(async () => {
  stack = await startStack({ vault: false });
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'no-browser'));
  reports = new Queue(reportsQueueName(SegmentName.parse('demo')), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
  token = readFileSync(runnerTokenPath(secrets(), 'demo'), 'utf8').trim();
}, 120_000);
afterAll(async () => {
  await reports?.close();
  await stack?.close();
});

const secrets = () => join(stack.dataDir, 'secrets');
let seq = 0;
const send = (report: UnsignedReport) =>
  reports.add('report', signReport(loadPrivateKey(readFileSync(runnerSigningKeyPath(secrets(), 'demo'), 'utf8')), report), {
    jobId: `tally-${++seq}-${randomBytes(4).toString('hex')}`,
    attempts: 1,
  });
const sealed = (runId: string, attempt: number, body: object) =>
  sealTo(
    parseControlRoomPublicKeys(readFileSync(join(secrets(), 'control-room.pub'), 'utf8')).sealing,
    Buffer.from(JSON.stringify(body)),
    reportAad(runId, attempt),
  );
const base = { v: 1 as const, runnerId: 'metrics-tally-test', at: new Date().toISOString() };

async function claimedRun(): Promise<{ id: string; fence: string }> {
  const run = await stack.startRun({ bot: 'no-browser', input: {} });
  const claim = await stack.api('POST', `/v1/runner/runs/${run.id}/claim`, { runnerId: 'metrics-tally-test' }, token);
  expect(claim.status).toBe(200);
  return { id: run.id, fence: (claim.body as { fence: string }).fence };
}

async function scrape(): Promise<ParsedFamily[]> {
  const res = await fetch(`${stack.controlRoom.url}/metrics`, { headers: { authorization: `Bearer ${stack.adminToken}` } });
  expect(res.status).toBe(200);
  return parsePrometheusTextFormat(await res.text());
}
const value = (families: ParsedFamily[], name: string, labels: Record<string, string>): number | undefined => {
  const sample = families.find((f) => f.name === name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return sample?.value === undefined ? undefined : Number(sample.value);
};

test('redaction drops, sandbox denials, lease failures and refusals each move their counter', async () => {
  const before = await scrape();
  expect(value(before, 'orderly_redaction_drops', { segment: 'demo' })).toBe(0);
  expect(value(before, 'orderly_sandbox_denials', { segment: 'demo' })).toBe(0);
  expect(value(before, 'orderly_lease_failures', { error_code: 'ORDERLY_E_VAULT_UNAVAILABLE' })).toBeUndefined();
  expect(value(before, 'orderly_refusals', { error_code: 'ORDERLY_E_JOB_EXPIRED' })).toBeUndefined();

  // A success whose runner dropped 2 unredactable lines and had 3 connections refused, delivered twice.
  const quiet = await claimedRun();
  const succeeded: UnsignedReport = {
    ...base,
    kind: 'finished',
    runId: quiet.id as never,
    attempt: 1,
    outcome: 'succeeded',
    final: true,
    durationMs: 5,
    fence: quiet.fence,
    redactionDrops: 2,
    sandboxDenials: 3,
    sealed: sealed(quiet.id, 1, { result: { ok: 1 }, lines: [] }),
  };
  await send(succeeded);
  await send(succeeded);
  // The same counts under another claim's fence: refused (ORDERLY_E_REPORT_FENCED or the like), not counted.
  const other = await claimedRun();
  await send({
    ...succeeded,
    runId: other.id as never,
    fence: 'not-the-fence',
    redactionDrops: 100,
    sandboxDenials: 100,
    sealed: sealed(other.id, 1, { lines: [] }),
  });
  // A final failure on the credential lease.
  const leased = await claimedRun();
  const vaultDown = { code: 'ORDERLY_E_VAULT_UNAVAILABLE', message: 'vault did not answer', retryable: true, details: {} };
  await send({
    ...base,
    kind: 'finished',
    runId: leased.id as never,
    attempt: 1,
    outcome: 'failed',
    final: true,
    errorCode: vaultDown.code,
    durationMs: 5,
    fence: leased.fence,
    sealed: sealed(leased.id, 1, { error: vaultDown, lines: [] }),
  });
  // A job the runner would not run.
  await send({ ...base, kind: 'refused', jobId: 'job-expired-1', errorCode: 'ORDERLY_E_JOB_EXPIRED', reason: 'the job expired before it was taken' });

  await waitFor(
    async () => {
      const [a, b] = await Promise.all([stack.api('GET', `/v1/runs/${quiet.id}`), stack.api('GET', `/v1/runs/${leased.id}`)]);
      return a.body.status === 'succeeded' && b.body.status === 'dead_lettered' ? true : undefined;
    },
    20_000,
    'both runs to finish',
  );
  const after = await waitFor(
    async () => {
      const families = await scrape();
      const pending = await reports.getJobCounts('waiting', 'active');
      const settled =
        value(families, 'orderly_refusals', { error_code: 'ORDERLY_E_JOB_EXPIRED' }) === 1 && (pending.waiting ?? 0) + (pending.active ?? 0) === 0;
      return settled ? families : undefined;
    },
    20_000,
    'the reports to be consumed',
  );
  expect(value(after, 'orderly_redaction_drops', { segment: 'demo' })).toBe(2);
  expect(value(after, 'orderly_sandbox_denials', { segment: 'demo' })).toBe(3);
  expect(value(after, 'orderly_redaction_drops', { segment: 'other' })).toBe(0);
  expect(value(after, 'orderly_lease_failures', { error_code: 'ORDERLY_E_VAULT_UNAVAILABLE' })).toBe(1);
  expect(value(after, 'orderly_refusals', { error_code: 'ORDERLY_E_JOB_EXPIRED' })).toBe(1);
  expect(families(after, 'orderly_redaction_drops')).toBe('GAUGE');
}, 120_000);

const families = (list: ParsedFamily[], name: string) => list.find((f) => f.name === name)?.type;
