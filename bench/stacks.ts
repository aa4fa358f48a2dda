import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { runQueueName, SegmentName } from '@orderly/shared';
import { TEST_REDIS_URL } from '@orderly/shared/testing';
import { Stack, startStack } from '../test/harness';
import { note, since, withTimeout } from './lib';

/** A synthetic member the demo portal knows (coverage Active). */
export const MEMBER = { memberId: 'ZZT100200301', dateOfBirth: '1900-01-15' };
const SEGMENT = 'demo' as SegmentName;
/** The bench's reference bot: exactly the raw baseline's Playwright calls (see raw-playwright.ts). */
export const REFERENCE_BOT = join(__dirname, 'bots', 'reference');
/** Production default; the harness captures debug lines for tests, which is not what ships. */
const LOG_LEVEL = 'info';

/** Timestamps (performance.now, this process) of one Orderly run. */
export interface RunTiming {
  runId: string;
  /** Just before the create-run API call. */
  createdAt: number;
  /** The run's job completed on `orderly.run.demo` (BullMQ QueueEvents). */
  completedAt: number;
  /** The runner's onBotStarted hook fired. */
  botStartedAt: number;
  /** What the fresh browser context (and page) took inside the bot host, reported with the start. */
  contextMs: number;
}

export interface RunnerStack {
  stack: Stack;
  /**
   * Creates one run through the API (by default of the eligibility-check bot against the stack's
   * portal, with sign-in) and resolves when its job completes.
   */
  runOnce(request?: { bot: string; input: Record<string, unknown> }): Promise<RunTiming>;
  close(): Promise<void>;
}

/**
 * A PostgreSQL stack with the eligibility-check and reference bots published and one runner
 * (warm Chromium in its bot host). Completion is observed on the run queue's event stream, not by polling the API.
 */
export async function startRunnerStack(): Promise<RunnerStack> {
  const t0 = performance.now();
  const stack = await startStack({ logLevel: LOG_LEVEL });
  let events: QueueEvents | undefined;
  try {
    await stack.publish();
    await stack.publish(REFERENCE_BOT);
    const started = new Map<string, { at: number; contextMs: number }>();
    await stack.startRunner({ onBotStarted: (runId, contextMs) => started.set(runId, { at: performance.now(), contextMs }) });
    events = new QueueEvents(runQueueName(SEGMENT), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
    events.on('error', () => undefined);
    await events.waitUntilReady();
    // Job ids are keyed hashes of idempotency keys: an event's job is matched to its run through
    // the run id in its payload. The time is taken when the event arrives, before that lookup.
    const waiters = new Map<string, { resolve: (at: number) => void; reject: (err: Error) => void }>();
    const queue = new Queue(runQueueName(SEGMENT), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
    const runOfJob = async (jobId: string) => {
      const payload = ((await queue.getJob(jobId))?.data as { envelope?: { payload?: string } } | undefined)?.envelope?.payload;
      return payload ? (JSON.parse(Buffer.from(payload, 'base64').toString('utf8')) as { runId?: string }).runId : undefined;
    };
    events.on('completed', ({ jobId, returnvalue }) => {
      const at = performance.now();
      void runOfJob(jobId).then((runId) => {
        const waiter = runId ? waiters.get(runId) : undefined;
        // The runner returns { ok: false } for a run it did not execute (no longer claimable).
        if ((returnvalue as { ok?: unknown } | null)?.ok === true) waiter?.resolve(at);
        else waiter?.reject(new Error(`run job ${jobId} completed without running the bot`));
      });
    });
    events.on(
      'failed',
      ({ jobId, failedReason }) =>
        void runOfJob(jobId).then((runId) => (runId ? waiters.get(runId) : undefined)?.reject(new Error(`run job ${jobId} failed: ${failedReason}`))),
    );
    let n = 0;
    note(`runner stack up in ${Math.round(since(t0))} ms`);
    const qe = events;
    return {
      stack,
      async runOnce(request = { bot: 'eligibility-check', input: { portalUrl: stack.portal.url, ...MEMBER } }) {
        // The run id is known only once the run is created: the waiter is set right after, and a
        // completion that came first (not possible: the job needs a claim) would be missed.
        const key = `bench-${++n}-${randomBytes(4).toString('hex')}`;
        let runId = '';
        try {
          const createdAt = performance.now();
          const res = await stack.api('POST', '/v1/runs', { ...request, idempotencyKey: key });
          if (res.status !== 201) throw new Error(`create run answered ${res.status}: ${JSON.stringify(res.body)}`);
          runId = (res.body as { id: string }).id;
          const done = new Promise<number>((resolve, reject) => waiters.set(runId, { resolve, reject }));
          const completedAt = await withTimeout(done, 30_000, `run ${runId}`);
          const start = started.get(runId);
          started.delete(runId);
          if (!start) throw new Error(`run ${runId} completed but the runner never reported its bot start`);
          return { runId, createdAt, completedAt, botStartedAt: start.at, contextMs: start.contextMs };
        } finally {
          waiters.delete(runId);
        }
      },
      async close() {
        await qe.close().catch(() => undefined);
        await queue.close().catch(() => undefined);
        await stack.close();
      },
    };
  } catch (err) {
    await events?.close().catch(() => undefined);
    await stack.close();
    throw err;
  }
}

/** A stack with the bot published and no runner: runs only queue. */
export async function startQueueOnlyStack(database: 'postgres' | 'pglite'): Promise<Stack> {
  const t0 = performance.now();
  const stack = await startStack({ database, logLevel: LOG_LEVEL });
  try {
    await stack.publish();
  } catch (err) {
    await stack.close();
    throw err;
  }
  note(`${database} stack up in ${Math.round(since(t0))} ms`);
  return stack;
}
