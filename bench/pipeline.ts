import { Queue, Worker } from 'bullmq';
import { Client } from 'pg';
import { TEST_REDIS_URL } from '@orderly/shared/testing';
import { join } from 'node:path';
import { startStack } from '../test/harness';
import type { Measurement } from './context';
import { note, round, since } from './lib';

/**
 * Every run gets a sandbox of its own (a fresh bwrap session and bot host, about a second of CPU
 * on this machine), so the pipeline carries a few runs a second per runner; 200 runs keep the
 * measurement within minutes. Raw BullMQ processes as many jobs, so both sides do the same work.
 */
const RUNS = 200;
/** Bot hosts in the runner, and the raw worker's concurrency: the same parallelism on both sides. */
const CONCURRENCY = 4;
const NOOP_BOT = join(__dirname, 'bots', 'noop');

/** Raw BullMQ: RUNS no-op jobs added in one addBulk and processed by one worker, seconds end to end. */
async function rawSeconds(prefix: string): Promise<number> {
  const name = 'bench.raw.pipeline';
  const queue = new Queue(name, { connection: { url: TEST_REDIS_URL }, prefix });
  queue.on('error', () => undefined);
  let done = 0;
  let finish: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (finish = resolve));
  const worker = new Worker(
    name,
    async () => {
      if (++done === RUNS) finish();
      return { ok: true };
    },
    { connection: { url: TEST_REDIS_URL, maxRetriesPerRequest: null }, prefix, concurrency: CONCURRENCY, autorun: false },
  );
  worker.on('error', () => undefined);
  try {
    await queue.waitUntilReady();
    const t0 = performance.now();
    await queue.addBulk(Array.from({ length: RUNS }, (_, n) => ({ name: 'job', data: { n }, opts: { removeOnComplete: true } })));
    void worker.run();
    await all;
    return since(t0) / 1000;
  } finally {
    await worker.close().catch(() => undefined);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close().catch(() => undefined);
  }
}

/**
 * pipeline_throughput_ratio: a batch of RUNS runs of a bot that does nothing and opens no browser,
 * through the whole pipeline (batch API, signed jobs, runner verification, claim, bot host, sealed
 * reports, recorded outcomes), against raw BullMQ processing as many no-op jobs on the same Redis
 * with the same concurrency. Throughput ratio = raw seconds / Orderly seconds.
 */
export const pipelineThroughput: Measurement = {
  name: 'pipeline throughput',
  uses: [],
  async run() {
    const stack = await startStack({ logLevel: 'info', vault: false });
    const db = new Client({ connectionString: stack.databaseUrl });
    try {
      await db.connect();
      await stack.publish(NOOP_BOT);
      await stack.startRunner({ concurrency: CONCURRENCY });
      const succeeded = async () => Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM runs WHERE status = 'succeeded'")).rows[0]!.n);
      // Warm-up: the package is fetched and verified once, the bot hosts are up.
      const warm = await stack.startRun({ bot: 'noop', input: { n: -1 } });
      await stack.waitForRun(warm.id);

      const raw = await rawSeconds(stack.prefix);
      const t0 = performance.now();
      const res = await stack.api('POST', '/v1/runs/batch', { runs: Array.from({ length: RUNS }, (_, n) => ({ bot: 'noop', input: { n } })) });
      if (res.status !== 201) throw new Error(`batch create answered ${res.status}`);
      const deadline = Date.now() + 600_000;
      while ((await succeeded()) < RUNS + 1) {
        if (Date.now() > deadline) throw new Error(`only ${(await succeeded()) - 1}/${RUNS} runs succeeded within 600 s`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const orderly = since(t0) / 1000;
      note(
        `pipeline: ${RUNS} runs in ${orderly.toFixed(1)} s (${(RUNS / orderly).toFixed(0)} runs/s); raw BullMQ no-op ${raw.toFixed(2)} s (${(RUNS / raw).toFixed(0)} jobs/s)`,
      );
      return {
        pipeline_throughput_ratio: round(raw / orderly, 3),
        pipeline_runs_per_s: Math.round(RUNS / orderly),
        raw_noop_jobs_per_s: Math.round(RUNS / raw),
      };
    } finally {
      await db.end().catch(() => undefined);
      await stack.close();
    }
  },
};
