import { OrderlyError } from '@orderly/shared';
import { SandboxPool } from './pool';
import type { Sandbox } from './sandbox';

/** A fake sandbox: only what the pool looks at. */
function fakeSandbox(id: number) {
  const fake = { id, ready: true, destroyed: false, destroy: async () => void (fake.destroyed = true) };
  return fake;
}

function pool(options: { prewarm: boolean; fail?: (n: number) => boolean; size?: number }) {
  const made: ReturnType<typeof fakeSandbox>[] = [];
  let launches = 0;
  const launch = async (_slot: number) => {
    const n = ++launches;
    if (options.fail?.(n)) throw new OrderlyError('ORDERLY_E_SANDBOX_UNAVAILABLE', 'no sandbox');
    const s = fakeSandbox(n);
    made.push(s);
    return s as unknown as Sandbox;
  };
  return { made, pool: new SandboxPool(launch, options.size ?? 1, options.prewarm) };
}

test('every run gets a sandbox no run had before, and the next one is warmed while it runs', async () => {
  const { made, pool: p } = pool({ prewarm: true });
  await p.start();
  const first = (await p.acquire(0)) as unknown as { id: number };
  expect(first.id).toBe(1);
  expect(made).toHaveLength(2); // the next one is already starting
  const second = (await p.acquire(0)) as unknown as { id: number };
  expect(second.id).toBe(2);
  expect(new Set([first, second]).size).toBe(2);
  await p.close();
  expect(made[2]!.destroyed).toBe(true); // the one warmed for a third run
});

test('a warmed sandbox that died while waiting is replaced, not handed out', async () => {
  const { made, pool: p } = pool({ prewarm: true });
  await p.start();
  made[0]!.ready = false;
  const got = (await p.acquire(0)) as unknown as { id: number };
  expect(got.id).toBe(2);
  expect(made[0]!.destroyed).toBe(true);
  await p.close();
});

test('a host that cannot make a sandbox fails at start; a failed warm-up is retried for the run, and its error is coded', async () => {
  await expect(pool({ prewarm: true, fail: () => true }).pool.start()).rejects.toMatchObject({ code: 'ORDERLY_E_SANDBOX_UNAVAILABLE' });
  const { pool: p } = pool({ prewarm: true, fail: (n) => n === 2 });
  await p.start();
  await p.acquire(0); // sandbox 1; warming sandbox 2 fails
  expect(((await p.acquire(0)) as unknown as { id: number }).id).toBe(3); // launched afresh for the run
  await p.close();
  await expect(p.acquire(0)).rejects.toMatchObject({ code: 'ORDERLY_E_SANDBOX_UNAVAILABLE' });
});

test('without pre-warming, nothing waits between runs', async () => {
  const { made, pool: p } = pool({ prewarm: false, size: 2 });
  await p.start();
  expect(made.every((s) => s.destroyed)).toBe(true); // the start check's sandboxes are not kept
  await p.acquire(1);
  expect(made).toHaveLength(3);
  await p.close();
});

test('closing destroys the sandboxes still in use too (a run that outlived the shutdown), and waiting ones', async () => {
  const { made, pool: p } = pool({ prewarm: true, size: 2 });
  await p.start();
  await p.acquire(0);
  await p.acquire(1);
  expect(made.filter((s) => s.destroyed)).toHaveLength(0);
  await p.close();
  expect(made).toHaveLength(4); // two in use, two warmed for the next runs
  expect(made.every((s) => s.destroyed)).toBe(true);
  await p.close(); // idempotent
});

test('a run that takes a warming sandbox tells its slot to stop yielding the CPU; a cold start has nothing to hurry', async () => {
  const hurried: number[] = [];
  let launches = 0;
  const launch = async () => fakeSandbox(++launches) as unknown as Sandbox;
  const warm = new SandboxPool(launch, 2, true, (slot) => hurried.push(slot));
  await warm.start();
  await warm.acquire(1);
  expect(hurried).toEqual([1]);
  await warm.close();

  const cold = new SandboxPool(launch, 1, false, (slot) => hurried.push(slot));
  await cold.start();
  await cold.acquire(0);
  expect(hurried).toEqual([1]);
  await cold.close();
});

test('closing ends a sandbox still warming up instead of waiting for its start', async () => {
  let launches = 0;
  const endedWhileStarting: number[] = [];
  // The first start completes; every later one hangs until the pool aborts it (a slow Chromium).
  const launch = (_slot: number, signal: AbortSignal) => {
    const n = ++launches;
    if (n === 1) return Promise.resolve(fakeSandbox(n) as unknown as Sandbox);
    return new Promise<Sandbox>((_resolve, reject) => {
      signal.addEventListener('abort', () => {
        endedWhileStarting.push(n);
        reject(new OrderlyError('ORDERLY_E_SANDBOX_UNAVAILABLE', 'ended while starting'));
      });
    });
  };
  const p = new SandboxPool(launch, 1, true);
  await p.start();
  await p.acquire(0); // the slot's next sandbox starts now, and never finishes on its own
  await p.close();
  expect(endedWhileStarting).toEqual([2]);
});
