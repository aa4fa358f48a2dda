// The composed pipeline: every step in order, each failure mapped to its code and to the job's
// fate (done, delay, drop, retry) as the runner always did, and everything an attempt held torn down.
import { OrderlyError } from '@orderly/shared';
import {
  claimFor,
  controlRoomKeys,
  FAKE_MEMBER_ID,
  FAKE_PASSWORD,
  FakeSandboxPool,
  fakePipeline,
  fails,
  jobPayload,
  queueJob,
  runsUntilAborted,
  succeeds,
  verifiedBot,
} from '../../../test/fakes/pipeline';
import { createPipeline } from './attempt';

const grant = { roleName: 'orderly-bot-fake-bot.v1.0.0', roleId: 'fake-role-id', wrappingToken: 'fake-wrapping-token' };

/** Waits for the event loop to run the pipeline up to its next real wait. */
const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setImmediate(resolve));
  expect(check()).toBe(true);
};

test('a run goes verify, admit, claim, sandbox, lease, run, report, and its sandbox and lease are gone after', async () => {
  const f = fakePipeline();
  f.packages.result = verifiedBot({ credentials: ['password'] });
  const { payload, job } = f.job(jobPayload(), { credentials: grant });
  const pipeline = createPipeline(f.deps);
  expect(await pipeline.process(job)).toEqual({ kind: 'done', ok: true });
  expect(f.packages.asked).toEqual([payload]);
  expect(f.client.ops()).toEqual(['claim', 'recordLease']);
  expect(f.sandboxes.made).toHaveLength(1);
  expect(f.sandboxes.made[0]!.requests[0]).toMatchObject({ runId: payload.runId, secrets: { password: FAKE_PASSWORD } });
  expect(f.sandboxes.made[0]!.destroyed).toBe(1);
  expect(f.leaser.leases).toEqual([{ accessor: 'accessor-1', released: 1 }]);
  expect(f.reports.finishedReports).toEqual([
    expect.objectContaining({ runId: payload.runId, attempt: 1, final: true, outcome: { ok: true, result: { eligible: true } } }),
  ]);
  expect(pipeline.runs.inFlight).toBe(0);
  expect(pipeline.runs.takeSlot()).toBe(0); // the slot is free again
});

test('a forged job is refused and reported, and nothing is fetched, claimed or started', async () => {
  const f = fakePipeline();
  const fate = await createPipeline(f.deps).process(queueJob(jobPayload(), controlRoomKeys().privateKey));
  expect(fate).toEqual({ kind: 'drop', code: 'ORDERLY_E_JOB_FORGED' });
  expect(f.reports.refusals).toEqual([expect.objectContaining({ code: 'ORDERLY_E_JOB_FORGED', runId: undefined })]);
  expect(f.packages.asked).toHaveLength(0);
  expect(f.client.calls).toHaveLength(0);
  expect(f.sandboxes.acquired).toHaveLength(0);
});

test('a package refused by the release gate is a refusal naming the run; no attempt starts', async () => {
  const f = fakePipeline();
  f.packages.result = new OrderlyError('ORDERLY_E_KEY_REVOKED', 'revoked');
  const { payload, job } = f.job();
  expect(await createPipeline(f.deps).process(job)).toEqual({ kind: 'drop', code: 'ORDERLY_E_KEY_REVOKED' });
  expect(f.reports.refusals).toEqual([expect.objectContaining({ runId: payload.runId, code: 'ORDERLY_E_KEY_REVOKED' })]);
  expect(f.client.calls).toHaveLength(0);
});

test.each([
  ['refused', new OrderlyError('ORDERLY_E_FORBIDDEN', 'no'), { kind: 'drop', code: 'ORDERLY_E_FORBIDDEN' }],
  ['for a live attempt', new OrderlyError('ORDERLY_E_RUN_ALREADY_ACTIVE', 'busy', { retryInMs: 5000 }), { kind: 'delay', ms: 5100 }],
  ['for a finished run', new OrderlyError('ORDERLY_E_RUN_NOT_CLAIMABLE', 'done'), { kind: 'done', ok: false }],
])('a claim %s never starts a sandbox, leases nothing and reports no attempt', async (_what, refusal, fate) => {
  const f = fakePipeline();
  const { job } = f.job();
  f.client.claims.push(refusal);
  expect(await createPipeline(f.deps).process(job)).toEqual(fate);
  expect(f.sandboxes.acquired).toHaveLength(0);
  expect(f.leaser.leases).toHaveLength(0);
  expect(f.reports.finishedReports).toHaveLength(0);
});

test('a sandbox that cannot be made is a retryable attempt failure; no credentials are leased', async () => {
  const f = fakePipeline();
  f.packages.result = verifiedBot({ credentials: ['password'] });
  f.sandboxes.failAcquire = new OrderlyError('ORDERLY_E_SANDBOX_UNAVAILABLE', 'no user namespaces');
  const { job } = f.job(jobPayload(), { credentials: grant });
  const pipeline = createPipeline(f.deps);
  expect(await pipeline.process(job)).toEqual({ kind: 'retry', code: 'ORDERLY_E_SANDBOX_UNAVAILABLE' });
  expect(f.leaser.leases).toHaveLength(0);
  expect(f.reports.errorOf()).toMatchObject({ code: 'ORDERLY_E_SANDBOX_UNAVAILABLE', retryable: true });
  expect(f.reports.finishedReports[0]!.final).toBe(false);
  expect(pipeline.runs.takeSlot()).toBe(0);
});

test('a lease failure destroys the sandbox, frees its slot and runs no bot', async () => {
  const f = fakePipeline();
  f.packages.result = verifiedBot({ credentials: ['password'] });
  f.leaser.failWith = new OrderlyError('ORDERLY_E_VAULT_WRAP_INVALID', 'already unwrapped');
  const { job } = f.job(jobPayload(), { credentials: grant });
  const pipeline = createPipeline(f.deps);
  expect(await pipeline.process(job)).toEqual({ kind: 'drop', code: 'ORDERLY_E_VAULT_WRAP_INVALID' });
  const [sandbox] = f.sandboxes.made;
  expect(sandbox!.requests).toHaveLength(0);
  expect(sandbox!.destroyed).toBe(1);
  expect(pipeline.runs.takeSlot()).toBe(0);
  expect(f.reports.finishedReports[0]).toMatchObject({ final: true, outcome: { ok: false, error: { code: 'ORDERLY_E_VAULT_WRAP_INVALID' } } });
});

test('a lease the control room cannot record is revoked, and the sandbox destroyed', async () => {
  const f = fakePipeline();
  f.packages.result = verifiedBot({ credentials: ['password'] });
  f.client.recordLeaseAnswer = new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', 'down');
  const { job } = f.job(jobPayload(), { credentials: grant });
  expect(await createPipeline(f.deps).process(job)).toEqual({ kind: 'retry', code: 'ORDERLY_E_CONTROL_ROOM_UNAVAILABLE' });
  expect(f.leaser.leases[0]!.released).toBeGreaterThanOrEqual(1);
  expect(f.sandboxes.made[0]!.requests).toHaveLength(0);
  expect(f.sandboxes.made[0]!.destroyed).toBe(1);
});

test("a failed run's last attempt is final; a non-retryable failure drops the job", async () => {
  const f = fakePipeline({ sandboxes: new FakeSandboxPool(fails('ORDERLY_E_BOT_TIMEOUT')) });
  const { job } = f.job(jobPayload(), { final: true, attempt: 3 });
  expect(await createPipeline(f.deps).process(job)).toEqual({ kind: 'retry', code: 'ORDERLY_E_BOT_TIMEOUT' });
  expect(f.reports.finishedReports[0]).toMatchObject({ attempt: 3, final: true });
  const g = fakePipeline({ sandboxes: new FakeSandboxPool(fails('ORDERLY_E_BOT_BUSINESS')) });
  expect(await createPipeline(g.deps).process(g.job().job)).toEqual({ kind: 'drop', code: 'ORDERLY_E_BOT_BUSINESS' });
});

test('a success that could not be reported is reported failed and retried; a failure report that fails is retried too', async () => {
  const f = fakePipeline();
  f.reports.failFinished.push(new Error('redis went away'));
  const { job } = f.job();
  expect(await createPipeline(f.deps).process(job)).toEqual({ kind: 'retry', code: 'ORDERLY_E_INTERNAL' });
  expect(f.reports.finishedReports).toEqual([
    expect.objectContaining({ final: false, outcome: { ok: false, error: expect.objectContaining({ code: 'ORDERLY_E_INTERNAL' }) } }),
  ]);
  const g = fakePipeline({ sandboxes: new FakeSandboxPool(fails('ORDERLY_E_BOT_BUSINESS')) });
  g.reports.failFinished.push(new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', 'down'));
  expect(await createPipeline(g.deps).process(g.job().job)).toEqual({ kind: 'retry', code: 'ORDERLY_E_CONTROL_ROOM_UNAVAILABLE' });
  expect(g.sandboxes.made[0]!.destroyed).toBe(1);
});

test('a refusal that cannot be reported is retried, not lost', async () => {
  const f = fakePipeline();
  f.reports.failRefused = new Error('redis went away');
  expect(await createPipeline(f.deps).process({ id: 'job-x', data: { junk: true } })).toEqual({ kind: 'retry', code: 'ORDERLY_E_INTERNAL' });
});

test('cancellation mid-run aborts the bot and reports the run cancelled; the job is not retried', async () => {
  const f = fakePipeline({ sandboxes: new FakeSandboxPool(runsUntilAborted) });
  const { payload, job } = f.job();
  const pipeline = createPipeline(f.deps);
  const fate = pipeline.process(job);
  await until(() => f.sandboxes.made[0]?.requests.length === 1);
  f.cancellations.cancel(payload.runId);
  expect(await fate).toEqual({ kind: 'drop', code: 'ORDERLY_E_RUN_CANCELLED' });
  expect(f.sandboxes.made[0]!.aborted).toEqual([payload.runId]);
  expect(f.reports.finishedReports[0]).toMatchObject({ final: true, outcome: { ok: false, error: { code: 'ORDERLY_E_RUN_CANCELLED' } } });
});

test('a run cancelled before its bot starts never runs the bot', async () => {
  const f = fakePipeline();
  const { payload, job } = f.job();
  f.cancellations.cancel(payload.runId);
  expect(await createPipeline(f.deps).process(job)).toEqual({ kind: 'drop', code: 'ORDERLY_E_RUN_CANCELLED' });
  expect(f.sandboxes.made[0]!.requests).toHaveLength(0);
  expect(f.sandboxes.made[0]!.destroyed).toBe(1);
});

test('a run that is no longer claimable mid-attempt (cancelled or finished elsewhere) completes unreported', async () => {
  const f = fakePipeline();
  f.packages.result = verifiedBot({ credentials: ['password'] });
  f.client.recordLeaseAnswer = new OrderlyError('ORDERLY_E_RUN_NOT_CLAIMABLE', 'cancelled');
  const { job } = f.job(jobPayload(), { credentials: grant });
  expect(await createPipeline(f.deps).process(job)).toEqual({ kind: 'done', ok: false });
  expect(f.reports.finishedReports).toHaveLength(0);
  expect(f.sandboxes.made[0]!.destroyed).toBe(1);
});

test('the shutdown can abort every active run; the aborted attempt is retried', async () => {
  const f = fakePipeline({ sandboxes: new FakeSandboxPool(runsUntilAborted) });
  const { payload, job } = f.job();
  const pipeline = createPipeline(f.deps);
  const fate = pipeline.process(job);
  await until(() => f.sandboxes.made[0]?.requests.length === 1);
  expect(pipeline.runs.inFlight).toBe(1);
  expect(pipeline.runs.abortAll()).toEqual([payload.runId]);
  expect(await fate).toEqual({ kind: 'retry', code: 'ORDERLY_E_BOT_TIMEOUT' });
  await pipeline.runs.settled();
  expect(pipeline.runs.inFlight).toBe(0);
});

test('secrets and declared PHI are in no error, report, log line or BullMQ reason, whatever the bot puts in its error', async () => {
  const leaky = `could not log in as ${FAKE_MEMBER_ID} with ${FAKE_PASSWORD}`;
  const f = fakePipeline({
    sandboxes: new FakeSandboxPool(async (_request, events) => {
      events.onLine({ at: new Date().toISOString(), level: 'info', source: 'bot', msg: leaky, seq: 0 } as never);
      return { ok: false, error: { code: 'ORDERLY_E_BOT_BUSINESS', message: leaky, retryable: false, details: { why: leaky } } };
    }),
  });
  f.packages.result = verifiedBot({ credentials: ['password'] });
  const { job } = f.job(jobPayload(), { credentials: grant });
  const fate = await createPipeline(f.deps).process(job);
  expect(fate).toEqual({ kind: 'drop', code: 'ORDERLY_E_BOT_BUSINESS' });
  expect(f.reports.errorOf()?.code).toBe('ORDERLY_E_BOT_BUSINESS');
  for (const text of [JSON.stringify(fate), f.reports.text(), f.captured.text()]) {
    expect(text).not.toContain(FAKE_PASSWORD);
    expect(text).not.toContain(FAKE_MEMBER_ID);
  }
});

test('an unexpected failure outside an attempt is retried under a code, never with its message', async () => {
  const f = fakePipeline();
  f.packages.result = (async () => {
    throw new Error(`disk full at /cache/${FAKE_PASSWORD}`);
  }) as never;
  const { job } = f.job();
  const fate = await createPipeline(f.deps).process(job);
  expect(fate).toEqual({ kind: 'retry', code: 'ORDERLY_E_INTERNAL' });
  expect(f.captured.text()).not.toContain(FAKE_PASSWORD);
  expect(f.client.calls).toHaveLength(0);
});

test('two slots run two jobs side by side, each in a sandbox of its own', async () => {
  const f = fakePipeline({ sandboxes: new FakeSandboxPool(runsUntilAborted, 2) });
  const pipeline = createPipeline(f.deps);
  const a = jobPayload();
  const b = jobPayload();
  f.client.claims.push(claimFor(a), claimFor(b));
  const fates = [pipeline.process(queueJob(a, f.keys.privateKey)), pipeline.process(queueJob(b, f.keys.privateKey))];
  await until(() => f.sandboxes.made.length === 2 && f.sandboxes.made.every((s) => s.requests.length === 1));
  expect(new Set(f.sandboxes.acquired)).toEqual(new Set([0, 1]));
  pipeline.runs.abortAll();
  await Promise.all(fates);
  expect(f.sandboxes.made.map((s) => s.requests[0]!.runId).sort()).toEqual([a.runId, b.runId].sort());
});

test('a claim that succeeds ends with its bot run once; the control room asked nothing twice', async () => {
  const f = fakePipeline({ sandboxes: new FakeSandboxPool(succeeds()) });
  const { job } = f.job();
  await createPipeline(f.deps).process(job);
  expect(f.client.ops()).toEqual(['claim']);
  expect(f.sandboxes.made.flatMap((s) => s.requests)).toHaveLength(1);
});
