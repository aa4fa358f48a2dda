import { isTerminal, RunView } from '@orderly/shared';
import { waitFor } from '@orderly/shared/testing';
import { CuttableLink, Ledger, OwnRedis, startLedger, startOwnRedis, throughCuttableLink } from '../faults';
import { LEDGER_BOT, Stack, startStack } from '../harness';

/**
 * Nothing lost across restarts (issue 5): Redis, the control room and the database each go away
 * in the middle of a batch; afterwards every run created is in exactly one state, none is missing,
 * and the target system saw each run's side effect once.
 */
const RUNS = 16;
/** Larger than the waits inside a test (60 s for the first runs, 120 s for every run to end). */
const TEST_TIMEOUT_MS = 240_000;

let ledger: Ledger;
beforeAll(async () => {
  ledger = await startLedger();
});
afterAll(async () => {
  await ledger?.close();
});

/** Starts a batch of ledger runs with keys `<label>-<i>`. */
async function startBatch(stack: Stack, label: string): Promise<RunView[]> {
  const res = await stack.api('POST', '/v1/runs/batch', {
    runs: Array.from({ length: RUNS }, (_, i) => ({ bot: 'ledger', input: { ledgerUrl: ledger.url }, idempotencyKey: `${label}-${i}` })),
  });
  expect(res.status).toBe(201);
  return res.body.runs as RunView[];
}

async function statuses(stack: Stack): Promise<RunView[]> {
  const res = await stack.api('GET', '/v1/runs?limit=500');
  expect(res.status).toBe(200);
  return res.body.runs as RunView[];
}

/** Waits until `n` runs have succeeded (the fault then strikes mid-batch). */
async function waitForSucceeded(stack: Stack, n: number): Promise<void> {
  await waitFor(async () => ((await statuses(stack)).filter((r) => r.status === 'succeeded').length >= n ? true : undefined), 60_000, `${n} runs to succeed`);
}

/** Every run of the batch ends succeeded, exactly once each, and the ledger saw each key once. */
async function expectBatchDoneOnce(stack: Stack, created: RunView[], label: string): Promise<void> {
  const runs = await waitFor(
    async () => {
      const all = await statuses(stack);
      return all.length >= RUNS && all.every((r) => isTerminal(r.status) || r.status === 'dead_lettered') ? all : undefined;
    },
    120_000,
    'every run to end',
  );
  expect(runs.map((r) => r.id).sort()).toEqual(created.map((r) => r.id).sort());
  expect(runs.filter((r) => r.status !== 'succeeded').map((r) => ({ status: r.status, error: r.error?.code }))).toEqual([]);
  const counts = ledger.counts();
  const expected = Object.fromEntries(created.map((r) => [r.idempotencyKey, 1]));
  expect(Object.fromEntries(Object.entries(counts).filter(([key]) => key.startsWith(`${label}-`)))).toEqual(expected);
}

describe('Redis restarted from its append-only file in the middle of a batch', () => {
  let redis: OwnRedis;
  let stack: Stack;
  beforeAll(async () => {
    redis = await startOwnRedis();
    stack = await startStack({ redisUrl: redis.url, runner: true });
    await stack.publish(LEDGER_BOT);
  });
  afterAll(async () => {
    if (redis && !redis.running) await redis.start(); // the stack's clients need it to close
    await stack?.close();
    await redis?.close();
  });

  test(
    'every run ends succeeded, none lost or repeated',
    async () => {
      const created = await startBatch(stack, 'redis-restart');
      await waitForSucceeded(stack, 3);
      await redis.kill();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await redis.start();
      await expectBatchDoneOnce(stack, created, 'redis-restart');
    },
    TEST_TIMEOUT_MS,
  );
});

describe('the control room restarted while reports are flowing', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ runner: true });
    await stack.publish(LEDGER_BOT);
  });
  afterAll(async () => {
    await stack?.close();
  });

  test(
    'reports written while it was down are consumed when it returns',
    async () => {
      const created = await startBatch(stack, 'control-room-restart');
      await waitForSucceeded(stack, 3);
      await stack.restartControlRoom();
      await expectBatchDoneOnce(stack, created, 'control-room-restart');
    },
    TEST_TIMEOUT_MS,
  );
});

describe('the database unreachable for a while', () => {
  let link: CuttableLink | undefined;
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      runner: true,
      // The control room reaches PostgreSQL through a link the test can cut.
      mapDatabaseUrl: throughCuttableLink((l) => (link = l)),
    });
    await stack.publish(LEDGER_BOT);
  });
  afterAll(async () => {
    link?.restore(); // a test that failed while it was cut: the stack's clients need it to close
    await stack?.close();
    await link?.close();
  });

  test(
    'runs end in a correct state, none duplicated or missing; the API answers 503 meanwhile',
    async () => {
      const created = await startBatch(stack, 'database-outage');
      await waitForSucceeded(stack, 3);
      link!.cut();
      const during = await stack.api('GET', `/v1/runs/${created[0]!.id}`);
      expect(during.status).toBe(503);
      expect(during.body.error.code).toBe('ORDERLY_E_DEPENDENCY_UNAVAILABLE');
      await new Promise((resolve) => setTimeout(resolve, 3000));
      link!.restore();
      await expectBatchDoneOnce(stack, created, 'database-outage');
    },
    TEST_TIMEOUT_MS,
  );
});
