import { boundedCheck, checkReadiness } from './readiness';

describe('readiness checks', () => {
  test('a check that resolves is ok; one that rejects or throws is down', async () => {
    await expect(boundedCheck(() => Promise.resolve('PONG'))).resolves.toBe('ok');
    await expect(boundedCheck(() => Promise.reject(new Error('ECONNREFUSED')))).resolves.toBe('down');
    await expect(
      boundedCheck(() => {
        throw new Error('synchronous');
      }),
    ).resolves.toBe('down');
  });

  test('a check that never answers is down once its bound has passed, not later', async () => {
    const started = Date.now();
    await expect(boundedCheck(() => new Promise(() => undefined), 100)).resolves.toBe('down');
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(95);
    expect(took).toBeLessThan(1000);
  });

  test('checks run in parallel, each bounded: one hung dependency does not delay the answer past one bound', async () => {
    const started = Date.now();
    const readiness = await checkReadiness({ database: () => new Promise(() => undefined), redis: () => Promise.resolve('PONG') }, 200);
    expect(readiness).toEqual({ ready: false, checks: { database: 'down', redis: 'ok' } });
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(checkReadiness({ database: () => Promise.resolve(1), redis: () => Promise.resolve('PONG') }, 200)).resolves.toEqual({
      ready: true,
      checks: { database: 'ok', redis: 'ok' },
    });
  });
});
