import { createLogger } from '@orderly/shared';
import { startDemoPortal } from '@orderly/demo-portal';
import { loadRunnerConfig } from '@orderly/runner/dist/config';
import { createSandboxPool } from '@orderly/runner/dist/sandbox/runner-sandboxes';
import type { Measurement } from './context';
import { median, note, round } from './lib';
import { launchWarmBrowser, rawReferenceOnce } from './raw-playwright';
import { MEMBER } from './stacks';

const COLD_STARTS = 7;
const BACK_TO_BACK = 8;

/**
 * sandbox_start_ms: p50 of cold starts of a run sandbox (bwrap, the bot host with its SDK loaded,
 * Chromium launched and ready), as a runner with pre-warming off would wait for each run.
 * sandbox_throughput_ratio: back-to-back reference runs per minute through Orderly (one slot, a
 * fresh pre-warmed sandbox per run, BACK_TO_BACK runs queued at once, first create to last job
 * completed) against the same runs done raw, one after another, each in a new context of a warm
 * browser.
 */
export const sandboxCost: Measurement = {
  name: 'sandbox',
  uses: ['runnerStack'],
  async run(ctx) {
    // Configuration only: the sandboxes need no control room or token.
    const config = loadRunnerConfig({
      ORDERLY_SEGMENT: 'demo',
      ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE: '/dev/null',
      ORDERLY_RUNNER_TOKEN_FILE: '/dev/null',
      ORDERLY_SANDBOX_PREWARM: '0',
      ORDERLY_RUNNER_ID: 'bench-sandbox',
    });
    const pool = createSandboxPool(config, createLogger({ level: 'warn', name: 'bench-sandbox' }));
    const starts: number[] = [];
    try {
      for (let i = 0; i < COLD_STARTS; i++) {
        const t0 = performance.now();
        const sandbox = await pool.acquire(0);
        starts.push(performance.now() - t0);
        await sandbox.destroy();
      }
    } finally {
      await pool.close();
    }

    const { runOnce } = await ctx.get('runnerStack');
    const portal = await startDemoPortal();
    const browser = await launchWarmBrowser();
    try {
      const input = { portalUrl: portal.url, ...MEMBER };
      const t0 = performance.now();
      await Promise.all(Array.from({ length: BACK_TO_BACK }, () => runOnce({ bot: 'reference', input })));
      const orderlyMs = performance.now() - t0;
      const t1 = performance.now();
      for (let i = 0; i < BACK_TO_BACK; i++) await rawReferenceOnce(browser, portal.url);
      const rawMs = performance.now() - t1;
      if (portal.stats().eligibilityChecks !== 2 * BACK_TO_BACK) throw new Error(`the reference portal saw ${portal.stats().eligibilityChecks} checks`);
      const perMinute = (ms: number) => (BACK_TO_BACK * 60_000) / ms;
      note(
        `sandbox: cold start p50 ${median(starts).toFixed(0)} ms; ${BACK_TO_BACK} back-to-back runs: orderly ${orderlyMs.toFixed(0)} ms, raw warm context ${rawMs.toFixed(0)} ms`,
      );
      return {
        sandbox_start_ms: round(median(starts), 0),
        sandbox_throughput_ratio: round(perMinute(orderlyMs) / perMinute(rawMs), 3),
        sandbox_runs_per_minute: round(perMinute(orderlyMs), 1),
        raw_warm_context_runs_per_minute: round(perMinute(rawMs), 1),
      };
    } finally {
      await browser.close().catch(() => undefined);
      await portal.close().catch(() => undefined);
    }
  },
};
