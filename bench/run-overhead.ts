import { Browser, chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '@orderly/runner/dist/browser/launch';
import { CHROMIUM, PORTAL_CREDENTIALS } from '../test/harness';
import type { Measurement } from './context';
import { median, note, round, since } from './lib';
import { MEMBER, RunTiming } from './stacks';

const WARMUP = 3;
const ITERATIONS = 20;
const SETTLE_MS = 50;

interface RawTiming {
  totalMs: number;
  contextMs: number;
}

/**
 * The raw baseline: goto, two fills, click, wait, on a new context of a warm browser; when the
 * portal asks for a sign-in first (it does when it has credentials, as the harness starts it),
 * the raw run signs in too, as the bot must. With `botSteps`, exactly the Playwright calls the
 * eligibility-check bot makes (it also checks for a failed sign-in, stamps the idempotency key
 * with evaluate(), waits on either outcome and reads three elements): the same browser work
 * without Orderly, to tell Orderly's overhead from the bot's own extra calls.
 */
async function rawOnce(browser: Browser, portalUrl: string, botSteps: boolean): Promise<RawTiming> {
  const start = performance.now();
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const contextMs = since(start);
    await page.goto(new URL('/eligibility', portalUrl).toString());
    if (new URL(page.url()).pathname === '/login') {
      await page.fill('#username', PORTAL_CREDENTIALS.username);
      await page.fill('#password', PORTAL_CREDENTIALS.password);
      await page.click('#login');
      if (botSteps) {
        await page.locator('#member-id, #login-failed').first().waitFor();
        if (await page.locator('#login-failed').count()) throw new Error('raw sign-in to the demo portal failed');
      } else {
        await page.locator('#member-id').waitFor();
      }
    }
    await page.fill('#member-id', MEMBER.memberId);
    await page.fill('#dob', MEMBER.dateOfBirth);
    if (botSteps) await page.locator('#idempotency-key').evaluate((el, key) => ((el as HTMLInputElement).value = key), 'bench-raw');
    await page.click('#check');
    if (botSteps) {
      await page.locator('#coverage-status, #not-found').first().waitFor();
      if (await page.locator('#not-found').count()) throw new Error('the demo portal did not find the bench member');
      await page.locator('#coverage-status').textContent();
      await page.locator('#plan').textContent();
    } else {
      await page.locator('#coverage-status').waitFor();
    }
    await context.close();
    return { totalMs: since(start), contextMs };
  } finally {
    await context.close().catch(() => undefined);
  }
}

/**
 * run_overhead_ratio: one Orderly run of the eligibility-check bot (API → queue → runner → bot
 * host → report → job completed) against the same steps in raw Playwright, interleaved.
 */
export const runOverhead: Measurement = {
  name: 'run overhead',
  uses: ['runnerStack'],
  async run(ctx) {
    const { stack, runOnce } = await ctx.get('runnerStack');
    // Same Chromium and flags as the runner's bot host, launched once (warm), in this process.
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    try {
      for (let i = 0; i < WARMUP; i++) {
        await rawOnce(browser, stack.portal.url, false);
        await rawOnce(browser, stack.portal.url, true);
        const { runId } = await runOnce();
        if (i === 0) {
          const run = await stack.waitForRun(runId);
          if (run.status !== 'succeeded' || (run.result as { coverage?: string } | undefined)?.coverage !== 'Active') {
            throw new Error(`the warm-up run did not succeed: ${run.status} ${run.error?.code ?? ''}`);
          }
        }
      }
      const raw: RawTiming[] = [];
      const rawBot: RawTiming[] = [];
      const orderly: RunTiming[] = [];
      // Each iteration lets the previous one's trailing work (an Orderly run's context close,
      // recorded outcome and token revocation) finish first, so it is not billed to the next.
      const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      for (let i = 0; i < ITERATIONS; i++) {
        raw.push(await rawOnce(browser, stack.portal.url, false));
        await settle();
        const t = await runOnce();
        orderly.push(t);
        const run = await stack.waitForRun(t.runId);
        if (run.status !== 'succeeded') throw new Error(`run ${t.runId} ended ${run.status} ${run.error?.code ?? ''}`);
        await settle();
        rawBot.push(await rawOnce(browser, stack.portal.url, true));
        await settle();
      }
      const rawMs = median(raw.map((r) => r.totalMs));
      const rawBotMs = median(rawBot.map((r) => r.totalMs));
      const orderlyMs = median(orderly.map((t) => t.completedAt - t.createdAt));
      note(`run overhead: raw ${rawMs.toFixed(1)} ms, raw with the bot's calls ${rawBotMs.toFixed(1)} ms, orderly ${orderlyMs.toFixed(1)} ms (medians of ${ITERATIONS})`);
      return {
        run_overhead_ratio: round(orderlyMs / rawMs, 3),
        // Against raw Playwright making exactly the bot's calls: Orderly's own share.
        run_overhead_ratio_bot_steps: round(orderlyMs / rawBotMs, 3),
        raw_playwright_ms: round(rawMs, 1),
        raw_playwright_bot_steps_ms: round(rawBotMs, 1),
        orderly_run_ms: round(orderlyMs, 1),
        // Where the time goes (medians of the parts, so they need not add up exactly).
        raw_context_ms: round(median(raw.map((r) => r.contextMs)), 1),
        orderly_to_bot_start_ms: round(median(orderly.map((t) => t.botStartedAt - t.contextMs - t.createdAt)), 1),
        orderly_context_ms: round(median(orderly.map((t) => t.contextMs)), 1),
        orderly_bot_to_done_ms: round(median(orderly.map((t) => t.completedAt - t.botStartedAt)), 1),
      };
    } finally {
      await browser.close().catch(() => undefined);
    }
  },
};
