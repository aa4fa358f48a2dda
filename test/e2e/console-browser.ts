import { readFileSync } from 'node:fs';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { CHROMIUM, Stack, TestUser } from '../harness';

/**
 * Browser helpers for the console's Playwright suites: a context that collects CSP violations and
 * every URL it requested, sign-in through the console's own form, and what a browser keeps.
 */
export interface ConsoleBrowser {
  browser: Browser;
  cspViolations: string[];
  seenUrls: string[];
  newContext(): Promise<BrowserContext>;
  signIn(context: BrowserContext, user: TestUser): Promise<Page>;
  /** Cookies, local and session storage, and every URL requested so far, as one text. */
  held(context: BrowserContext, page: Page): Promise<string>;
}

export async function launchConsoleBrowser(stack: () => Stack): Promise<ConsoleBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const cspViolations: string[] = [];
  const seenUrls: string[] = [];
  return {
    browser,
    cspViolations,
    seenUrls,
    async newContext() {
      const context = await browser.newContext();
      await context.exposeBinding('__cspViolation', (_source, text: string) => {
        cspViolations.push(text);
      });
      await context.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) => {
          (window as unknown as { __cspViolation(t: string): void }).__cspViolation(`${e.violatedDirective} ${e.blockedURI} at ${document.location.pathname}`);
        });
      });
      context.on('request', (r) => seenUrls.push(r.url()));
      context.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
      });
      return context;
    },
    async signIn(context, user) {
      const page = await context.newPage();
      const url = stack().controlRoom.url;
      await page.goto(`${url}/console`);
      // Signed out, the console sends a person to its sign-in form.
      if (new URL(page.url()).pathname !== '/console/login') throw new Error(`signed out, /console led to ${new URL(page.url()).pathname}, not /console/login`);
      await page.getByLabel('Username').fill(user.username);
      await page.getByLabel('Password').fill(user.password);
      await page.getByLabel('Authenticator code').fill(await user.nextCode());
      await Promise.all([page.waitForURL(`${url}/console`), page.getByRole('button', { name: 'Sign in' }).click()]);
      return page;
    },
    async held(context, page) {
      const cookies = await context.cookies();
      const storage = await page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } }));
      return [JSON.stringify(cookies), storage, seenUrls.join('\n')].join('\n');
    },
  };
}

/** A form post as console.js makes it: the session's cookies and its CSRF token (from the page's meta tag). */
export async function postAs(
  context: BrowserContext,
  page: Page,
  url: string,
  fields: Record<string, string>,
): Promise<{ status: number; code: string | undefined; location: string | null }> {
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  const csrf = await page.locator('meta[name="orderly-csrf"]').getAttribute('content');
  const response = await fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': csrf ?? '' },
    body: new URLSearchParams(fields).toString(),
  });
  const text = await response.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: response.status, code, location: response.headers.get('location') };
}

const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's serious and critical violations in the page (evaluated over DevTools, so the page's CSP stays as it is). */
export async function accessibilityProblems(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const axe = (
      window as unknown as { axe: { run(ctx: Document, opts: object): Promise<{ violations: { id: string; impact: string; nodes: unknown[] }[] }> } }
    ).axe;
    return axe.run(document, { resultTypes: ['violations'] });
  });
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.nodes.length})`);
}
