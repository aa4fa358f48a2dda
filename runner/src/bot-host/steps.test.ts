import { StepBeginResponse } from '@orderly/shared';
import type { StepCall } from './protocol';
import { createStepRunner, StepError } from './steps';

/** An in-memory stand-in for the control room's step routes, for one attempt. */
function fakeSteps(initial: Record<string, { state: 'done'; result?: unknown } | { state: 'started' }> = {}) {
  const steps = new Map(Object.entries(initial));
  const calls: StepCall[] = [];
  const rpc = async (call: StepCall): Promise<StepBeginResponse | { state: 'recorded' }> => {
    calls.push(call);
    const row = steps.get(call.name);
    if (call.op === 'complete') {
      steps.set(call.name, { state: 'done', ...(call.result === undefined ? {} : { result: call.result }) });
      return { state: 'recorded' };
    }
    if (!row) {
      steps.set(call.name, { state: 'started' });
      return { state: 'new' };
    }
    if (row.state === 'done') return row;
    if (call.rerun) return { state: 'new' };
    return { state: 'uncertain' };
  };
  return { rpc, calls, steps };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof StepError)) throw new Error(`expected a StepError, got ${String(err)}`);
  return err.body.code;
}

test('a new step runs once and records its JSON result', async () => {
  const fake = fakeSteps();
  const step = createStepRunner(fake.rpc);
  let runs = 0;
  const value = await step('submit-claim', async () => ({ ref: `CLM-${++runs}`, at: new Date(0) }));
  expect(runs).toBe(1);
  // The recorded JSON form, the same a later attempt gets back.
  expect(value).toEqual({ ref: 'CLM-1', at: '1970-01-01T00:00:00.000Z' });
  expect(fake.steps.get('submit-claim')).toEqual({ state: 'done', result: value });
});

test('a recorded step is skipped and returns the recorded result', async () => {
  const fake = fakeSteps({ 'submit-claim': { state: 'done', result: { ref: 'CLM-7' } } });
  const fn = jest.fn(async () => ({ ref: 'again' }));
  expect(await createStepRunner(fake.rpc)('submit-claim', fn)).toEqual({ ref: 'CLM-7' });
  expect(fn).not.toHaveBeenCalled();
  expect(fake.calls).toEqual([{ op: 'begin', name: 'submit-claim', rerun: false }]);
});

test('an uncertain step without a policy throws ORDERLY_E_STEP_UNCERTAIN and is not re-run', async () => {
  const fake = fakeSteps({ 'submit-claim': { state: 'started' } });
  const fn = jest.fn(async () => 1);
  const err = await createStepRunner(fake.rpc)('submit-claim', fn).catch((e: StepError) => e);
  expect(err).toBeInstanceOf(StepError);
  expect((err as StepError).body).toMatchObject({ code: 'ORDERLY_E_STEP_UNCERTAIN', retryable: false });
  expect(fn).not.toHaveBeenCalled();
});

test("onUncertain 'rerun' takes the step over and runs it again", async () => {
  const fake = fakeSteps({ 'submit-claim': { state: 'started' } });
  const value = await createStepRunner(fake.rpc)('submit-claim', async () => 'again', { onUncertain: 'rerun' });
  expect(value).toBe('again');
  expect(fake.calls.map((c) => (c.op === 'begin' ? `begin:${c.rerun}` : 'complete'))).toEqual(['begin:false', 'begin:true', 'complete']);
});

test('onUncertain verify: true records it done without running it; false runs it again', async () => {
  const yes = fakeSteps({ s: { state: 'started' } });
  const fnYes = jest.fn(async () => 'ran');
  expect(await createStepRunner(yes.rpc)('s', fnYes, { onUncertain: { verify: async () => true } })).toBeUndefined();
  expect(fnYes).not.toHaveBeenCalled();
  expect(yes.steps.get('s')).toEqual({ state: 'done' });

  const no = fakeSteps({ s: { state: 'started' } });
  expect(await createStepRunner(no.rpc)('s', async () => 'ran', { onUncertain: { verify: async () => false } })).toBe('ran');
  expect(no.steps.get('s')).toEqual({ state: 'done', result: 'ran' });
});

test('names are validated, used once per attempt, and results must be small JSON', async () => {
  const step = createStepRunner(fakeSteps().rpc);
  expect(await codeOf(step('', async () => 1))).toBe('ORDERLY_E_STEP_INVALID');
  expect(await codeOf(step('has space', async () => 1))).toBe('ORDERLY_E_STEP_INVALID');
  expect(await codeOf(step('x'.repeat(101), async () => 1))).toBe('ORDERLY_E_STEP_INVALID');
  await step('once', async () => 1);
  expect(await codeOf(step('once', async () => 1))).toBe('ORDERLY_E_STEP_INVALID');
  expect(await codeOf(step('big', async () => 'x'.repeat(70 * 1024)))).toBe('ORDERLY_E_STEP_INVALID');
  expect(await codeOf(step('bigint', async () => 1n))).toBe('ORDERLY_E_STEP_INVALID');
});

test('a failed control-room call stops the step before its side effect', async () => {
  const fn = jest.fn(async () => 1);
  const step = createStepRunner(async () => {
    throw new StepError({ code: 'ORDERLY_E_ATTEMPT_STALE', message: 'replaced', retryable: false, details: {} });
  });
  expect(await codeOf(step('s', fn))).toBe('ORDERLY_E_ATTEMPT_STALE');
  expect(fn).not.toHaveBeenCalled();
});
