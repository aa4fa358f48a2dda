import { DelayedError, UnrecoverableError } from 'bullmq';
import { applyFate } from './worker';

describe("the pipeline's fate, carried out with BullMQ's means", () => {
  const job = () => ({ moveToDelayed: jest.fn(async () => undefined) });

  test('done completes the job with its result', async () => {
    await expect(applyFate(job(), 't', { kind: 'done', ok: false })).resolves.toEqual({ ok: false });
  });

  test('delay moves the job back for the time, under its lock token, without spending an attempt', async () => {
    const j = job();
    const before = Date.now();
    await expect(applyFate(j, 'tok', { kind: 'delay', ms: 5000 })).rejects.toBeInstanceOf(DelayedError);
    const [[at, token]] = j.moveToDelayed.mock.calls as unknown as [[number, string]];
    expect(token).toBe('tok');
    expect(at).toBeGreaterThanOrEqual(before + 5000);
    expect(at).toBeLessThan(before + 6000);
  });

  test('drop fails the job for good and retry fails it for BullMQ to retry, each under the code alone', async () => {
    const dropped = await applyFate(job(), 't', { kind: 'drop', code: 'ORDERLY_E_RUN_CANCELLED' }).catch((e: unknown) => e);
    expect(dropped).toBeInstanceOf(UnrecoverableError);
    expect((dropped as Error).message).toBe('ORDERLY_E_RUN_CANCELLED');
    const retried = await applyFate(job(), 't', { kind: 'retry', code: 'ORDERLY_E_BOT_TIMEOUT' }).catch((e: unknown) => e);
    expect(retried).not.toBeInstanceOf(UnrecoverableError);
    expect((retried as Error).message).toBe('ORDERLY_E_BOT_TIMEOUT');
  });
});
