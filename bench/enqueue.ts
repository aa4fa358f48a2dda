import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { TEST_REDIS_URL } from '@orderly/shared/testing';
import type { Stack } from '../test/harness';
import type { Measurement } from './context';
import { median, note, round } from './lib';
import { MEMBER } from './stacks';

const TOTAL = 5000;
const BATCH = 1000;
const WARMUP_BATCH = 200;

/**
 * Runs created per second through `POST /v1/runs/batch` (each with its own idempotency key; no
 * runner, so they only queue) against raw `addBulk` of as many small jobs on the same Redis,
 * batch for batch, alternating.
 */
async function measureEnqueue(stack: Stack): Promise<{ ratio: number; orderlyPerS: number; rawPerS: number }> {
  const raw = new Queue('bench.raw.enqueue', { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
  raw.on('error', () => undefined);
  const tag = randomBytes(4).toString('hex');
  let seq = 0;
  const rawBatch = async (n: number) => {
    const jobs = Array.from({ length: n }, () => ({ name: 'job', data: { n: ++seq } }));
    const t0 = performance.now();
    await raw.addBulk(jobs);
    return performance.now() - t0;
  };
  const orderlyBatch = async (n: number) => {
    const runs = Array.from({ length: n }, () => ({
      bot: 'eligibility-check',
      input: { portalUrl: stack.portal.url, ...MEMBER },
      idempotencyKey: `bench-${tag}-${++seq}`,
    }));
    const t0 = performance.now();
    const res = await stack.api('POST', '/v1/runs/batch', { runs });
    const ms = performance.now() - t0;
    const created = (res.body as { runs?: { created: boolean }[] } | undefined)?.runs?.filter((r) => r.created).length;
    if (res.status !== 201 || created !== n) throw new Error(`batch create answered ${res.status} with ${created ?? 0}/${n} created`);
    return ms;
  };
  try {
    await raw.waitUntilReady();
    await rawBatch(WARMUP_BATCH);
    await orderlyBatch(WARMUP_BATCH);
    let rawMs = 0;
    let orderlyMs = 0;
    const pairRatios: number[] = [];
    for (let done = 0; done < TOTAL; done += BATCH) {
      const n = Math.min(BATCH, TOTAL - done);
      const raw = await rawBatch(n);
      const orderly = await orderlyBatch(n);
      rawMs += raw;
      orderlyMs += orderly;
      pairRatios.push(raw / orderly);
    }
    // The ratio is the median over adjacent pairs of batches, which share the machine's load of
    // the moment (other processes on a 2-core machine come and go); rates are over all batches.
    return { ratio: median(pairRatios), orderlyPerS: (TOTAL / orderlyMs) * 1000, rawPerS: (TOTAL / rawMs) * 1000 };
  } finally {
    await raw.close().catch(() => undefined);
  }
}

/** enqueue_ratio on the machine's PostgreSQL (the harness default). */
export const enqueuePostgres: Measurement = {
  name: 'enqueue (PostgreSQL)',
  uses: ['postgresQueueStack'],
  async run(ctx) {
    const { ratio, orderlyPerS, rawPerS } = await measureEnqueue(await ctx.get('postgresQueueStack'));
    note(`enqueue (PostgreSQL): orderly ${orderlyPerS.toFixed(0)} runs/s, raw addBulk ${rawPerS.toFixed(0)} jobs/s`);
    return {
      enqueue_ratio: round(ratio, 3),
      orderly_runs_per_s: Math.round(orderlyPerS),
      raw_addbulk_jobs_per_s: Math.round(rawPerS),
    };
  },
};

/** enqueue_ratio_pglite: the same with the embedded default database. */
export const enqueuePglite: Measurement = {
  name: 'enqueue (PGlite)',
  uses: ['pgliteQueueStack'],
  async run(ctx) {
    const { ratio, orderlyPerS, rawPerS } = await measureEnqueue(await ctx.get('pgliteQueueStack'));
    note(`enqueue (PGlite): orderly ${orderlyPerS.toFixed(0)} runs/s, raw addBulk ${rawPerS.toFixed(0)} jobs/s`);
    return {
      enqueue_ratio_pglite: round(ratio, 3),
      orderly_runs_per_s_pglite: Math.round(orderlyPerS),
      raw_addbulk_jobs_per_s_pglite: Math.round(rawPerS),
    };
  },
};
