import { startLedger } from './faults';
import { earliestSafeStep } from './harness';

/** The test harness's own tools: a flaky or hanging tool would make every suite that uses it so. */
describe('the TOTP step the harness takes a code at', () => {
  const STEP = 1000; // an arbitrary 30-second step
  const at = (secondsIntoStep: number) => (STEP * 30 + secondsIntoStep) * 1000;

  test('the previous step only while at least 15 s of the current one are left', () => {
    expect(earliestSafeStep(at(0))).toBe(STEP - 1);
    expect(earliestSafeStep(at(15))).toBe(STEP - 1);
  });

  test('the current step near the end of a step, so the code is not too old when it arrives', () => {
    expect(earliestSafeStep(at(15.001))).toBe(STEP);
    expect(earliestSafeStep(at(29.999))).toBe(STEP);
  });
});

describe("the fault ledger's hold", () => {
  test('a hold never reached fails loudly after its bound instead of hanging', async () => {
    const ledger = await startLedger();
    try {
      const hold = ledger.holdNext('never-reached', '/record', 100);
      await expect(hold.arrived).rejects.toThrow(/no request came within 100 ms/);
      // The hold is gone: the key's next request is answered at once.
      expect((await fetch(`${ledger.url}/record?key=never-reached`)).status).toBe(200);
    } finally {
      await ledger.close();
    }
  });

  test('an answer held and never released is answered 503 after its bound; a released one 200', async () => {
    const ledger = await startLedger();
    try {
      const forgotten = ledger.holdNext('forgotten', '/record', 100);
      const answer = fetch(`${ledger.url}/record?key=forgotten`);
      await forgotten.arrived;
      expect((await answer).status).toBe(503);
      expect(ledger.counts()).toEqual({ forgotten: 1 }); // the side effect happened on arrival

      const released = ledger.holdNext('released', '/after', 5000);
      const later = fetch(`${ledger.url}/after?key=released`);
      await released.arrived;
      released.release();
      expect((await later).status).toBe(200);
    } finally {
      await ledger.close();
    }
  });
});
