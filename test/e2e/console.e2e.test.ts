import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { BrowserContext, Page } from 'playwright-core';
import { can, Permission } from '../../control-room/src/access/permissions';
import { permissionsOf, Role } from '../../control-room/src/access/roles';
import { NAV } from '../../control-room/src/console/layout';
import { createUser, REPO, setCredential, Stack, startStack, TestUser } from '../harness';
import { accessibilityProblems, ConsoleBrowser, launchConsoleBrowser } from './console-browser';

/**
 * The web console in Debian Chromium against the real stack: each role's pages and navigation
 * follow the role table, no CSP violation anywhere, a canary run's synthetic PHI reaches no page,
 * stream, URL, cookie or storage, hostile text renders inert, CSRF is refused, the overview is
 * live, and a bulk requeue from the console is audited with its reason.
 */
const ARTIFACTS = join(REPO, '.orderly', 'test-artifacts', 'console');
const CANARY = { memberId: 'ZZCANARY4417', fullName: 'Canary Q Fakeperson', dateOfBirth: '1900-11-23' };
const CANARY_VALUES = [
  CANARY.memberId,
  CANARY.fullName,
  CANARY.dateOfBirth,
  encodeURIComponent(CANARY.fullName),
  Buffer.from(CANARY.memberId).toString('base64'),
];
const ROLES_UNDER_TEST: Role[] = ['operator', 'developer', 'approver', 'security', 'auditor'];

let stack: Stack;
let cb: ConsoleBrowser;
const people: Partial<Record<Role, TestUser>> = {};

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  stack = await startStack({ runner: true });
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'leaky'));
  await setCredential(stack.vault!, 'leaky', 'api_key', `synthetic-key-${Date.now().toString(36)}-not-real`);
  for (const role of ROLES_UNDER_TEST) people[role] = await createUser(stack, `${role}-c`, [role]);
  cb = await launchConsoleBrowser(() => stack);
}, 120_000);
afterAll(async () => {
  await cb?.browser.close();
  await stack?.close();
});

/** Reads the console's event stream for `ms` with a browser context's cookies. */
async function readStream(context: BrowserContext, ms: number): Promise<{ status: number; text: string }> {
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  const controller = new AbortController();
  const response = await fetch(`${stack.controlRoom.url}/console/events`, { headers: { cookie, accept: 'text/event-stream' }, signal: controller.signal });
  let text = '';
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    const reader = response.body!.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
  } catch {
    // aborted after `ms`
  } finally {
    clearTimeout(timer);
  }
  return { status: response.status, text };
}

describe.each(ROLES_UNDER_TEST)('signed in as %s', (role) => {
  test('navigation and pages follow the role table; forbidden pages are refused; pages pass axe', async () => {
    const context = await cb.newContext();
    const page = await cb.signIn(context, people[role]!);
    const permissions = permissionsOf([role]);
    const principal = { kind: 'user' as const, id: 'x', actor: 'x', permissions };
    const expected = NAV.filter((n) => can(principal, n.permission)).map((n) => n.label);
    const shown = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
    expect(shown).toEqual(expected);
    for (const entry of NAV) {
      const response = await page.goto(`${stack.controlRoom.url}${entry.path}`);
      if (can(principal, entry.permission)) {
        expect({ page: entry.path, status: response!.status() }).toEqual({ page: entry.path, status: 200 });
        await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe(entry.label);
        await page.screenshot({ path: join(ARTIFACTS, `${role}-${entry.label.toLowerCase().replace(/\s+/g, '-')}.png`), fullPage: true });
        expect({ page: entry.path, problems: await accessibilityProblems(page) }).toEqual({ page: entry.path, problems: [] });
      } else {
        expect({ page: entry.path, status: response!.status() }).toEqual({ page: entry.path, status: 403 });
        await expect(page.getByRole('alert').first().textContent()).resolves.toContain('ORDERLY_E_FORBIDDEN');
      }
    }
    // Buttons follow the role too: only dlq.manage sees requeue and discard.
    if (can(principal, 'dlq.read' as Permission)) {
      await page.goto(`${stack.controlRoom.url}/console/dead-letters`);
      expect(await page.getByRole('button', { name: 'Requeue all matching' }).count()).toBe(can(principal, 'dlq.manage') ? 1 : 0);
    }
    await context.close();
  }, 90_000);
});

describe('as the operator', () => {
  let context: BrowserContext;
  let page: Page;
  let canaryRunId: string;
  beforeAll(async () => {
    context = await cb.newContext();
    page = await cb.signIn(context, people.operator!);
  }, 60_000);
  afterAll(async () => {
    await context?.close();
  });

  test('the overview updates without a reload when a run finishes (the canary run, dead-lettered)', async () => {
    const counter = page.locator('[data-live="demo.deadLettered"]');
    const before = Number(await counter.textContent());
    await page.locator('[data-live-stream][data-live-seq]:not([data-live-seq="0"])').waitFor({ timeout: 10_000 });
    const loads: string[] = [];
    page.on('load', () => loads.push(page.url()));
    const run = await stack.startRun({ bot: 'leaky', input: { ...CANARY, mode: 'throw' } });
    canaryRunId = run.id;
    await expect(
      page.waitForFunction((n) => Number(document.querySelector('[data-live="demo.deadLettered"]')?.textContent) === n, before + 1, { timeout: 45_000 }),
    ).resolves.toBeTruthy();
    expect(loads).toEqual([]);
    await expect(page.locator('#recent-runs a[href$="' + canaryRunId + '"]').count()).resolves.toBe(1);
  }, 60_000);

  test("the canary's PHI appears in no page, stream, URL, cookie or storage", async () => {
    const htmls: string[] = [];
    for (const path of ['/console', '/console/runs', `/console/runs/${canaryRunId}`, `/console/runs/${canaryRunId}?level=debug`, '/console/dead-letters']) {
      await page.goto(`${stack.controlRoom.url}${path}`);
      htmls.push(await page.content());
    }
    // The detail page did render the run's (masked) log and error.
    expect(htmls[2]).toContain('[PHI]');
    const stream = await readStream(context, 2500);
    expect(stream.status).toBe(200);
    expect(stream.text).toContain('event: overview');
    const everywhere = [...htmls, stream.text, await cb.held(context, page)].join('\n');
    expect(CANARY_VALUES.filter((v) => everywhere.includes(v))).toEqual([]);
  }, 60_000);

  test('hostile log lines and filter values render as inert text', async () => {
    const db = new Client({ connectionString: stack.databaseUrl });
    await db.connect();
    try {
      await db.query("INSERT INTO run_logs (run_id, attempt, seq, at, level, source, msg) VALUES ($1, 99, 1, now(), 'error', 'bot', $2)", [
        canaryRunId,
        '<script>window.__pwned = 1</script><img src=x id=pwn-img><a href="javascript:window.__pwned=2">click</a>',
      ]);
    } finally {
      await db.end();
    }
    await page.goto(`${stack.controlRoom.url}/console/runs/${canaryRunId}`);
    await expect(page.locator('pre.log').textContent()).resolves.toContain('<script>window.__pwned = 1</script>');
    expect(await page.locator('#pwn-img').count()).toBe(0);
    expect(await page.locator('a[href^="javascript:"]').count()).toBe(0);
    // Schedule and bot names cannot be hostile (the API's schemas and a database check refuse
    // them); the schedules page still renders whatever the row holds through the escaping template.
    const created = await stack.api('POST', '/v1/schedules', { name: 'yearly-canary', bot: 'leaky', cron: '0 0 1 1 *', input: { ...CANARY, mode: 'throw' } });
    expect(created.status).toBe(201);
    await page.goto(`${stack.controlRoom.url}/console/schedules`);
    await expect(page.locator('tbody').textContent()).resolves.toContain('yearly-canary');
    // And the operator pauses it from the console.
    await Promise.all([page.waitForURL(/done=paused/), page.getByRole('button', { name: 'Pause' }).click()]);
    expect((await stack.api('GET', `/v1/schedules/${created.body.id}`)).body.paused).toBe(true);
    expect(await page.content()).not.toContain(CANARY.memberId);
    await page.goto(`${stack.controlRoom.url}/console/dead-letters?bot=${encodeURIComponent('"><script>window.__pwned=3</script>')}`);
    await expect(page.getByLabel('Bot').inputValue()).resolves.toBe('"><script>window.__pwned=3</script>');
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  test('a state-changing request without the CSRF token is refused and changes nothing', async () => {
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    for (const headers of [{}, { 'x-csrf-token': 'not-the-token-of-this-session' }] as Record<string, string>[]) {
      const response = await fetch(`${stack.controlRoom.url}/console/dead-letters/${canaryRunId}/discard`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: 'reason=forged+request',
      });
      expect(response.status).toBe(403);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('ORDERLY_E_CSRF_TOKEN_INVALID');
    }
    expect((await stack.api('GET', `/v1/runs/${canaryRunId}`)).body.status).toBe('dead_lettered');
  });

  test('a bulk requeue from the console previews the count, succeeds and is audited with the reason', async () => {
    const reason = `console bulk requeue ${Date.now()}`;
    await page.goto(`${stack.controlRoom.url}/console/dead-letters?bot=leaky`);
    await page.getByLabel('Reason for requeueing all matching').fill(reason);
    await page.getByRole('button', { name: 'Preview count' }).click();
    await page.waitForFunction(() => /preview=/.test(location.search) || !document.getElementById('flash')?.hidden);
    expect(await page.locator('#flash').textContent()).toBe('');
    await expect(page.getByRole('status').filter({ hasText: 'match this filter' }).textContent()).resolves.toMatch(/^1 dead letter/);
    expect((await stack.api('GET', `/v1/runs/${canaryRunId}`)).body.status).toBe('dead_lettered');
    page.once('dialog', (d) => void d.accept());
    await page.getByLabel('Reason for requeueing all matching').fill(reason);
    await page.getByRole('button', { name: 'Requeue all matching' }).click();
    await page.waitForFunction(() => /requeued=/.test(location.search) || !document.getElementById('flash')?.hidden);
    expect(await page.locator('#flash').textContent()).toBe('');
    expect(new URL(page.url()).searchParams.get('requeued')).toBe('1');
    const run = (await stack.api('GET', `/v1/runs/${canaryRunId}`)).body as { status: string };
    expect(['waiting', 'active', 'dead_lettered']).toContain(run.status);
    const events = (await stack.api('GET', '/v1/audit/events?limit=1000')).body.events as {
      action: string;
      actor: string;
      target: string;
      outcome: string;
      details: { reason?: string };
    }[];
    expect(events.filter((e) => e.action === 'dlq.requeue' && e.target === `run:${canaryRunId}`)).toEqual([
      expect.objectContaining({ actor: `user:${people.operator!.username}`, outcome: 'success', details: expect.objectContaining({ reason }) }),
    ]);
  }, 60_000);
});

describe('as the auditor', () => {
  test('verifies the chain and exports the log from the console', async () => {
    const context = await cb.newContext();
    const page = await cb.signIn(context, people.auditor!);
    await page.goto(`${stack.controlRoom.url}/console/audit?action=dlq.requeue`);
    expect(await page.locator('tbody tr').count()).toBeGreaterThan(0);
    await page.getByRole('link', { name: 'Verify the chain' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'intact' }).textContent()).resolves.toMatch(/The chain is intact: \d+ event/);
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const jsonl = await (await fetch(`${stack.controlRoom.url}/console/audit/export?format=jsonl`, { headers: { cookie } })).text();
    expect(
      jsonl
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { action: string }).action),
    ).toContain('dlq.requeue');
    expect(CANARY_VALUES.filter((v) => jsonl.includes(v))).toEqual([]);
    await context.close();
  }, 60_000);
});

describe('after every page above', () => {
  test('the CSP blocks an injected inline script, and the collector sees it (so zero below means zero)', async () => {
    const before = cb.cspViolations.length;
    const context = await cb.newContext();
    const page = await context.newPage();
    await page.goto(`${stack.controlRoom.url}/console/login`);
    await page.evaluate(() => {
      const script = document.createElement('script');
      script.textContent = 'window.__ran = 1';
      document.body.appendChild(script);
    });
    await expect(
      page
        .waitForFunction(() => true)
        .then(async () => {
          for (let i = 0; i < 50 && cb.cspViolations.length === before; i++) await new Promise((resolve) => setTimeout(resolve, 100));
          return cb.cspViolations.length - before;
        }),
    ).resolves.toBeGreaterThan(0);
    expect(await page.evaluate(() => (window as unknown as { __ran?: number }).__ran)).toBeUndefined();
    await context.close();
    // This test's own violations are not the console's.
    cb.cspViolations.splice(before);
  });

  test('zero CSP violations across the whole run', () => {
    expect(cb.cspViolations).toEqual([]);
  });
});
