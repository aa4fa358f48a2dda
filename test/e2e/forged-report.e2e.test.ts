import { spawn } from 'node:child_process';
import { createHmac, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { runnerSigningKeyPath, runnerTokenPath } from '@orderly/control-room';
import {
  generateSigningKeyPair,
  LEGACY_REPORTS_QUEUE,
  loadPrivateKey,
  parseControlRoomPublicKeys,
  reportAad,
  reportsQueueName,
  runnerKeyId,
  SegmentName,
  sealTo,
  signReport,
  UnsignedReport,
} from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { REPO, Stack, startStack } from '../harness';

/**
 * Reports count only when a runner of the run's segment signed them with its own Ed25519 key.
 * Report bodies are sealed to the control room's public key, which anyone can seal to, and the
 * database keeps only public keys and token hashes: without the runner's private key file,
 * whoever can write to Redis (or read the database) cannot report a run's outcome.
 */
let stack: Stack;
let db: Client;
/** The demo segment's reports queue, the other segment's, and the shared queue of earlier releases. */
let reports: Queue;
let otherReports: Queue;
let legacyReports: Queue;

beforeAll(async () => {
  stack = await startStack();
  await stack.publish();
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  const queue = (name: string) => new Queue(name, { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
  reports = queue(reportsQueueName(SegmentName.parse('demo')));
  otherReports = queue(reportsQueueName(SegmentName.parse('other')));
  legacyReports = queue(LEGACY_REPORTS_QUEUE);
}, 60_000);
afterAll(async () => {
  await Promise.all([reports?.close(), otherReports?.close(), legacyReports?.close()]);
  await db?.end();
  await stack?.close();
});

const secrets = () => join(stack.dataDir, 'secrets');
const bootstrapKey = (segment: string) => loadPrivateKey(readFileSync(runnerSigningKeyPath(secrets(), segment), 'utf8'));
const strangerKey = () => generateKeyPairSync('ed25519').privateKey;
const INPUT = () => ({ portalUrl: stack.portal.url, memberId: 'ZZT100200301', dateOfBirth: '1900-01-15' });
const line = (msg: string) => ({ seq: 0, at: new Date().toISOString(), level: 'info' as const, source: 'bot' as const, msg });

function sealed(runId: string, attempt: number, body: object) {
  const sealing = parseControlRoomPublicKeys(readFileSync(join(secrets(), 'control-room.pub'), 'utf8')).sealing;
  return sealTo(sealing, Buffer.from(JSON.stringify(body)), reportAad(runId, attempt));
}

function logsReport(runId: string, marker: string, seq = 0): UnsignedReport {
  return {
    v: 1,
    kind: 'logs',
    runnerId: 'someone',
    at: new Date().toISOString(),
    runId: runId as never,
    attempt: 1,
    sealed: sealed(runId, 1, { lines: [{ ...line(marker), seq }] }),
  };
}

/** `fence`: the claim's fencing token, as the genuine runner sends it (a forger may have it too). */
function finishedReport(runId: string, attempt: number, marker: string, fence?: string): UnsignedReport {
  return {
    v: 1,
    kind: 'finished',
    runnerId: 'someone',
    at: new Date().toISOString(),
    runId: runId as never,
    attempt,
    outcome: 'succeeded',
    final: true,
    durationMs: 5,
    ...(fence ? { fence } : {}),
    sealed: sealed(runId, attempt, { result: { eligible: true, forgedBy: marker }, lines: [{ ...line(marker), seq: 90 }] }),
  };
}

let counter = 0;
const jobOptions = (name: string) => ({ jobId: `${name}-${++counter}-${randomBytes(4).toString('hex')}`, attempts: 1 });
/**
 * Puts a report where its signer's runner would: the other segment's runner key on that segment's
 * queue (its Redis user can reach no other), anything else on the demo segment's.
 */
const add = (name: string, report: object) => {
  const other = runnerKeyId(createPublicKey(bootstrapKey('other')));
  return ((report as { sig?: { key?: string } }).sig?.key === other ? otherReports : reports).add('report', report, jobOptions(name));
};
const logLines = async (runId: string) =>
  (await db.query<{ msg: string; seq: number }>('SELECT seq, msg FROM run_logs WHERE run_id = $1 ORDER BY attempt, seq', [runId])).rows;
const refusalsOf = (runId: string, n: number) =>
  waitFor(
    async () => {
      const rows = (
        await db.query<{ reason: string; error_code: string; job_id: string }>(
          'SELECT reason, error_code, job_id FROM job_refusals WHERE run_id = $1 ORDER BY id',
          [runId],
        )
      ).rows;
      return rows.length >= n ? rows : undefined;
    },
    20_000,
    `${n} refusals`,
  );
/** Waits until the consumer has taken every report off the queue (each is applied or refused by then). */
const drained = () =>
  waitFor(
    async () => {
      const counts = await Promise.all([reports, otherReports, legacyReports].map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized')));
      return counts.every((c) => Object.values(c).every((n) => n === 0)) || undefined;
    },
    20_000,
    'the reports queues to drain',
  );

/** A run made active by claiming it over the runner API as the demo runner: no bot runs it, so only reports can move it. */
async function activeRun(): Promise<{ id: string; attempt: number; fence: string }> {
  const run = await stack.startRun({ bot: 'eligibility-check', input: INPUT() });
  const token = readFileSync(runnerTokenPath(secrets(), 'demo'), 'utf8').trim();
  const claim = await stack.api('POST', `/v1/runner/runs/${run.id}/claim`, { runnerId: 'test-claimer' }, token);
  expect(claim.status).toBe(200);
  expect((await stack.api('GET', `/v1/runs/${run.id}`)).body.status).toBe('active');
  return { id: run.id, attempt: claim.body.attempt as number, fence: claim.body.fence as string };
}

test('logs reports: unsigned, unknown key, another segment, tampered and database-forged ones are refused and recorded; the segment runner is heard', async () => {
  const run = await stack.startRun({ bot: 'eligibility-check', input: INPUT() });
  const demo = bootstrapKey('demo');

  await add('unsigned', logsReport(run.id, 'FORGED-UNSIGNED'));
  await add('stranger', signReport(strangerKey(), logsReport(run.id, 'FORGED-STRANGER')));
  await add('other-segment', signReport(bootstrapKey('other'), logsReport(run.id, 'FORGED-OTHER-SEGMENT')));
  const tampered = signReport(demo, logsReport(run.id, 'GENUINE-THEN-CHANGED'));
  await add('tampered', { ...tampered, runnerId: 'changed-after-signing' });
  await add('genuine', signReport(demo, logsReport(run.id, 'GENUINE')));

  const refusals = await refusalsOf(run.id, 4);
  const lines = await waitFor(
    async () => {
      const rows = (await logLines(run.id)).map((r) => r.msg);
      return rows.includes('GENUINE') ? rows : undefined;
    },
    15_000,
    'the genuine report',
  );
  expect(lines).toEqual(['GENUINE']);
  expect(refusals.map((r) => r.error_code)).toEqual(Array(4).fill('ORDERLY_E_REPORT_FORGED'));
  expect(refusals.map((r) => r.reason).sort()).toEqual([
    'sent by a runner of segment other for a run of another segment',
    'signature does not verify',
    'signed with an unknown or revoked runner key',
    'unsigned or malformed report',
  ]);
  expect((await stack.api('GET', `/v1/runs/${run.id}`)).body.status).toBe('waiting');
}, 70_000);

test('a report forged with everything the database holds of a runner (token hash, public key, key id) is refused', async () => {
  // The runner's own pair, made where it runs: the control room gets the public half only.
  const targetPair = generateSigningKeyPair();
  const registered = await stack.api('POST', '/v1/runners', { name: 'db-forgery-target', segment: 'demo', publicKey: targetPair.publicKeyPem });
  expect(registered.status).toBe(201);
  const [row] = (
    await db.query<{ token_hash: string; public_key: string; key_id: string }>(
      "SELECT token_hash, public_key, key_id FROM runner_identities WHERE name = 'db-forgery-target'",
    )
  ).rows;
  expect(row?.key_id).toBe(registered.body.keyId);
  // The database keeps no private key material: nothing there parses as one.
  expect(JSON.stringify(row)).not.toContain('PRIVATE KEY');
  const run = await stack.startRun({ bot: 'eligibility-check', input: INPUT() });
  const unsigned = logsReport(run.id, 'FORGED-FROM-DATABASE');
  // What the HMAC scheme accepted: a MAC keyed with the stored token hash, under the stored key id.
  const macKeyedWithTokenHash = createHmac('sha512', Buffer.from(row!.token_hash, 'hex')).update(JSON.stringify(unsigned)).digest('base64url');
  await add('db-forged', { ...unsigned, sig: { key: row!.key_id, ed25519: macKeyedWithTokenHash } });
  const [refusal] = await refusalsOf(run.id, 1);
  expect(refusal).toMatchObject({ error_code: 'ORDERLY_E_REPORT_FORGED', reason: 'signature does not verify' });
  expect(await logLines(run.id)).toEqual([]);
  // The same identity's own key (on the runner only) is heard.
  await add('db-target-genuine', signReport(loadPrivateKey(targetPair.privateKeyPem), logsReport(run.id, 'GENUINE-REGISTERED')));
  await waitFor(async () => ((await logLines(run.id)).length === 1 ? true : undefined), 15_000, 'the registered runner report');
}, 70_000);

test('forged finished reports for an active run never move it, each is recorded, and stored log lines stay as they were', async () => {
  const run = await activeRun();
  const demo = bootstrapKey('demo');
  await add('genuine-logs', signReport(demo, logsReport(run.id, 'GENUINE-BEFORE')));
  await waitFor(async () => ((await logLines(run.id)).length === 1 ? true : undefined), 15_000, 'the genuine log line');
  const before = await logLines(run.id);

  // A registered runner of the run's own segment, revoked before it reports.
  const revokedPair = generateSigningKeyPair();
  expect((await stack.api('POST', '/v1/runners', { name: 'revoked-demo-runner', segment: 'demo', publicKey: revokedPair.publicKeyPem })).status).toBe(201);
  expect((await stack.api('DELETE', '/v1/runners/revoked-demo-runner')).status).toBe(200);
  const tampered = signReport(demo, finishedReport(run.id, run.attempt, 'FORGED-TAMPERED', run.fence));

  await add('finished-unsigned', finishedReport(run.id, run.attempt, 'FORGED-UNSIGNED', run.fence));
  await add('finished-tampered', {
    ...tampered,
    sealed: (finishedReport(run.id, run.attempt, 'FORGED-SWAPPED-BODY', run.fence) as { sealed: unknown }).sealed,
  });
  await add('finished-other-segment', signReport(bootstrapKey('other'), finishedReport(run.id, run.attempt, 'FORGED-OTHER-SEGMENT', run.fence)));
  await add('finished-revoked', signReport(loadPrivateKey(revokedPair.privateKeyPem), finishedReport(run.id, run.attempt, 'FORGED-REVOKED', run.fence)));
  await add('finished-stranger', signReport(strangerKey(), finishedReport(run.id, run.attempt, 'FORGED-STRANGER', run.fence)));

  const refusals = await refusalsOf(run.id, 5);
  expect(refusals.map((r) => [r.job_id, r.reason]).sort()).toEqual([
    ['report:finished', 'sent by a runner of segment other for a run of another segment'],
    ['report:finished', 'signature does not verify'],
    ['report:finished', 'signed with an unknown or revoked runner key'],
    ['report:finished', 'signed with an unknown or revoked runner key'],
    ['report:finished', 'unsigned or malformed report'],
  ]);
  await drained();
  const after = await stack.api('GET', `/v1/runs/${run.id}`);
  expect(after.body.status).toBe('active');
  expect(JSON.stringify(after.body)).not.toContain('FORGED');
  expect(await logLines(run.id)).toEqual(before);
  // Each refusal is in the audit log too, the unsigned one included.
  const audited = (await db.query<{ n: string }>("SELECT count(*) AS n FROM audit_events WHERE action = 'job.refused' AND target = $1", [run.id])).rows[0]!.n;
  expect(Number(audited)).toBe(5);

  // The genuine runner's finished report still moves it: the refusals were not a broken path.
  await add('finished-genuine', signReport(demo, finishedReport(run.id, run.attempt, 'GENUINE-FINISH', run.fence)));
  expect(await stack.waitForRun(run.id)).toMatchObject({ status: 'succeeded' });
}, 120_000);

test("a refusal moves only its own segment's runs: another segment's runner refusing a run's envelope is a security event, the run is untouched", async () => {
  const run = await stack.startRun({ bot: 'eligibility-check', input: INPUT() });
  const refusal = (code: string): UnsignedReport => ({
    v: 1,
    kind: 'refused',
    runnerId: 'r',
    at: new Date().toISOString(),
    jobId: 'copied-job',
    runId: run.id as never,
    errorCode: code,
    reason: 'job is for segment demo',
  });
  await add('foreign-refusal', signReport(bootstrapKey('other'), refusal('ORDERLY_E_JOB_WRONG_SEGMENT')));
  const [row] = await refusalsOf(run.id, 1);
  expect(row!.reason).toMatch(/^security: refused by a runner of segment other for a run of another segment; the run was left untouched/);
  expect(row!.job_id).toMatch(/^hmac:[a-f0-9]{32}$/);
  await drained();
  expect((await stack.api('GET', `/v1/runs/${run.id}`)).body.status).toBe('waiting');
  const security = (
    await db.query<{ actor: string; details: { runnerSegment: string } }>(
      "SELECT actor, details FROM audit_events WHERE action = 'security.job_crossed_segments' AND target = $1",
      [run.id],
    )
  ).rows;
  expect(security).toEqual([{ actor: 'runner:other', details: expect.objectContaining({ runnerSegment: 'other' }) }]);

  // The same refusal from a runner of the run's own segment (an expired envelope) does end it.
  await add('own-refusal', signReport(bootstrapKey('demo'), refusal('ORDERLY_E_JOB_EXPIRED')));
  expect(await stack.waitForRun(run.id)).toMatchObject({ status: 'dead_lettered' });
}, 100_000);

test('a runner of segment S fetches only packages whose manifest allows S', async () => {
  const run = await stack.startRun({ bot: 'eligibility-check', input: INPUT() }); // eligibility-check allows demo only
  const token = (segment: string) => readFileSync(runnerTokenPath(secrets(), segment), 'utf8').trim();
  const own = await stack.api('GET', `/v1/runner/packages/${run.digest}`, undefined, token('demo'));
  expect(own.status).toBe(200);
  for (const path of [`/v1/runner/packages/${run.digest}`, `/v1/runner/packages/${run.digest}/release`]) {
    const other = await stack.api('GET', path, undefined, token('other'));
    expect({ path, status: other.status, code: other.body.error?.code }).toEqual({ path, status: 404, code: 'ORDERLY_E_NOT_FOUND' });
  }
});

/** Runs the `orderly` CLI (from dist) against the stack as the bootstrap admin. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(join(REPO, 'node_modules', '.bin', 'orderly'), args, {
      env: { PATH: process.env.PATH ?? '', HOME: stack.dataDir, ORDERLY_URL: stack.controlRoom.url, ORDERLY_TOKEN: stack.adminToken },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('orderly runners register makes the key pair locally (0600, beside the token), or takes the public key of one made by orderly runner keygen', async () => {
  const dir = join(stack.dataDir, 'cli-runners');
  mkdirSync(dir, { mode: 0o700 });
  const made = await cli(['runners', 'register', 'cli-r1', '--segment', 'demo', '--out', join(dir, 'cli-r1.token'), '--json']);
  expect(made.code).toBe(0);
  const view = JSON.parse(made.stdout) as { keyId: string; signingKey?: string; token?: string };
  expect(view.signingKey).toBeUndefined();
  expect(view.token).toBeUndefined();
  for (const file of ['cli-r1.token', 'cli-r1.key']) expect(statSync(join(dir, file)).mode & 0o777).toBe(0o600);
  const key = loadPrivateKey(readFileSync(join(dir, 'cli-r1.key'), 'utf8'));
  expect(runnerKeyId(createPublicKey(key))).toBe(view.keyId);

  const keygen = await cli(['runner', 'keygen', '--out', join(dir, 'cli-r2.key')]);
  expect(keygen.code).toBe(0);
  expect(statSync(join(dir, 'cli-r2.key')).mode & 0o777).toBe(0o600);
  // An existing key is never overwritten.
  expect((await cli(['runner', 'keygen', '--out', join(dir, 'cli-r2.key')])).code).not.toBe(0);
  const registered = await cli([
    'runners',
    'register',
    'cli-r2',
    '--segment',
    'demo',
    '--public-key',
    join(dir, 'cli-r2.key.pub'),
    '--out',
    join(dir, 'cli-r2.token'),
    '--json',
  ]);
  expect(registered.code).toBe(0);
  expect(JSON.parse(registered.stdout).keyId).toBe(runnerKeyId(createPublicKey(loadPrivateKey(readFileSync(join(dir, 'cli-r2.key'), 'utf8')))));
  // Its reports are heard: the key made on the runner is the one the control room knows.
  const run = await stack.startRun({ bot: 'eligibility-check', input: INPUT() });
  await add('cli-r2', signReport(loadPrivateKey(readFileSync(join(dir, 'cli-r2.key'), 'utf8')), logsReport(run.id, 'FROM-KEYGEN')));
  await waitFor(async () => ((await logLines(run.id)).length === 1 ? true : undefined), 15_000, 'the keygen runner report');
}, 60_000);

test("reports are read per segment: one signed by another segment's runner on this segment's queue is refused; reports left on the shared queue of earlier releases are still applied once", async () => {
  const run = await stack.startRun({ bot: 'eligibility-check', input: INPUT() });
  // Only the control room's Redis user could have put it there: the other runner's user cannot.
  await reports.add('report', signReport(bootstrapKey('other'), logsReport(run.id, 'COPIED-ACROSS-QUEUES')), jobOptions('copied'));
  const [row] = await refusalsOf(run.id, 1);
  expect(row).toMatchObject({
    error_code: 'ORDERLY_E_REPORT_FORGED',
    reason: 'signed by a runner of segment other but found on the reports queue of segment demo',
  });
  // Upgrade: a genuine report left on `orderly.reports` is applied, with the same checks.
  await legacyReports.add('report', signReport(bootstrapKey('demo'), logsReport(run.id, 'LEFT-ON-LEGACY-QUEUE', 3)), jobOptions('legacy'));
  await legacyReports.add('report', signReport(bootstrapKey('other'), logsReport(run.id, 'LEGACY-OTHER-SEGMENT', 4)), jobOptions('legacy-other'));
  const refusals = await refusalsOf(run.id, 2);
  expect(refusals[1]!.reason).toBe('sent by a runner of segment other for a run of another segment');
  await drained();
  expect((await logLines(run.id)).map((r) => r.msg)).toEqual(['LEFT-ON-LEGACY-QUEUE']);
}, 90_000);
