import { Browser, chromium, Page } from 'playwright-core';
import { CHROMIUM_ARGS } from '@orderly/runner/dist/browser/launch';
import { CHROMIUM, PORTAL_CREDENTIALS } from '../test/harness';
import { since } from './lib';
import { MEMBER } from './stacks';

/** The raw Playwright baseline: the runner's Chromium and flags, launched once (warm) in this process. */
export function launchWarmBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

export interface RawTiming {
  totalMs: number;
  contextMs: number;
}

/** Exactly what the reference bot (bench/bots/reference) does, on a demo portal without sign-in. */
async function referenceSteps(page: Page, portalUrl: string): Promise<void> {
  await page.goto(new URL('/eligibility', portalUrl).toString());
  await page.fill('#member-id', MEMBER.memberId);
  await page.fill('#dob', MEMBER.dateOfBirth);
  await page.click('#check');
  await page.locator('#coverage-status').waitFor();
}

/** The reference steps in a new context of a warm browser. */
export function rawReferenceOnce(browser: Browser, portalUrl: string): Promise<RawTiming> {
  return timedRun(browser, (page) => referenceSteps(page, portalUrl));
}

/** The reference steps in a browser launched for the run and closed after it (what RPA tools do). */
export async function rawReferenceLaunchOnce(portalUrl: string): Promise<RawTiming> {
  const start = performance.now();
  const browser = await launchWarmBrowser();
  try {
    const timing = await timedRun(browser, (page) => referenceSteps(page, portalUrl));
    await browser.close();
    return { totalMs: since(start), contextMs: timing.contextMs };
  } finally {
    await browser.close().catch(() => undefined);
  }
}

/** Times `steps` in a new context of the warm browser; the context's own cost is reported apart. */
async function timedRun(browser: Browser, steps: (page: Page) => Promise<void>): Promise<RawTiming> {
  const start = performance.now();
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const contextMs = since(start);
    await steps(page);
    await context.close();
    return { totalMs: since(start), contextMs };
  } finally {
    await context.close().catch(() => undefined);
  }
}

/**
 * The eligibility-check comparison: goto, two fills, click, wait, signing in first when the
 * portal asks (it does when it has credentials, as the harness starts it), as the bot must. With
 * `botSteps`, exactly the Playwright calls the eligibility-check bot makes (it also checks for a
 * failed sign-in, stamps the idempotency key with evaluate(), waits on either outcome and reads
 * three elements): the same browser work without Orderly, to tell Orderly's overhead from the
 * bot's own extra calls.
 */
export function rawEligibilityOnce(browser: Browser, portalUrl: string, botSteps: boolean): Promise<RawTiming> {
  return timedRun(browser, async (page) => {
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
  });
}
