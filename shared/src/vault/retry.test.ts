import { backoffDelay, withRetry, type RetryClock, type RetryPolicy, type VaultRetryEvent } from './retry';

/** A virtual clock: sleeping advances time instantly, so the backoff schedule is exact and fast. */
function fakeClock(start = 1_000_000): RetryClock & { slept: number[] } {
  let now = start;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
    random: () => 0.5,
  };
}

const policy: RetryPolicy = { baseDelayMs: 100, maxDelayMs: 1_000, requestTimeoutMs: 500 };
const apiError = (statusCode: number, errors: string[] = []): Error =>
  Object.assign(new Error(errors[0] ?? `Status ${statusCode}`), { response: { statusCode, body: { errors } } });
const netError = (code: string): Error => Object.assign(new Error(code), { code });

describe('backoffDelay', () => {
  it('doubles up to the cap and keeps at least half of it (equal jitter)', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy, 0))).toEqual([50, 100, 200, 400, 500, 500]);
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy, 0.999999))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
});

describe('withRetry', () => {
  const run = (idempotent: boolean, deadline: number) => ({ operation: 'kv read', path: 'secret/data/x', idempotent, deadline });

  it('retries 429, 503 (not sealed) and refused connections until one succeeds', async () => {
    const clock = fakeClock();
    const failures = [apiError(429), apiError(503, ['Vault is down for maintenance']), netError('ECONNREFUSED')];
    const events: VaultRetryEvent[] = [];
    const result = await withRetry(
      run(false, clock.now() + 10_000),
      policy,
      clock,
      async () => {
        const next = failures.shift();
        if (next) throw next;
        return 'ok';
      },
      (e) => events.push(e),
    );
    expect(result).toBe('ok');
    expect(events.map((e) => [e.attempt, e.reason, e.delayMs])).toEqual([
      [1, 'status 429', 75],
      [2, 'status 503', 150],
      [3, 'ECONNREFUSED', 300],
    ]);
    expect(clock.slept).toEqual([75, 150, 300]);
  });

  it('gives up with ORDERLY_E_VAULT_UNAVAILABLE when the next delay would pass the deadline', async () => {
    const clock = fakeClock();
    const start = clock.now();
    let attempts = 0;
    const error = await withRetry(run(true, start + 2_000), policy, clock, async () => {
      attempts += 1;
      throw netError('ECONNREFUSED');
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ORDERLY_E_VAULT_UNAVAILABLE', details: { attempts, path: 'secret/data/x', network: 'ECONNREFUSED' } });
    // Sleeps of 75, 150, 300, 600 and 750 ms (1875 in all); the next 750 would end past the deadline.
    expect(attempts).toBe(6);
    expect(clock.slept).toEqual([75, 150, 300, 600, 750]);
    expect(clock.now() - start).toBeLessThanOrEqual(2_000);
  });

  it('cuts each attempt timeout to the time left', async () => {
    const clock = fakeClock();
    const timeouts: number[] = [];
    await withRetry(run(true, clock.now() + 620), policy, clock, async (timeoutMs) => {
      timeouts.push(timeoutMs);
      if (timeouts.length < 3) throw netError('ECONNABORTED');
      return 1;
    });
    // 620 left → 500 (cap); after 75 ms sleep → 500 (545 left); after 150 ms → 395 left.
    expect(timeouts).toEqual([500, 500, 395]);
  });

  it('retries ambiguous failures (timeout, 500) only for idempotent operations', async () => {
    const clock = fakeClock();
    let calls = 0;
    const flaky = async (): Promise<string> => {
      calls += 1;
      if (calls === 1) throw apiError(500, ['internal error']);
      return 'done';
    };
    await expect(withRetry(run(true, clock.now() + 5_000), policy, clock, flaky)).resolves.toBe('done');
    calls = 0;
    const error = await withRetry({ ...run(false, clock.now() + 5_000), operation: 'wrapping unwrap' }, policy, clock, flaky).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect(error).toMatchObject({ code: 'ORDERLY_E_VAULT_UNAVAILABLE', message: expect.stringMatching(/not idempotent/) });
  });

  it.each([
    [apiError(503, ['Vault is sealed']), 'ORDERLY_E_VAULT_SEALED'],
    [apiError(403, ['permission denied']), 'ORDERLY_E_VAULT_PERMISSION_DENIED'],
    [apiError(400, ['wrapping token is not valid or does not exist']), 'ORDERLY_E_VAULT_WRAP_INVALID'],
    [apiError(400, ['check-and-set parameter did not match the current version']), 'ORDERLY_E_CREDENTIAL_CAS_CONFLICT'],
    [apiError(400, ['invalid role or secret ID']), 'ORDERLY_E_VAULT_PERMISSION_DENIED'],
    [apiError(400, ['no data provided']), 'ORDERLY_E_VAULT_ERROR'],
    [new TypeError('boom'), 'ORDERLY_E_VAULT_ERROR'],
  ])('does not retry %p and maps it to %s', async (failure, code) => {
    const clock = fakeClock();
    let calls = 0;
    const error = await withRetry(run(true, clock.now() + 5_000), policy, clock, async () => {
      calls += 1;
      throw failure;
    }).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect(error).toMatchObject({ code, details: { attempts: 1 } });
    expect(clock.slept).toEqual([]);
  });

  it('fails at once when the deadline has already passed', async () => {
    const clock = fakeClock();
    let calls = 0;
    await expect(
      withRetry(run(true, clock.now()), policy, clock, async () => {
        calls += 1;
        return 1;
      }),
    ).rejects.toMatchObject({ code: 'ORDERLY_E_VAULT_UNAVAILABLE' });
    expect(calls).toBe(0);
  });
});
