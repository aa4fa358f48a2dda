import { OrderlyError } from '@orderly/shared';
import { capturedLogger } from '../../../test/fakes/pipeline';
import { ActiveRuns } from './active-runs';
import { ABORT_WAIT_MS, drainRuns, quitRedis, RunnerParts, runnerShutdown, runShutdown, WORKER_CLOSE_AFTER_GRACE_MS } from './shutdown';

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

const never = () => new Promise<void>(() => undefined);

/** The runner's parts, each recording when it was closed; `override` makes one throw or hang. */
function fakeParts(override: Partial<Record<string, () => Promise<unknown> | void>> = {}, graceMs = 1000) {
  const order: string[] = [];
  const part =
    (name: string, fallback: () => Promise<unknown> | void = async () => undefined) =>
    () => {
      order.push(name);
      return (override[name] ?? fallback)();
    };
  const disconnect = jest.fn();
  const captured = capturedLogger();
  const parts: RunnerParts = {
    worker: { stopTaking: part('stopTaking') as () => void, drain: part('drain') as () => Promise<void>, closed: part('closed') as () => Promise<void> },
    sandboxes: { close: part('sandboxes') as () => Promise<void> },
    cancellations: { close: part('cancellations') as () => Promise<void> },
    reports: { close: part('reports') as () => Promise<void> },
    redis: { quit: part('quit', async () => 'OK') as () => Promise<unknown>, disconnect },
    graceMs,
    log: captured.log,
  };
  return { parts, order, disconnect, captured };
}

const ALL = ['stopTaking', 'drain', 'closed', 'sandboxes', 'cancellations', 'reports', 'quit'];

describe('the runner close()', () => {
  test('closes every part once, in order, and a second call returns the same promise', async () => {
    const { parts, order, disconnect } = fakeParts();
    const close = runnerShutdown(parts);
    const first = close();
    expect(close()).toBe(first);
    await first;
    expect(close()).toBe(first);
    expect(order).toEqual(ALL);
    expect(disconnect).not.toHaveBeenCalled();
  });

  test('a step that throws does not skip the next ones; close rejects after all of them, naming it', async () => {
    const { parts, order } = fakeParts({
      drain: async () => {
        throw new OrderlyError('ORDERLY_E_INTERNAL', 'drain broke');
      },
      sandboxes: () => {
        throw new Error('sync throw');
      },
    });
    await expect(runnerShutdown(parts)()).rejects.toThrow(/finish or abort runs, close sandboxes and their egress proxies/);
    expect(order).toEqual(ALL);
  });

  test('a step that hangs is left behind at its bound: the worker gets grace + 10 s from the start, Redis 2 s', async () => {
    const graceMs = 1000;
    const { parts, order, disconnect, captured } = fakeParts({ closed: never, cancellations: never, quit: never }, graceMs);
    const settled = jest.fn();
    const closing = runnerShutdown(parts)().then(settled, (err: unknown) => settled(err));
    await jest.advanceTimersByTimeAsync(graceMs + WORKER_CLOSE_AFTER_GRACE_MS - 1);
    expect(order).toEqual(['stopTaking', 'drain', 'closed']);
    await jest.advanceTimersByTimeAsync(1);
    expect(order).toEqual(['stopTaking', 'drain', 'closed', 'sandboxes', 'cancellations']);
    await jest.advanceTimersByTimeAsync(2000);
    expect(order).toEqual(ALL);
    expect(disconnect).not.toHaveBeenCalled();
    await jest.advanceTimersByTimeAsync(2000);
    expect(disconnect).toHaveBeenCalledTimes(1); // Redis did not quit in time: dropped
    await closing;
    expect(settled).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'ORDERLY_E_INTERNAL', message: expect.stringMatching(/close worker, stop listening for cancels$/) }),
    );
    expect(captured.text()).toContain('"step":"close worker"');
  });

  test('a drain that overruns its own bound still leaves the worker only what is left of grace + 10 s', async () => {
    const graceMs = 1000;
    const { parts, order } = fakeParts({ drain: never, closed: never }, graceMs);
    const closing = runnerShutdown(parts)().catch(() => undefined);
    await jest.advanceTimersByTimeAsync(graceMs + ABORT_WAIT_MS);
    expect(order).toEqual(['stopTaking', 'drain', 'closed']);
    await jest.advanceTimersByTimeAsync(WORKER_CLOSE_AFTER_GRACE_MS - ABORT_WAIT_MS);
    expect(order.slice(3, 4)).toEqual(['sandboxes']);
    await jest.advanceTimersByTimeAsync(10_000);
    await closing;
    expect(order).toEqual(ALL);
  });
});

describe('runShutdown', () => {
  test('runs a step after one that throws synchronously and one that never ends', async () => {
    const ran: string[] = [];
    const { log } = capturedLogger();
    const outcome = runShutdown(
      [
        { name: 'a', run: () => ran.push('a'), boundMs: 100 },
        {
          name: 'b',
          run: () => {
            ran.push('b');
            throw new Error('b broke');
          },
          boundMs: 100,
        },
        { name: 'c', run: () => (ran.push('c'), never()), boundMs: 100 },
        { name: 'd', run: () => ran.push('d'), boundMs: () => -5 },
      ],
      log,
    );
    await jest.advanceTimersByTimeAsync(100);
    await expect(outcome).resolves.toEqual({ failed: ['b'], overran: ['c'] });
    expect(ran).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('drainRuns', () => {
  function runWithAbort(runs: ActiveRuns, runId: string) {
    let end!: () => void;
    const job = runs.track(new Promise<void>((resolve) => (end = resolve)));
    const abort = jest.fn(() => end());
    runs.add(runId, { abort, run: never as never, destroy: async () => undefined });
    return { job, abort, end };
  }

  test('runs that end within the grace are not aborted', async () => {
    const runs = new ActiveRuns(1);
    const { abort, end } = runWithAbort(runs, 'run-1');
    const drained = drainRuns(runs, 1000, capturedLogger().log);
    await jest.advanceTimersByTimeAsync(500);
    end();
    await drained;
    expect(abort).not.toHaveBeenCalled();
  });

  test('past the grace the active runs are aborted, and waited for', async () => {
    const runs = new ActiveRuns(1);
    const { abort } = runWithAbort(runs, 'run-1');
    const done = jest.fn();
    void drainRuns(runs, 1000, capturedLogger().log).then(done);
    await jest.advanceTimersByTimeAsync(999);
    expect(abort).not.toHaveBeenCalled();
    await jest.advanceTimersByTimeAsync(1);
    expect(abort).toHaveBeenCalledWith('run-1');
    await jest.advanceTimersByTimeAsync(0);
    expect(done).toHaveBeenCalled();
    expect(runs.inFlight).toBe(0);
  });
});

describe('quitRedis', () => {
  test('a quit that answers is enough; one that does not within the bound is a disconnect', async () => {
    const polite = { quit: jest.fn(async () => 'OK'), disconnect: jest.fn() };
    await quitRedis(polite, 2000);
    expect(polite.disconnect).not.toHaveBeenCalled();
    const stuck = { quit: jest.fn(never), disconnect: jest.fn() };
    const quitting = quitRedis(stuck, 2000);
    await jest.advanceTimersByTimeAsync(2000);
    await quitting;
    expect(stuck.disconnect).toHaveBeenCalledTimes(1);
    const refused = { quit: jest.fn(async () => Promise.reject(new Error('closed'))), disconnect: jest.fn() };
    await quitRedis(refused, 2000);
    expect(refused.disconnect).toHaveBeenCalledTimes(1);
  });
});
