import { createLogger, OrderlyError } from '@orderly/shared';
import { keepAttemptLease, refusedClaimDelayMs } from './attempt-lease';

const log = createLogger({ level: 'silent', name: 'test' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the attempt lease on the runner side', () => {
  test('renews every third of the lease with the attempt and its fencing token, and stops when told', async () => {
    const calls: unknown[] = [];
    const lease = keepAttemptLease({
      client: { renew: async (...args) => (calls.push(args), { leaseMs: 300 }) },
      runId: 'r1',
      attempt: 2,
      fence: 'f'.repeat(24),
      leaseMs: 300,
      log,
      onLost: () => undefined,
    });
    await sleep(350);
    lease.stop();
    const seen = calls.length;
    expect(seen).toBeGreaterThanOrEqual(2);
    expect(calls[0]).toEqual(['r1', 2, 'f'.repeat(24)]);
    await sleep(250);
    expect(calls.length).toBe(seen);
  });

  test('an outage does not stop renewals; a stale attempt stops them and the bot, once', async () => {
    let n = 0;
    const lost: string[] = [];
    const renew = async () => {
      n++;
      if (n === 1) throw new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', 'down');
      if (n >= 3) throw new OrderlyError('ORDERLY_E_ATTEMPT_STALE', 'replaced');
      return { leaseMs: 300 };
    };
    const lease = keepAttemptLease({ client: { renew }, runId: 'r1', attempt: 1, fence: 'f'.repeat(24), leaseMs: 300, log, onLost: (code) => lost.push(code) });
    await sleep(600);
    expect(n).toBe(3);
    expect(lost).toEqual(['ORDERLY_E_ATTEMPT_STALE']);
    lease.stop();
  });

  test('a refused duplicate claim waits until the live lease would expire, within bounds', () => {
    const refusal = (retryInMs?: number) => new OrderlyError('ORDERLY_E_RUN_ALREADY_ACTIVE', 'busy', retryInMs === undefined ? {} : { retryInMs });
    expect(refusedClaimDelayMs(refusal(3000), 30_000, () => 0)).toBe(3100);
    expect(refusedClaimDelayMs(refusal(3000), 30_000, () => 0.99)).toBeLessThan(3000 + 100 + 300);
    expect(refusedClaimDelayMs(refusal(), 30_000, () => 0)).toBe(30_100);
    expect(refusedClaimDelayMs(refusal(1), 30_000, () => 0)).toBe(500);
    expect(refusedClaimDelayMs(refusal(10 ** 9), 30_000, () => 0)).toBe(600_000);
  });
});
