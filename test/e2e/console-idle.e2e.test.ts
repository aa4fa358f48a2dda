import { Browser, chromium } from 'playwright-core';
import { CHROMIUM, createUser, Stack, startStack, TestUser } from '../harness';

/**
 * Idle logoff in the browser: with a one-minute idle limit the console warns before the end,
 * leaves the page at the limit, and the server has ended the session (the cookie opens nothing).
 */
let stack: Stack;
let browser: Browser;
let operator: TestUser;

beforeAll(async () => {
  stack = await startStack({ vault: false, controlRoomEnv: { ORDERLY_SESSION_IDLE_MINUTES: '1' } });
  operator = await createUser(stack, 'idle-operator', ['operator']);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

test('an idle console warns, then signs out, and the server session is gone', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${stack.controlRoom.url}/console/login`);
  await page.getByLabel('Username').fill(operator.username);
  await page.getByLabel('Password').fill(operator.password);
  await page.getByLabel('Authenticator code').fill(await operator.nextCode());
  await Promise.all([page.waitForURL(`${stack.controlRoom.url}/console`), page.getByRole('button', { name: 'Sign in' }).click()]);
  const signedInAt = Date.now();
  expect(await page.locator('#idle-warning').isHidden()).toBe(true);
  await page.locator('#idle-warning').waitFor({ state: 'visible', timeout: 60_000 });
  // The warning comes before the end, with time left to stay.
  expect(Date.now() - signedInAt).toBeLessThan(60_000);
  // The page leaves at the limit (its own timer, or the live stream told it the session ended).
  await page.waitForURL(/\/console\/login\?reason=(idle|expired)$/, { timeout: 30_000 });
  await expect(page.getByRole('status').first().textContent()).resolves.toContain('signed out');
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  const response = await fetch(`${stack.controlRoom.url}/v1/me`, { headers: { cookie } });
  expect(response.status).toBe(401);
  await page.goto(`${stack.controlRoom.url}/console/runs`);
  expect(new URL(page.url()).pathname).toBe('/console/login');
  await context.close();
}, 120_000);
