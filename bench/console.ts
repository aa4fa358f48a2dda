import { Client } from 'pg';
import { startStack } from '../test/harness';
import type { Measurement } from './context';
import { median, note, quantile, round } from './lib';

const RUNS = 100_000;
const SAMPLES = 40;
const WARMUP = 5;

/**
 * console_runs_page_ms: the console's runs page (server-rendered HTML, keyset pagination) at
 * 100,000 runs, p95 over the first page, a status filter and a deep page reached by cursor. Timed
 * as the loopback round trip, which bounds the server's time from above.
 */
export const consoleRunsPage: Measurement = {
  name: 'console runs page',
  uses: [],
  async run() {
    const stack = await startStack({ logLevel: 'info' });
    try {
      await stack.publish();
      const db = new Client({ connectionString: stack.databaseUrl });
      await db.connect();
      try {
        // Synthetic rows straight into the table: the page reads only these columns, no job is queued.
        await db.query(
          `INSERT INTO runs (id, idempotency_key, request_mac, bot_name, bot_version, digest, segment, status, input_sealed, attempts, max_attempts, created_at, finished_at)
           SELECT gen_random_uuid(), 'bench-' || g, 'bench', p.name, p.version, p.digest, 'demo',
                  (ARRAY['succeeded', 'failed', 'dead_lettered', 'waiting'])[1 + g % 4], '{}'::jsonb, 1, 3,
                  now() - make_interval(secs => g), now() - make_interval(secs => g) + interval '2 seconds'
           FROM generate_series(1, $1) g, (SELECT name, version, digest FROM packages LIMIT 1) p`,
          [RUNS],
        );
        await db.query('ANALYZE runs');
      } finally {
        await db.end();
      }
      const get = async (path: string): Promise<{ ms: number; html: string }> => {
        const t0 = performance.now();
        const response = await fetch(`${stack.controlRoom.url}${path}`, { headers: { authorization: `Bearer ${stack.adminToken}`, accept: 'text/html' } });
        const html = await response.text();
        if (response.status !== 200) throw new Error(`${path}: ${response.status} ${html.slice(0, 300)}`);
        return { ms: performance.now() - t0, html };
      };
      const first = await get('/console/runs');
      const cursor = /after=([^"&]+)/.exec(first.html)?.[1];
      if (!cursor) throw new Error('no next-page link on the runs page');
      // A cursor ~80,000 rows deep: the keyset page must cost what the first does.
      const deep = await get(`/console/runs?after=${encodeURIComponent(new Date(Date.now() - 80_000_000).toISOString())}_ffffffff-ffff-ffff-ffff-ffffffffffff`);
      if (!deep.html.includes('<tbody>')) throw new Error('the deep page is empty');
      const samples: number[] = [];
      const paths = [
        '/console/runs',
        '/console/runs?status=failed',
        `/console/runs?after=${cursor}`,
        '/console/runs?after=' + encodeURIComponent(new Date(Date.now() - 80_000_000).toISOString()) + '_ffffffff-ffff-ffff-ffff-ffffffffffff',
      ];
      for (let i = 0; i < WARMUP + SAMPLES; i++) {
        for (const path of paths) {
          const { ms } = await get(path);
          if (i >= WARMUP) samples.push(ms);
        }
      }
      note(`console runs page at ${RUNS} runs: p50 ${median(samples).toFixed(1)} ms, p95 ${quantile(samples, 0.95).toFixed(1)} ms`);
      return { console_runs_page_ms: round(quantile(samples, 0.95), 1), console_runs_page_p50_ms: round(median(samples), 1) };
    } finally {
      await stack.close();
    }
  },
};
