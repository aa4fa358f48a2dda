import { createLogger, OrderlyError } from '@orderly/shared';
import { completeDurably } from './step-completion';

const log = createLogger({ level: 'silent', name: 'test' });
const options = (deadlineInMs: number) => ({ deadline: Date.now() + deadlineInMs, log, step: 'submit', firstDelayMs: 10, maxDelayMs: 40 });

describe('step completions survive an outage', () => {
  test('a completion that fails for a transient reason is sent again until it is recorded', async () => {
    let tries = 0;
    await completeDurably(async () => {
      if (++tries < 4) throw new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', 'unreachable');
    }, options(5000));
    expect(tries).toBe(4);
  });

  test('a refusal is not retried: repeating it cannot succeed', async () => {
    let tries = 0;
    const stale = () =>
      completeDurably(async () => {
        tries++;
        throw new OrderlyError('ORDERLY_E_ATTEMPT_STALE', 'replaced');
      }, options(5000));
    await expect(stale()).rejects.toMatchObject({ code: 'ORDERLY_E_ATTEMPT_STALE' });
    expect(tries).toBe(1);
  });

  test("past the run's time the last error is thrown (the step stays uncertain)", async () => {
    let tries = 0;
    const started = Date.now();
    const down = () =>
      completeDurably(async () => {
        tries++;
        throw new OrderlyError('ORDERLY_E_CONTROL_ROOM_UNAVAILABLE', 'unreachable');
      }, options(200));
    await expect(down()).rejects.toMatchObject({ code: 'ORDERLY_E_CONTROL_ROOM_UNAVAILABLE' });
    expect(tries).toBeGreaterThan(2);
    expect(Date.now() - started).toBeLessThan(2000); // gave up near the deadline, not after it
  });
});
