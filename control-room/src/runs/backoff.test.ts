import { backoffDelayMs, decideClaim, RUN_BACKOFF } from './backoff';

describe('attempt accounting at claim', () => {
  test('a fresh run starts attempt 1; the last allowed attempt is final', () => {
    expect(decideClaim({ attempts: 0, maxAttempts: 3, latestUnfinished: false })).toEqual({ kind: 'start', attempt: 1, final: false });
    expect(decideClaim({ attempts: 2, maxAttempts: 3, latestUnfinished: false })).toEqual({ kind: 'start', attempt: 3, final: true });
    expect(decideClaim({ attempts: 0, maxAttempts: 1, latestUnfinished: false })).toEqual({ kind: 'start', attempt: 1, final: true });
  });

  test('a redelivery after a crash never reuses the dead attempt: it is recorded lost and the claim defers', () => {
    expect(decideClaim({ attempts: 1, maxAttempts: 3, latestUnfinished: true })).toEqual({ kind: 'defer', lostAttempt: 1 });
    expect(decideClaim({ attempts: 2, maxAttempts: 3, latestUnfinished: true })).toEqual({ kind: 'defer', lostAttempt: 2 });
  });

  test('crashes count against the attempts: losing the last one dead-letters the run instead of looping', () => {
    expect(decideClaim({ attempts: 3, maxAttempts: 3, latestUnfinished: true })).toEqual({ kind: 'exhausted', lostAttempt: 3 });
    expect(decideClaim({ attempts: 1, maxAttempts: 1, latestUnfinished: true })).toEqual({ kind: 'exhausted', lostAttempt: 1 });
  });

  test('a crash loop ends: every sequence of claims with no report ends exhausted within maxAttempts attempts', () => {
    for (const maxAttempts of [1, 2, 3, 5]) {
      let attempts = 0;
      let latestUnfinished = false;
      const started: number[] = [];
      for (let claims = 0; claims < 100; claims++) {
        const d = decideClaim({ attempts, maxAttempts, latestUnfinished });
        if (d.kind === 'exhausted') break;
        if (d.kind === 'defer') latestUnfinished = false; // recorded lost
        if (d.kind === 'start') {
          started.push(d.attempt);
          attempts = d.attempt;
          latestUnfinished = true; // the runner dies again
        }
        if (d.kind === 'spent') throw new Error('unreachable in a crash loop');
      }
      expect(started).toEqual(Array.from({ length: maxAttempts }, (_, i) => i + 1));
    }
  });

  test('an unfinished attempt whose lease is alive is busy, never lost: the claim changes nothing and says when to ask again', () => {
    expect(decideClaim({ attempts: 1, maxAttempts: 3, latestUnfinished: true, leaseRemainingMs: 2500.4 })).toEqual({
      kind: 'busy',
      activeAttempt: 1,
      retryInMs: 2501,
    });
    // Even the last attempt: a live lease is not a lost attempt, so it does not dead-letter the run.
    expect(decideClaim({ attempts: 3, maxAttempts: 3, latestUnfinished: true, leaseRemainingMs: 10 })).toEqual({
      kind: 'busy',
      activeAttempt: 3,
      retryInMs: 10,
    });
    // An expired lease (or none: rows from before leases) keeps the lost-attempt path.
    expect(decideClaim({ attempts: 1, maxAttempts: 3, latestUnfinished: true, leaseRemainingMs: -5 })).toEqual({ kind: 'defer', lostAttempt: 1 });
    expect(decideClaim({ attempts: 3, maxAttempts: 3, latestUnfinished: true, leaseRemainingMs: 0 })).toEqual({ kind: 'exhausted', lostAttempt: 3 });
    // A finished attempt's lease does not matter: the next attempt starts.
    expect(decideClaim({ attempts: 1, maxAttempts: 3, latestUnfinished: false, leaseRemainingMs: 5000 })).toEqual({ kind: 'start', attempt: 2, final: false });
  });

  test('with every attempt finished and none left, nothing runs (the final report is on its way)', () => {
    expect(decideClaim({ attempts: 3, maxAttempts: 3, latestUnfinished: false })).toEqual({ kind: 'spent' });
  });
});

describe('backoff with jitter', () => {
  test('exponential from the base delay, within [max·(1-jitter), max)', () => {
    for (const n of [1, 2, 3, 4]) {
      const max = RUN_BACKOFF.delay * 2 ** (n - 1);
      expect(backoffDelayMs(n, () => 0)).toBe(max * (1 - RUN_BACKOFF.jitter));
      expect(backoffDelayMs(n, () => 0.999999)).toBeLessThan(max);
      expect(backoffDelayMs(n, () => 0.999999)).toBeGreaterThan(max * 0.99);
    }
  });

  test('jitter spreads retries of simultaneous failures', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelayMs(2)));
    expect(delays.size).toBeGreaterThan(10);
  });
});
