import type { Browser } from 'playwright-core';
import { startDemoPortal } from '@orderly/demo-portal';
import type { Measurement } from './context';
import { median, note, round } from './lib';
import { launchWarmBrowser, rawEligibilityOnce, rawReferenceLaunchOnce, rawReferenceOnce, RawTiming } from './raw-playwright';
import { MEMBER, RunTiming } from './stacks';

const WARMUP = 2;
const ITERATIONS = 20;
const SETTLE_MS = 50;

const ms = (samples: readonly number[]) => round(median(samples), 1);

/** Where an Orderly run's time goes (medians of the parts, so they need not add up exactly). */
function breakdown(orderly: readonly RunTiming[], suffix: string): Record<string, number> {
  return {
    [`orderly_to_bot_start${suffix}_ms`]: ms(orderly.map((t) => t.botStartedAt - t.contextMs - t.createdAt)),
    [`orderly_context${suffix}_ms`]: ms(orderly.map((t) => t.contextMs)),
    [`orderly_bot_to_done${suffix}_ms`]: ms(orderly.map((t) => t.completedAt - t.botStartedAt)),
  };
}

/**
 * run_overhead_ratio: one Orderly run of the reference bot (bench/bots/reference: goto, two fills,
 * click, wait; no credentials, a portal without sign-in) through API → queue → runner → bot host
 * → report → job completed, against exactly those Playwright calls raw, on a warm browser with a
 * new context per run. Kept alongside: the eligibility-check bot (sign-in with credentials leased
 * from Vault) against raw with the same sign-in (`_eligibility`) and with exactly the bot's calls
 * (`_eligibility_bot_steps`). `_vs_launch`: the reference against raw Playwright that launches a
 * browser per run, as RPA tools do. Every Orderly run is in a fresh sandbox of its own, pre-warmed
 * (the runner's defaults). All six kinds of run are interleaved.
 */
export const runOverhead: Measurement = {
  name: 'run overhead',
  uses: ['runnerStack'],
  async run(ctx) {
    const { stack, runOnce } = await ctx.get('runnerStack');
    // The reference bot's portal asks for no sign-in: started without credentials.
    const portal = await startDemoPortal();
    let browser: Browser;
    try {
      browser = await launchWarmBrowser();
    } catch (err) {
      await portal.close();
      throw err;
    }
    const reference = { bot: 'reference', input: { portalUrl: portal.url, ...MEMBER } };
    const succeeded = async (runId: string, check?: (result: unknown) => boolean) => {
      const run = await stack.waitForRun(runId);
      if (run.status !== 'succeeded' || (check && !check(run.result)))
        throw new Error(`run ${runId} of ${run.bot} ended ${run.status} ${run.error?.code ?? ''}`);
    };
    try {
      for (let i = 0; i < WARMUP; i++) {
        await rawReferenceOnce(browser, portal.url);
        await rawReferenceLaunchOnce(portal.url);
        await succeeded((await runOnce(reference)).runId, (r) => (r as { checked?: unknown } | undefined)?.checked === true);
        await rawEligibilityOnce(browser, stack.portal.url, false);
        await rawEligibilityOnce(browser, stack.portal.url, true);
        await succeeded((await runOnce()).runId, (r) => (r as { coverage?: unknown } | undefined)?.coverage === 'Active');
      }
      const rawRef: RawTiming[] = [];
      const rawRefLaunch: RawTiming[] = [];
      const orderlyRef: RunTiming[] = [];
      const raw: RawTiming[] = [];
      const rawBot: RawTiming[] = [];
      const orderly: RunTiming[] = [];
      // Each run lets the previous one's trailing work (an Orderly run's context close, recorded
      // outcome and token revocation) finish first, so it is not billed to the next.
      const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      for (let i = 0; i < ITERATIONS; i++) {
        rawRef.push(await rawReferenceOnce(browser, portal.url));
        await settle();
        rawRefLaunch.push(await rawReferenceLaunchOnce(portal.url));
        await settle();
        const r = await runOnce(reference);
        orderlyRef.push(r);
        await succeeded(r.runId);
        await settle();
        raw.push(await rawEligibilityOnce(browser, stack.portal.url, false));
        await settle();
        const t = await runOnce();
        orderly.push(t);
        await succeeded(t.runId);
        await settle();
        rawBot.push(await rawEligibilityOnce(browser, stack.portal.url, true));
        await settle();
      }
      // The reference runs really reached the portal: one check per run, raw and Orderly.
      const checks = portal.stats().eligibilityChecks;
      if (checks !== 3 * (WARMUP + ITERATIONS)) throw new Error(`the reference portal saw ${checks} checks, expected ${3 * (WARMUP + ITERATIONS)}`);
      const rawRefMs = median(rawRef.map((x) => x.totalMs));
      const rawRefLaunchMs = median(rawRefLaunch.map((x) => x.totalMs));
      const orderlyRefMs = median(orderlyRef.map((t) => t.completedAt - t.createdAt));
      const rawMs = median(raw.map((x) => x.totalMs));
      const rawBotMs = median(rawBot.map((x) => x.totalMs));
      const orderlyMs = median(orderly.map((t) => t.completedAt - t.createdAt));
      note(
        `run overhead: reference raw ${rawRefMs.toFixed(1)} ms (launching a browser per run ${rawRefLaunchMs.toFixed(1)} ms), orderly ${orderlyRefMs.toFixed(1)} ms; eligibility (sign-in) raw ${rawMs.toFixed(1)} ms, raw with the bot's calls ${rawBotMs.toFixed(1)} ms, orderly ${orderlyMs.toFixed(1)} ms (medians of ${ITERATIONS})`,
      );
      return {
        run_overhead_ratio: round(orderlyRefMs / rawRefMs, 3),
        // Against raw Playwright that launches a browser per run, as RPA tools do.
        run_overhead_ratio_vs_launch: round(orderlyRefMs / rawRefLaunchMs, 3),
        run_overhead_ratio_eligibility: round(orderlyMs / rawMs, 3),
        // Against raw Playwright making exactly the eligibility bot's calls: Orderly's own share there.
        run_overhead_ratio_eligibility_bot_steps: round(orderlyMs / rawBotMs, 3),
        raw_playwright_ms: round(rawRefMs, 1),
        raw_playwright_launch_ms: round(rawRefLaunchMs, 1),
        orderly_run_ms: round(orderlyRefMs, 1),
        raw_context_ms: ms(rawRef.map((x) => x.contextMs)),
        ...breakdown(orderlyRef, ''),
        raw_playwright_eligibility_ms: round(rawMs, 1),
        raw_playwright_eligibility_bot_steps_ms: round(rawBotMs, 1),
        orderly_run_eligibility_ms: round(orderlyMs, 1),
        raw_context_eligibility_ms: ms(raw.map((x) => x.contextMs)),
        ...breakdown(orderly, '_eligibility'),
      };
    } finally {
      await browser.close().catch(() => undefined);
      await portal.close().catch(() => undefined);
    }
  },
};
