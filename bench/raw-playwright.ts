import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';
import { CHROMIUM_ARGS } from '@orderly/runner/dist/browser/launch';
import { CHROMIUM, PORTAL_CREDENTIALS } from '../test/harness';
import { since } from './lib';
import { MEMBER } from './stacks';

const SETPRIV = '/usr/bin/setpriv';
/** The runner's default ORDERLY_BOT_HOST_USER. */
const BOT_HOST_USER = 'nobody';

/** uid and gid of a local user, as the runner looks its bot host user up (runner/src/bot-host/host.ts). */
function localUser(name: string): { uid: number; gid: number } | undefined {
  const entry = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] === name);
  return entry ? { uid: Number(entry[2]), gid: Number(entry[3]) } : undefined;
}

/**
 * The raw Playwright baselines: the same Chromium and flags as the runner's bot host, launched
 * once (warm) in this process, with a new context per run.
 *
 * `asBotHostUser`: Chromium runs as the bot host's user, with the bot host's environment. The
 * runner, as root, starts its bot host as an unprivileged user (isolation); Chromium run that way
 * does the same page steps measurably slower than as root (it cannot raise its main, IO and
 * compositor threads to nice -8, among others). This baseline tells that cost from Orderly's
 * own. Not root (the bot host then runs as the runner's user), no such user or no setpriv: the
 * plain launch is that baseline already.
 */
export async function launchWarmBrowser(options: { asBotHostUser?: boolean } = {}): Promise<Browser> {
  const user = options.asBotHostUser && process.getuid?.() === 0 && existsSync(SETPRIV) ? localUser(BOT_HOST_USER) : undefined;
  if (!user) return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const dir = mkdtempSync(join(tmpdir(), 'orderly-bench-chromium-'));
  const home = join(dir, 'home');
  mkdirSync(home, { mode: 0o700 });
  chownSync(home, user.uid, user.gid);
  chmodSync(dir, 0o755);
  const wrapper = join(dir, 'chromium');
  // Playwright makes the profile directory (as root) before the launch: hand it to the user.
  writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      'for a in "$@"; do case "$a" in --user-data-dir=*) chown -R ' + `${user.uid}:${user.gid}` + ' "${a#--user-data-dir=}";; esac; done',
      `exec ${SETPRIV} --reuid=${user.uid} --regid=${user.gid} --clear-groups env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=${home} TMPDIR=${home} LANG=C.UTF-8 ${CHROMIUM} "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(wrapper, 0o755);
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  try {
    const browser = await chromium.launch({ executablePath: wrapper, headless: true, args: CHROMIUM_ARGS });
    browser.once('disconnected', removeDir);
    return browser;
  } catch (err) {
    removeDir();
    throw err;
  }
}

export interface RawTiming {
  totalMs: number;
  contextMs: number;
}

/**
 * Exactly what the reference bot (bench/bots/reference) does, on a demo portal without sign-in:
 * goto `/eligibility`, fill `#member-id`, fill `#dob`, click `#check`, wait for `#coverage-status`.
 */
export function rawReferenceOnce(browser: Browser, portalUrl: string): Promise<RawTiming> {
  return timedRun(browser, async (page) => {
    await page.goto(new URL('/eligibility', portalUrl).toString());
    await page.fill('#member-id', MEMBER.memberId);
    await page.fill('#dob', MEMBER.dateOfBirth);
    await page.click('#check');
    await page.locator('#coverage-status').waitFor();
  });
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
