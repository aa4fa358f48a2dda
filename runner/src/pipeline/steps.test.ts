// The pipeline's steps one by one, against the fakes of test/fakes/pipeline.ts.
import { DROPPED_LINES_MESSAGE, errorBody, OrderlyError } from '@orderly/shared';
import {
  capturedLogger,
  claimFor,
  controlRoomKeys,
  FAKE_MEMBER_ID,
  FAKE_PASSWORD,
  FakeControlRoom,
  FakeLeaser,
  FakePackages,
  FakeReports,
  FakeSandboxPool,
  fails,
  jobPayload,
  queueJob,
  SEGMENT,
  succeeds,
  verifiedBot,
} from '../../../test/fakes/pipeline';
import { ActiveRuns } from './active-runs';
import { admitPackageStep } from './admit-package';
import { claimStep } from './claim';
import { HaltJob, RefuseJob } from './halt-job';
import { leaseCredentialsStep } from './lease-credentials';
import { reportFailed, reportRefusal, reportSucceeded } from './report';
import { runBotStep } from './run-bot';
import { RunLog } from './run-log';
import { startSandboxStep } from './start-sandbox';
import { verifyJobStep } from './verify-job';

const { log } = capturedLogger();

async function halted(p: Promise<unknown>) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HaltJob);
  return (err as HaltJob).fate;
}

describe('verify job', () => {
  const keys = controlRoomKeys();
  const deps = { controlRoomSigningKey: keys.publicKey, segment: SEGMENT };

  test('a job signed by the control room for this segment passes as its payload', () => {
    const payload = jobPayload();
    expect(verifyJobStep(queueJob(payload, keys.privateKey).data, deps)).toEqual(payload);
  });

  test('a job signed by anyone else is refused as forged, naming no run (its run id is not to be trusted)', () => {
    const forger = controlRoomKeys();
    const err = (() => {
      try {
        verifyJobStep(queueJob(jobPayload(), forger.privateKey).data, deps);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(RefuseJob);
    expect(err).toMatchObject({ code: 'ORDERLY_E_JOB_FORGED', runId: undefined });
    expect(() => verifyJobStep({ not: 'a job' }, deps)).toThrow(expect.objectContaining({ code: 'ORDERLY_E_JOB_FORGED' }));
  });

  test('a verified job for another segment or past its time is refused naming its run', () => {
    const other = jobPayload({ segment: 'other' as typeof SEGMENT });
    expect(() => verifyJobStep(queueJob(other, keys.privateKey).data, deps)).toThrow(
      expect.objectContaining({ code: 'ORDERLY_E_JOB_WRONG_SEGMENT', runId: other.runId }),
    );
    const expired = jobPayload({ notAfter: new Date(Date.now() - 1000).toISOString() });
    expect(() => verifyJobStep(queueJob(expired, keys.privateKey).data, deps)).toThrow(
      expect.objectContaining({ code: 'ORDERLY_E_JOB_EXPIRED', runId: expired.runId }),
    );
  });
});

describe('admit package', () => {
  test('an admitted package is the verified bot', async () => {
    const bot = verifiedBot();
    await expect(admitPackageStep(jobPayload(), { packages: new FakePackages(bot) })).resolves.toBe(bot);
  });

  test('a control room that cannot be reached puts the job back for 2.5 to 5 s', async () => {
    const packages = new FakePackages(new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', 'down'));
    expect(await halted(admitPackageStep(jobPayload(), { packages, random: () => 0 }))).toEqual({ kind: 'delay', ms: 2500 });
    expect(await halted(admitPackageStep(jobPayload(), { packages, random: () => 0.999 }))).toEqual({ kind: 'delay', ms: 4997 });
  });

  test('a package this runner must not run is a refusal naming the run', async () => {
    const payload = jobPayload();
    const packages = new FakePackages(new OrderlyError('ORDERLY_E_PACKAGE_DIGEST_MISMATCH', 'tampered'));
    await expect(admitPackageStep(payload, { packages })).rejects.toMatchObject({
      name: 'RefuseJob',
      code: 'ORDERLY_E_PACKAGE_DIGEST_MISMATCH',
      runId: payload.runId,
    });
  });
});

describe('claim', () => {
  const payload = jobPayload();
  const claimWith = (answer: ConstructorParameters<typeof Error>[0] | object | Error) => {
    const client = new FakeControlRoom();
    client.claims.push(answer as never);
    return { client, run: () => claimStep(payload, { client, runnerId: 'fake-runner-1', attemptLeaseMs: 3000, log, random: () => 0 }) };
  };

  test('a granted claim is the attempt, asked for with the runner id and the lease length', async () => {
    const claim = claimFor(payload, { attempt: 2 });
    const { client, run } = claimWith(claim);
    await expect(run()).resolves.toEqual(claim);
    expect(client.calls).toEqual([{ op: 'claim', args: [payload.runId, 'fake-runner-1', 3000] }]);
  });

  test.each([
    ['a run no longer claimable completes the job unrun', new OrderlyError('ORDERLY_E_RUN_NOT_CLAIMABLE', 'done'), { kind: 'done', ok: false }],
    [
      'a live attempt defers the job until its lease would lapse',
      new OrderlyError('ORDERLY_E_RUN_ALREADY_ACTIVE', 'busy', { retryInMs: 2000 }),
      { kind: 'delay', ms: 2100 },
    ],
    ['an unreachable control room defers the job a few seconds', new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', 'down'), { kind: 'delay', ms: 2500 }],
    ['a refusal drops the job under its code', new OrderlyError('ORDERLY_E_FORBIDDEN', 'not yours'), { kind: 'drop', code: 'ORDERLY_E_FORBIDDEN' }],
    [
      'a lost previous attempt waits out the backoff the control room gives',
      { runId: payload.runId, lostAttempt: 1, retryInMs: 1234 },
      { kind: 'delay', ms: 1234 },
    ],
  ])('%s', async (_what, answer, fate) => {
    expect(await halted(claimWith(answer).run())).toEqual(fate);
  });
});

describe('start sandbox', () => {
  test('a sandbox that cannot be made gives its slot back, and the error is kept', async () => {
    const runs = new ActiveRuns(1);
    const pool = new FakeSandboxPool();
    pool.failAcquire = new OrderlyError('ORDERLY_E_SANDBOX_UNAVAILABLE', 'no bwrap');
    await expect(startSandboxStep(runs, pool)).rejects.toMatchObject({ code: 'ORDERLY_E_SANDBOX_UNAVAILABLE' });
    pool.failAcquire = undefined;
    const started = await startSandboxStep(runs, pool);
    expect(pool.acquired).toEqual([0, 0]);
    // The one slot is busy now: another run gets none.
    await expect(startSandboxStep(runs, pool)).rejects.toMatchObject({ code: 'ORDERLY_E_INTERNAL' });
    await started.release();
    await started.release();
    expect(pool.made[0]!.destroyed).toBe(1);
    expect(runs.takeSlot()).toBe(0);
    expect(runs.takeSlot()).toBeUndefined(); // released twice, freed once
  });
});

describe('lease credentials', () => {
  const bot = verifiedBot({ credentials: ['password'] });
  const grant = { roleName: 'orderly-bot-fake-bot.v1.0.0', roleId: 'fake-role-id', wrappingToken: 'fake-wrapping-token' };
  const claim = { ...claimFor(jobPayload()), credentials: grant };

  test('a bot without credentials leases nothing', async () => {
    const leaser = new FakeLeaser();
    await expect(leaseCredentialsStep(claimFor(jobPayload()), bot, { leaser, client: new FakeControlRoom(), log })).resolves.toBeUndefined();
    expect(leaser.leases).toHaveLength(0);
  });

  test('a lease is recorded with its accessor under the attempt and fence', async () => {
    const client = new FakeControlRoom();
    const lease = await leaseCredentialsStep(claim, bot, { leaser: new FakeLeaser(), client, log });
    expect(lease?.secrets).toEqual({ password: FAKE_PASSWORD });
    expect(client.calls).toEqual([{ op: 'recordLease', args: [claim.runId, claim.attempt, claim.fence, 'accessor-1'] }]);
  });

  test('a lease the control room could not record is revoked at once', async () => {
    const client = new FakeControlRoom();
    client.recordLeaseAnswer = new OrderlyError('ORDERLY_E_ATTEMPT_STALE', 'replaced');
    const leaser = new FakeLeaser();
    await expect(leaseCredentialsStep(claim, bot, { leaser, client, log })).rejects.toMatchObject({ code: 'ORDERLY_E_ATTEMPT_STALE' });
    expect(leaser.leases[0]!.released).toBe(1);
  });

  test('a runner without Vault refuses a bot that declares credentials with a clear code', async () => {
    await expect(leaseCredentialsStep(claim, bot, { leaser: undefined, client: new FakeControlRoom(), log })).rejects.toMatchObject({
      code: 'ORDERLY_E_VAULT_NOT_CONFIGURED',
    });
  });
});

describe('run bot', () => {
  const payload = jobPayload();
  const claim = claimFor(payload, { attempt: 3 });
  const bot = verifiedBot();
  const runWith = async (pool: FakeSandboxPool, client = new FakeControlRoom(), secrets: Record<string, string> = {}) => {
    const sandbox = await pool.acquire(0);
    const runLog = new RunLog(async () => undefined);
    const run = runBotStep(
      {
        claim,
        bot,
        input: { memberId: FAKE_MEMBER_ID },
        secrets,
        phi: [{ field: 'memberId', value: FAKE_MEMBER_ID }],
        sandbox,
        runLog,
        deadline: Date.now() + 5000,
      },
      { client, log },
    );
    return { run, runLog, sandbox, client };
  };

  test("the sandbox gets the run's attempt, key, input, secrets and the manifest's hosts and time", async () => {
    const { run, sandbox } = await runWith(new FakeSandboxPool(succeeds({ eligible: true })), undefined, { password: FAKE_PASSWORD });
    await expect(run).resolves.toEqual({ result: { eligible: true } });
    expect(sandbox.requests[0]).toMatchObject({
      runId: payload.runId,
      attempt: 3,
      idempotencyKey: claim.idempotencyKey,
      botName: 'fake-bot',
      input: { memberId: FAKE_MEMBER_ID },
      secrets: { password: FAKE_PASSWORD },
      hosts: ['portal.example.test'],
      timeoutMs: 30_000,
      browser: true,
    });
  });

  test('steps are recorded under the attempt and fence; a lost screenshot is logged, not a failure', async () => {
    const client = new FakeControlRoom();
    client.uploadAnswer = new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', 'down');
    const pool = new FakeSandboxPool(async (_req, events) => {
      await events.onStep!({ op: 'begin', name: 'lookup', rerun: false });
      await events.onStep!({ op: 'complete', name: 'lookup', result: { found: 1 } });
      events.onScreenshot!({ name: 'page', png: Buffer.from('fake'), failedClosed: 'none' });
      return { ok: true, result: 1 };
    });
    const { run, runLog } = await runWith(pool, client);
    await expect(run).resolves.toEqual({ result: 1 });
    expect(client.calls).toEqual([
      { op: 'beginStep', args: [payload.runId, 3, claim.fence, 'lookup', false] },
      { op: 'completeStep', args: [payload.runId, 3, claim.fence, 'lookup', { found: 1 }] },
      { op: 'uploadScreenshot', args: [payload.runId, 3, 'page', Buffer.from('fake')] },
    ]);
    expect(runLog.rest().map((l) => l.msg)).toEqual(['screenshot page not stored: ORDERLY_E_CONTROL_ROOM_UNAVAILABLE']);
  });

  test('refused egress and lines the redactor failed on are counted for the report', async () => {
    const pool = new FakeSandboxPool(async (_req, events) => {
      await new Promise((resolve) => setImmediate(resolve)); // the run's redactor is set below, as the pipeline does before the bot runs
      events.onEgressRefused!({ host: 'elsewhere.example.test', port: 443, reason: 'not in the manifest hosts' });
      events.onEgressRefused!({ host: '127.0.0.1', port: 6379, reason: 'infrastructure' });
      events.onLine!({ seq: 0, at: new Date().toISOString(), level: 'info', source: 'bot', msg: 'unredactable' });
      return { ok: true, result: 1 };
    });
    const { run, runLog } = await runWith(pool);
    runLog.useRedactor({
      redact: (msg: string) => {
        if (msg === 'unredactable') throw new Error('redactor failure');
        return msg;
      },
    });
    await expect(run).resolves.toEqual({ result: 1 });
    expect(runLog.tally()).toEqual({ redactionDrops: 1, sandboxDenials: 2 });
    expect(runLog.rest().map((l) => l.msg)).toEqual([
      'egress refused: elsewhere.example.test:443 (not in the manifest hosts)',
      'egress refused: 127.0.0.1:6379 (infrastructure)',
      `1 ${DROPPED_LINES_MESSAGE}`,
    ]);
  });

  test('a failed bot is its own error, code and retryability kept', async () => {
    const { run } = await runWith(new FakeSandboxPool(fails('ORDERLY_E_BOT_BUSINESS')));
    await expect(run).rejects.toMatchObject({ code: 'ORDERLY_E_BOT_BUSINESS', retryable: false });
  });

  test('a leased secret in the result is masked and the run flagged', async () => {
    const { run } = await runWith(new FakeSandboxPool(succeeds({ echoed: FAKE_PASSWORD })), undefined, { password: FAKE_PASSWORD });
    const left = await run;
    expect(JSON.stringify(left)).not.toContain(FAKE_PASSWORD);
    expect(left.flags).toEqual(['secret_in_result']);
  });

  test('each connection the egress proxy refused is counted on the attempt and logged, host and port only', async () => {
    const pool = new FakeSandboxPool(async (_req, events) => {
      events.onEgressRefused!({ host: '127.0.0.1', port: 6379, reason: 'infrastructure' });
      events.onEgressRefused!({ host: 'elsewhere.example.test', port: 443, reason: 'not-listed' });
      return { ok: false, error: errorBody('ORDERLY_E_BOT_BUSINESS', 'no way out') };
    });
    const { run, runLog } = await runWith(pool);
    await expect(run).rejects.toMatchObject({ code: 'ORDERLY_E_BOT_BUSINESS' });
    expect(runLog.tally().sandboxDenials).toBe(2);
    expect(runLog.rest().map((l) => l.msg)).toEqual(expect.arrayContaining(['egress refused: elsewhere.example.test:443 (not-listed)']));
  });
});

describe('report', () => {
  const payload = jobPayload();
  const attempt = (final = false) => ({
    claim: claimFor(payload, { final }),
    runLog: new RunLog(async () => undefined),
    startedAt: Date.now(),
    log,
  });

  test('a success is final, with its fence', async () => {
    const reports = new FakeReports();
    const a = attempt();
    expect(await reportSucceeded(reports, a, { result: 42 })).toEqual({ kind: 'done', ok: true });
    expect(reports.finishedReports[0]).toMatchObject({ runId: payload.runId, outcome: { ok: true, result: 42 }, final: true, fence: a.claim.fence });
    expect(reports.finishedReports[0]?.tally).toEqual({ redactionDrops: 0, sandboxDenials: 0 });
  });

  test("an attempt's drops and denials go with its outcome, success or failure", async () => {
    const reports = new FakeReports();
    const a = attempt();
    a.runLog.useRedactor({
      redact: () => {
        throw new Error('redactor failure');
      },
    });
    a.runLog.add({ at: new Date().toISOString(), level: 'info', source: 'bot', msg: 'x' });
    a.runLog.sandboxDenied('egress refused');
    await reportFailed(reports, a, new OrderlyError('ORDERLY_E_BOT_TIMEOUT', 'slow'), false);
    await reportSucceeded(reports, a, { result: 1 });
    expect(reports.finishedReports.map((r) => r.tally)).toEqual([
      { redactionDrops: 3, sandboxDenials: 1 },
      { redactionDrops: 3, sandboxDenials: 1 },
    ]);
  });

  test('a retryable failure is retried unless no attempt may follow; a non-retryable one is dropped, final', async () => {
    const reports = new FakeReports();
    expect(await reportFailed(reports, attempt(), new OrderlyError('ORDERLY_E_BOT_TIMEOUT', 'slow'), false)).toEqual({
      kind: 'retry',
      code: 'ORDERLY_E_BOT_TIMEOUT',
    });
    expect(await reportFailed(reports, attempt(true), new OrderlyError('ORDERLY_E_BOT_TIMEOUT', 'slow'), false)).toEqual({
      kind: 'retry',
      code: 'ORDERLY_E_BOT_TIMEOUT',
    });
    expect(await reportFailed(reports, attempt(), new OrderlyError('ORDERLY_E_BOT_BUSINESS', 'no'), false)).toEqual({
      kind: 'drop',
      code: 'ORDERLY_E_BOT_BUSINESS',
    });
    expect(reports.finishedReports.map((r) => r.final)).toEqual([false, true, true]);
  });

  test("a cancelled run's attempt ends with its own code whatever the bot said; an unknown error is internal, its message not kept", async () => {
    const reports = new FakeReports();
    expect(await reportFailed(reports, attempt(), new OrderlyError('ORDERLY_E_BOT_TIMEOUT', 'aborted'), true)).toEqual({
      kind: 'drop',
      code: 'ORDERLY_E_RUN_CANCELLED',
    });
    expect(await reportFailed(reports, attempt(), new Error(`raw ${FAKE_MEMBER_ID}`), false)).toEqual({ kind: 'retry', code: 'ORDERLY_E_INTERNAL' });
    expect(reports.errorOf(1)).toMatchObject({ code: 'ORDERLY_E_INTERNAL', message: 'the runner failed unexpectedly' });
    expect(reports.text()).not.toContain(FAKE_MEMBER_ID);
  });

  test('a refusal is reported with the run it names, and drops the job', async () => {
    const reports = new FakeReports();
    expect(await reportRefusal(reports, log, 'job-1', new RefuseJob('ORDERLY_E_JOB_EXPIRED', 'expired', payload.runId))).toEqual({
      kind: 'drop',
      code: 'ORDERLY_E_JOB_EXPIRED',
    });
    expect(reports.refusals).toEqual([{ jobId: 'job-1', runId: payload.runId, code: 'ORDERLY_E_JOB_EXPIRED', reason: 'expired' }]);
  });
});
