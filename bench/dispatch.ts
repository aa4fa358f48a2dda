import { Queue, Worker } from 'bullmq';
import { TEST_REDIS_URL } from '@orderly/shared/testing';
import type { Measurement } from './context';
import { median, note, quantile, round, withTimeout } from './lib';

const RUNS = 50;
const WARMUP = 3;
const SETTLE_MS = 50;

/** Raw BullMQ enqueue→processor start on the same Redis, sequential: the floor for dispatch. */
async function rawBullmqDispatch(prefix: string, count: number): Promise<number[]> {
  const name = 'bench.raw.dispatch';
  const queue = new Queue(name, { connection: { url: TEST_REDIS_URL }, prefix });
  let onStart: ((at: number) => void) | undefined;
  const worker = new Worker(name, async () => onStart?.(performance.now()), { connection: { url: TEST_REDIS_URL, maxRetriesPerRequest: null }, prefix });
  queue.on('error', () => undefined);
  worker.on('error', () => undefined);
  try {
    await worker.waitUntilReady();
    const samples: number[] = [];
    for (let i = 0; i < WARMUP + count; i++) {
      const startedAt = new Promise<number>((resolve) => (onStart = resolve));
      const t0 = performance.now();
      await queue.add('job', { i }, { removeOnComplete: true });
      const ms = (await withTimeout(startedAt, 10_000, 'a raw BullMQ job')) - t0;
      if (i >= WARMUP) samples.push(ms);
    }
    return samples;
  } finally {
    await worker.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
  }
}

/**
 * dispatch_p50_ms / dispatch_p99_ms: run created (just before the API call) → bot code starts,
 * minus the fresh browser context. Runs go one at a time, so no queue wait is counted.
 */
export const dispatch: Measurement = {
  name: 'dispatch latency',
  uses: ['runnerStack'],
  async run(ctx) {
    const { stack, runOnce } = await ctx.get('runnerStack');
    const samples: number[] = [];
    for (let i = 0; i < WARMUP + RUNS; i++) {
      const t = await runOnce();
      if (i >= WARMUP) samples.push(t.botStartedAt - t.contextMs - t.createdAt);
      // Dispatch to an idle runner: let the control room record this run, and the bot host close
      // its context, before the next one is created (back to back, they would overlap it).
      const run = await stack.waitForRun(t.runId);
      if (run.status !== 'succeeded') throw new Error(`run ${t.runId} ended ${run.status} ${run.error?.code ?? ''}`);
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    }
    const raw = await rawBullmqDispatch(stack.prefix, RUNS);
    note(`dispatch: p50 ${median(samples).toFixed(1)} ms, p99 ${quantile(samples, 0.99).toFixed(1)} ms; raw BullMQ p50 ${median(raw).toFixed(2)} ms`);
    return {
      dispatch_p50_ms: round(median(samples), 1),
      dispatch_p99_ms: round(quantile(samples, 0.99), 1),
      raw_bullmq_dispatch_p50_ms: round(median(raw), 2),
    };
  },
};
