import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { BrowserContext, Page } from 'playwright-core';
import { can, Permission } from '../../control-room/src/access/permissions';
import { permissionsOf, Role } from '../../control-room/src/access/roles';
import { runnerTokenPath } from '@orderly/control-room';
import { createUser, REPO, setCredential, Stack, startStack, TestUser } from '../harness';
import { accessibilityProblems, ConsoleBrowser, launchConsoleBrowser, postAs } from './console-browser';

/**
 * The console's operator and security actions in Debian Chromium against the real stack: each is
 * offered only to a role that may use it and refused (403) to the others; each changes what the API
 * would change and is audited; step-up where the API needs it; one-time values and revealed PHI
 * appear in the page only; hostile text is inert; and no CSP violation anywhere.
 */
const ARTIFACTS = join(REPO, '.orderly', 'test-artifacts', 'console');
const CANARY = { memberId: 'ZZCANARY5521', fullName: 'Canary R Fakeperson', dateOfBirth: '1900-12-24' };
const CANARY_VALUES = [CANARY.memberId, CANARY.fullName, CANARY.dateOfBirth, encodeURIComponent(CANARY.fullName)];
/** A 1x1 PNG: a masked screenshot needs no content to be served. */
const ONE_PIXEL_PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
const ROLES: Role[] = ['operator', 'developer', 'approver', 'security', 'auditor'];

let stack: Stack;
let cb: ConsoleBrowser;
let db: Client;
const people: Partial<Record<Role, TestUser>> = {};
let secondSecurity: TestUser;
let canaryRunId: string;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // No runner: runs stay waiting, so they can be cancelled and followed. `other` is production.
  stack = await startStack({ controlRoomEnv: { ORDERLY_PROD_SEGMENTS: 'other' } });
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'leaky'));
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'sleepy'));
  await setCredential(stack.vault!, 'leaky', 'api_key', `synthetic-key-${Date.now().toString(36)}-not-real`);
  for (const role of ROLES) people[role] = await createUser(stack, `${role}-a`, [role]);
  secondSecurity = await createUser(stack, 'security-b', ['security']);
  canaryRunId = (await stack.startRun({ bot: 'leaky', segment: 'demo', input: { ...CANARY, mode: 'throw' } })).id;
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  cb = await launchConsoleBrowser(() => stack);
}, 180_000);
afterAll(async () => {
  await cb?.browser.close();
  await db?.end();
  await stack?.close();
});

const url = (path: string) => `${stack.controlRoom.url}${path}`;
type AuditEvent = { action: string; actor: string; target: string; outcome: string; details: Record<string, unknown> };
const auditEvents = async (): Promise<AuditEvent[]> => (await stack.api('GET', '/v1/audit/events?limit=5000')).body.events;
/** After a form post through console.js: the next page, or the error banner. */
const settled = (page: Page) =>
  page.waitForFunction(
    () =>
      document.readyState === 'complete' &&
      (/done=|cancelPreview=|cancelled=/.test(location.search) || !document.getElementById('flash')?.hidden || !document.getElementById('shown')?.hidden),
  );

describe('each role is offered only its actions, and the others are refused', () => {
  /** What a role sees offered, page by page (the role table: README's permission table). */
  const OFFERS: { page: () => string; permission: Permission; offer: (p: Page) => ReturnType<Page['locator']> }[] = [
    { page: () => '/console/runs', permission: 'runs.cancel', offer: (p) => p.getByRole('button', { name: 'Cancel all matching' }) },
    { page: () => `/console/runs/${canaryRunId}`, permission: 'runs.read_phi.dev', offer: (p) => p.getByRole('button', { name: 'Reveal input and result' }) },
    { page: () => '/console/schedules', permission: 'schedules.manage', offer: (p) => p.getByRole('button', { name: 'Create schedule' }) },
    { page: () => '/console/bots', permission: 'packages.promote', offer: (p) => p.getByRole('link', { name: /Review and promote sleepy/ }) },
    { page: () => '/console/credentials', permission: 'credentials.manage', offer: (p) => p.getByRole('button', { name: 'Rotate' }) },
    { page: () => '/console/runners', permission: 'runners.manage', offer: (p) => p.getByRole('button', { name: 'Register runner' }) },
    { page: () => '/console/people', permission: 'users.manage', offer: (p) => p.getByRole('button', { name: 'Add person' }) },
  ];
  /** Each action with a body that would pass validation: a role without the permission is refused first. */
  const ACTIONS: { path: () => string; permission: Permission; fields: Record<string, string> }[] = [
    { path: () => '/console/runs/cancel', permission: 'runs.cancel', fields: { bot: 'sleepy', intent: 'cancel', reason: 'refusal probe' } },
    { path: () => `/console/runs/${canaryRunId}/reveal`, permission: 'runs.read_phi.dev', fields: { reason: 'refusal probe' } },
    { path: () => '/console/schedules', permission: 'schedules.manage', fields: { name: 'probe', bot: 'sleepy', segment: 'demo', everySeconds: '3600' } },
    { path: () => '/console/bots/sleepy/1.0.0/promote', permission: 'packages.promote', fields: { ticket: 'CHG-1' } },
    { path: () => '/console/credentials/leaky/api_key/rotate', permission: 'credentials.manage', fields: { value: 'probe-value-not-real' } },
    { path: () => '/console/credentials/leaky/revoke-runs', permission: 'credentials.manage', fields: {} },
    { path: () => '/console/runners', permission: 'runners.manage', fields: { name: 'probe-runner', segment: 'demo' } },
    { path: () => `/console/people/${people.auditor!.id}/disable`, permission: 'users.manage', fields: {} },
    { path: () => '/console/people', permission: 'users.manage', fields: { username: 'probe-person', roles: 'auditor' } },
  ];

  test.each(ROLES)(
    'as %s',
    async (role) => {
      const context = await cb.newContext();
      const page = await cb.signIn(context, people[role]!);
      const principal = { kind: 'user' as const, id: 'x', actor: 'x', permissions: permissionsOf([role]) };
      for (const o of OFFERS) {
        const response = await page.goto(url(o.page()));
        if (response!.status() === 403) continue; // the page itself is not this role's (console.e2e checks pages)
        expect({ page: o.page(), offered: (await o.offer(page).count()) > 0 }).toEqual({ page: o.page(), offered: can(principal, o.permission) });
        await page.screenshot({ path: join(ARTIFACTS, `actions-${role}-${o.page().split('/')[2] ?? 'overview'}.png`), fullPage: true });
      }
      await page.goto(url('/console'));
      for (const a of ACTIONS.filter((x) => !can(principal, x.permission))) {
        const answer = await postAs(context, page, url(a.path()), a.fields);
        expect({ path: a.path(), status: answer.status, code: answer.code }).toEqual({ path: a.path(), status: 403, code: 'ORDERLY_E_FORBIDDEN' });
      }
      await context.close();
    },
    90_000,
  );
});

describe('as the operator', () => {
  let context: BrowserContext;
  let page: Page;
  beforeAll(async () => {
    context = await cb.newContext();
    page = await cb.signIn(context, people.operator!);
  }, 60_000);
  afterAll(async () => {
    await context?.close();
  });

  test("the run's log follows live; hostile lines are inert text", async () => {
    await page.goto(url(`/console/runs/${canaryRunId}`));
    await expect(page.locator('#log-follow').textContent()).resolves.toContain('Following the log');
    const loads: string[] = [];
    page.on('load', () => loads.push(page.url()));
    await page.waitForTimeout(1500); // the stream is open
    await db.query(
      "INSERT INTO run_logs (run_id, attempt, seq, at, level, source, msg) VALUES ($1, 1, 900, now(), 'info', 'bot', $2), ($1, 1, 901, now(), 'error', 'bot', $3)",
      [canaryRunId, 'followed line one', '<script>window.__pwned = 1</script><img src=x id=pwn-img><a href="javascript:window.__pwned=2">x</a>'],
    );
    await page.waitForFunction(() => (document.querySelector('pre.log')?.textContent ?? '').includes('followed line one'), undefined, { timeout: 15_000 });
    await expect(page.locator('pre.log').textContent()).resolves.toContain('<script>window.__pwned = 1</script>');
    expect(await page.locator('#pwn-img').count()).toBe(0);
    expect(await page.locator('a[href^="javascript:"]').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(loads).toEqual([]);
  }, 60_000);

  test('reveal: the canary is in no page until revealed with a reason, then in this page only, and the read is audited', async () => {
    // A masked screenshot of the run, uploaded as its runner would (the run is active meanwhile).
    await db.query("UPDATE runs SET status = 'active', attempts = 1 WHERE id = $1", [canaryRunId]);
    const runnerToken = readFileSync(runnerTokenPath(join(stack.dataDir, 'secrets'), 'demo'), 'utf8').trim();
    const uploaded = await fetch(url(`/v1/runner/runs/${canaryRunId}/screenshots`), {
      method: 'POST',
      headers: { authorization: `Bearer ${runnerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ attempt: 1, name: 'form', png: ONE_PIXEL_PNG }),
    });
    expect(uploaded.status).toBe(201);
    await page.goto(url(`/console/runs/${canaryRunId}`));
    expect(CANARY_VALUES.filter((v) => page.url().includes(v))).toEqual([]);
    const before = await page.content();
    expect(CANARY_VALUES.filter((v) => before.includes(v))).toEqual([]);
    // Without a reason the browser does not send it; a reason too short is refused by the server.
    const short = await postAs(context, page, url(`/console/runs/${canaryRunId}/reveal`), { reason: 'x' });
    expect([short.status, short.code]).toEqual([400, 'ORDERLY_E_REASON_REQUIRED']);
    const reason = `console reveal ${Date.now()} ticket CHG-9`;
    await page.getByLabel(/Reason for reading this run/).fill(reason);
    await page.getByRole('button', { name: 'Reveal input and result' }).click();
    await page.locator('#shown').waitFor({ state: 'visible' });
    await expect(page.locator('#shown').textContent()).resolves.toContain(CANARY.memberId);
    // The screenshot loads through its signed link; the link opens nothing for another person or with another signature.
    const img = page.locator('#shown img');
    await expect(page.waitForFunction(() => (document.querySelector('#shown img') as HTMLImageElement | null)?.naturalWidth === 1)).resolves.toBeTruthy();
    const link = (await img.getAttribute('src'))!;
    expect(
      (
        await fetch(url(link.replace(/sig=[^&]+/, 'sig=hmac%3A00')), {
          headers: { cookie: (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ') },
        })
      ).status,
    ).toBe(400);
    expect((await fetch(url(link), { headers: { authorization: `Bearer ${people.developer!.token}` } })).status).toBe(400);
    await page.screenshot({ path: join(ARTIFACTS, 'actions-operator-revealed.png'), fullPage: true });
    const reads = (await stack.api('GET', `/v1/access/phi-reads?runId=${canaryRunId}`, undefined, people.auditor!.token)).body.reads as {
      actor: string;
      reason: string;
      part: string;
    }[];
    expect(reads.map((r) => r.part).sort()).toEqual(['result', 'screenshot']);
    expect(reads.every((r) => r.actor === `user:${people.operator!.username}` && r.reason === reason)).toBe(true);
    // Nowhere else: not in a URL, cookie or storage; and gone on reload.
    const held = await cb.held(context, page);
    expect(CANARY_VALUES.filter((v) => held.includes(v))).toEqual([]);
    await page.reload();
    const after = await page.content();
    expect(CANARY_VALUES.filter((v) => after.includes(v))).toEqual([]);
  }, 60_000);

  test('bulk cancel previews the count, cancels with a reason, and audits each run', async () => {
    const runs = await Promise.all([1, 2, 3].map(() => stack.startRun({ bot: 'sleepy', segment: 'demo', input: {} })));
    const prod = await stack.startRun({ bot: 'sleepy', segment: 'other', input: {} }).catch(() => undefined);
    await page.goto(url('/console/runs?bot=sleepy&segment=demo'));
    await page.getByRole('button', { name: 'Preview cancel count' }).click();
    await settled(page);
    await expect(page.getByRole('status').filter({ hasText: 'match this filter' }).textContent()).resolves.toMatch(/^3 waiting or active run/);
    const reason = `console bulk cancel ${Date.now()}`;
    page.once('dialog', (d) => void d.accept());
    await page.getByLabel('Reason for cancelling all matching').fill(reason);
    await page.getByRole('button', { name: 'Cancel all matching' }).click();
    await page.waitForFunction(() => /cancelled=/.test(location.search) || !document.getElementById('flash')?.hidden);
    expect(await page.locator('#flash').textContent()).toBe('');
    expect(new URL(page.url()).searchParams.get('cancelled')).toBe('3');
    for (const r of runs) expect((await stack.api('GET', `/v1/runs/${r.id}`)).body.status).toBe('cancelled');
    if (prod) expect((await stack.api('GET', `/v1/runs/${prod.id}`)).body.status).toBe('waiting');
    const events = (await auditEvents()).filter((e) => e.action === 'run.cancel' && e.details.reason === reason);
    expect(events.map((e) => e.target).sort()).toEqual(runs.map((r) => `run:${r.id}`).sort());
    expect(events.every((e) => e.actor === `user:${people.operator!.username}`)).toBe(true);
  }, 60_000);

  test("a console action without the session's CSRF token is refused and changes nothing", async () => {
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    for (const headers of [{}, { 'x-csrf-token': 'not-the-token-of-this-session' }] as Record<string, string>[]) {
      const response = await fetch(url('/console/schedules'), {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: 'name=forged&bot=sleepy&segment=demo&everySeconds=3600',
      });
      expect(response.status).toBe(403);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('ORDERLY_E_CSRF_TOKEN_INVALID');
    }
    expect((await stack.api('GET', '/v1/schedules/forged')).status).toBe(404);
  });

  test('creates a schedule; a hostile name is refused and shown as inert text', async () => {
    await page.goto(url('/console/schedules'));
    const form = page.getByRole('form', { name: 'New schedule' });
    await form.getByLabel('Name').fill('<img src=x id=pwn-sched onerror="window.__pwned=4">');
    await form.getByLabel('Bot').fill('sleepy');
    await form.getByLabel('Or every N seconds').fill('3600');
    await form.getByRole('button', { name: 'Create schedule' }).click();
    await settled(page);
    const flash = await page.locator('#flash').textContent();
    expect(page.url()).not.toContain('done=created');
    expect(flash).toMatch(/^ORDERLY_E_/);
    expect(await page.locator('#pwn-sched').count()).toBe(0);
    await form.getByLabel('Name').fill('console-hourly');
    await form.getByRole('button', { name: 'Create schedule' }).click();
    await page.waitForURL(/done=created/);
    await expect(page.locator('tbody').textContent()).resolves.toContain('console-hourly');
    const created = (await stack.api('GET', '/v1/schedules/console-hourly')).body as { id: string; everySeconds: number; createdBy: string };
    expect(created).toMatchObject({ everySeconds: 3600, createdBy: `user:${people.operator!.username}` });
    expect((await auditEvents()).filter((e) => e.action === 'schedule.create' && e.target === `schedule:${created.id}`)).toHaveLength(1);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  }, 60_000);
});

describe('as the approver', () => {
  test('promotes after reading the permission diff; with a stale second factor, steps up first', async () => {
    const context = await cb.newContext();
    const page = await cb.signIn(context, people.approver!);
    // The sign-in was a second factor just now: make it 10 minutes old, so promotion asks for a step-up.
    await db.query("UPDATE sessions SET stepped_up_at = now() - interval '10 minutes' WHERE user_id = $1", [people.approver!.id]);
    await page.goto(url('/console/bots'));
    await Promise.all([page.waitForURL(/\/promote$/), page.getByRole('link', { name: /Review and promote sleepy 1\.0\.0/ }).click()]);
    await expect(page.getByRole('table', { name: 'Permissions this version adds' }).textContent()).resolves.toContain('demo');
    expect(await accessibilityProblems(page)).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'actions-approver-promote.png'), fullPage: true });
    const promote = async () => {
      await page.getByLabel(/I have read the permissions/).check();
      await page.getByLabel('Change ticket').fill('CHG-CONSOLE-1');
      await page.getByRole('button', { name: 'Promote to prod' }).click();
    };
    await promote();
    await page.waitForURL(/\/console\/step-up\?next=/);
    expect(await accessibilityProblems(page)).toEqual([]);
    await page.getByLabel('Authenticator code').fill(await people.approver!.nextCode());
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.waitForURL(/\/promote\?done=stepped-up/);
    await promote();
    await page.waitForURL(/\/console\/bots\?done=promoted/);
    const sleepy = ((await stack.api('GET', '/v1/packages')).body.packages as { name: string; channels: string[] }[]).find((p) => p.name === 'sleepy');
    expect(sleepy!.channels).toContain('prod');
    expect(
      (await auditEvents()).filter((e) => e.action === 'package.promote' && e.outcome === 'success' && e.actor === `user:${people.approver!.username}`),
    ).toHaveLength(1);
    await context.close();
  }, 90_000);
});

describe('as an operator bound to demo', () => {
  test('sees, cancels and reveals nothing of a production run', async () => {
    const bound = await createUser(stack, 'operator-demo-a', ['operator@demo']);
    // sleepy is in prod now (the approver above): a run in the production segment `other`.
    const prodRun = await stack.startRun({ bot: 'sleepy', segment: 'other', input: {} });
    const context = await cb.newContext();
    const page = await cb.signIn(context, bound);
    // The overview and its stream: demo's counts only, no production run.
    await page.locator('[data-live-stream][data-live-seq]:not([data-live-seq="0"])').waitFor({ timeout: 10_000 });
    expect(await page.locator('[data-live="demo.waiting"]').count()).toBe(1);
    expect(await page.locator('[data-live^="other."]').count()).toBe(0);
    expect(await page.content()).not.toContain(prodRun.id);
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const controller = new AbortController();
    const stream = await fetch(url('/console/events'), { headers: { cookie }, signal: controller.signal });
    const reader = stream.body!.getReader();
    let text = '';
    const until = Date.now() + 2500;
    while (!text.includes('event: overview') && Date.now() < until) text += Buffer.from((await reader.read()).value ?? []).toString('utf8');
    controller.abort();
    expect(text).toContain('"demo.waiting"');
    expect(text).not.toContain('"other.');
    expect(text).not.toContain(prodRun.id);
    await page.goto(url('/console/runs'));
    expect(await page.content()).not.toContain(prodRun.id);
    expect((await page.goto(url(`/console/runs/${prodRun.id}`)))!.status()).toBe(404);
    await page.goto(url('/console/runs'));
    const preview = await postAs(context, page, url('/console/runs/cancel'), { segment: 'other', intent: 'preview' });
    expect(preview.location).toContain('cancelPreview=0');
    const cancel = await postAs(context, page, url('/console/runs/cancel'), { segment: 'other', intent: 'cancel', reason: 'not mine to cancel' });
    expect(cancel.location).toContain('cancelled=0');
    const reveal = await postAs(context, page, url(`/console/runs/${prodRun.id}/reveal`), { reason: 'not mine to read' });
    expect([reveal.status, reveal.code]).toEqual([404, 'ORDERLY_E_NOT_FOUND']);
    const discard = await postAs(context, page, url(`/console/dead-letters/${prodRun.id}/discard`), { reason: 'not mine to discard' });
    expect([discard.status, discard.code]).toEqual([404, 'ORDERLY_E_NOT_FOUND']);
    expect((await stack.api('GET', `/v1/runs/${prodRun.id}`)).body.status).toBe('waiting');
    await context.close();
  }, 60_000);
});

describe('as the security team', () => {
  let context: BrowserContext;
  let page: Page;
  beforeAll(async () => {
    context = await cb.newContext();
    page = await cb.signIn(context, people.security!);
  }, 60_000);
  afterAll(async () => {
    await context?.close();
  });

  test('credentials: status, rotate with a value never echoed or kept, revoke runs', async () => {
    await page.goto(url('/console/credentials'));
    expect(await accessibilityProblems(page)).toEqual([]);
    const row = page.locator('tr', { hasText: 'api_key' });
    await expect(row.textContent()).resolves.toMatch(/leaky.*api_key.*yes/s);
    const field = row.locator('input[name="value"]');
    expect(await field.getAttribute('type')).toBe('password');
    expect(await field.getAttribute('autocomplete')).toBe('off');
    const value = `rotated-synthetic-${Date.now().toString(36)}`;
    await field.fill(value);
    await row.getByRole('button', { name: 'Rotate' }).click();
    await page.waitForURL(/done=rotated/);
    const status = ((await stack.api('GET', '/v1/credentials?bot=leaky')).body.credentials as { name: string; version: number; rotatedBy: string }[]).find(
      (c) => c.name === 'api_key',
    );
    expect(status).toMatchObject({ version: 2, rotatedBy: `user:${people.security!.username}` });
    expect((await page.content()).includes(value)).toBe(false);
    expect((await cb.held(context, page)).includes(value)).toBe(false);
    expect((await auditEvents()).some((e) => JSON.stringify(e).includes(value))).toBe(false);
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Revoke runs of leaky' }).click();
    await page.waitForURL(/done=runs-revoked/);
    expect((await auditEvents()).filter((e) => e.action === 'credential.revoke_runs' && e.actor === `user:${people.security!.username}`)).toHaveLength(1);
  }, 60_000);

  test('runners: register shows the token once in the page; revoke', async () => {
    await page.goto(url('/console/runners'));
    const form = page.getByRole('form', { name: 'Register a runner' });
    await form.getByLabel('Name').fill('console-runner-1');
    // The runner makes its key pair (orderly runner keygen); the console takes only the public half.
    const runnerKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await form.getByLabel(/Report-signing public key/).fill(runnerKey);
    await form.getByRole('button', { name: 'Register runner' }).click();
    await page.locator('#shown').waitFor({ state: 'visible' });
    const token = (await page.locator('#shown pre').first().textContent())!;
    expect(token.length).toBeGreaterThan(20);
    expect((await cb.held(context, page)).includes(token)).toBe(false);
    const runner = ((await stack.api('GET', '/v1/runners')).body.runners as { id: string; name: string; revoked: boolean }[]).find(
      (r) => r.name === 'console-runner-1',
    );
    expect(runner).toMatchObject({ revoked: false });
    await page.reload();
    expect((await page.content()).includes(token)).toBe(false);
    page.once('dialog', (d) => void d.accept());
    await page.locator('tr', { hasText: 'console-runner-1' }).getByRole('button', { name: 'Revoke' }).click();
    await page.waitForURL(/done=runner-revoked/);
    expect(
      ((await stack.api('GET', '/v1/runners')).body.runners as { name: string; revoked: boolean }[]).find((r) => r.name === 'console-runner-1')!.revoked,
    ).toBe(true);
  }, 60_000);

  test('people: add (enrolment secret shown once), set roles, a sensitive grant waits for a second person, unlock, disable', async () => {
    await page.goto(url('/console/people'));
    expect(await accessibilityProblems(page)).toEqual([]);
    const form = page.getByRole('form', { name: 'Add a person' });
    await form.getByLabel('Username').fill('<b id=pwn-user>x</b>');
    await form.getByLabel(/^Roles/).fill('operator');
    await form.getByRole('button', { name: 'Add person' }).click();
    await settled(page);
    await expect(page.locator('#flash').textContent()).resolves.toMatch(/^ORDERLY_E_/);
    expect(await page.locator('#pwn-user').count()).toBe(0);
    // Nobody grants a role they do not hold: the security team grants `security`, which waits for a second person.
    await form.getByLabel('Username').fill('console-added');
    await form.getByLabel(/^Roles/).fill('operator');
    await form.getByRole('button', { name: 'Add person' }).click();
    await page.waitForFunction(() => (document.getElementById('flash')?.textContent ?? '').includes('ORDERLY_E_GRANT_NOT_HELD'));
    await form.getByLabel(/^Roles/).fill('security');
    await form.getByRole('button', { name: 'Add person' }).click();
    await page.locator('#shown').waitFor({ state: 'visible' });
    await expect(page.locator('#shown').textContent()).resolves.toContain('Enrolment secret');
    await expect(page.locator('#shown').textContent()).resolves.toContain('Waiting for a second security person');
    await page.screenshot({ path: join(ARTIFACTS, 'actions-security-person-added.png'), fullPage: true });
    await page.reload();
    const peopleTable = () => page.getByRole('table', { name: 'People', exact: true });
    const row = () => peopleTable().locator('tr', { hasText: 'console-added' });
    await expect(row().textContent()).resolves.toContain('not yet');
    const pending = page.getByRole('table', { name: 'Pending access requests' });
    await expect(pending.textContent()).resolves.toContain('yours: another person decides');
    const second = await cb.newContext();
    const secondPage = await cb.signIn(second, secondSecurity);
    await secondPage.goto(url('/console/people'));
    await secondPage.getByRole('table', { name: 'Pending access requests' }).getByRole('button', { name: 'Approve' }).click();
    await secondPage.waitForURL(/done=approved/);
    await second.close();
    await page.reload();
    await expect(row().locator('td').nth(1).textContent()).resolves.toBe('security');
    // Removing roles needs no second person.
    await row().getByLabel('Roles').fill('');
    await row().getByRole('button', { name: 'Set roles' }).click();
    await page.waitForURL(/done=roles$/);
    await expect(row().locator('td').nth(1).textContent()).resolves.toBe('');
    // Lock a person by failed sign-ins, then unlock from the console.
    for (let i = 0; i < 5; i++) {
      await fetch(url('/v1/session'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: people.developer!.username, password: 'wrong-password-on-purpose', code: '000000' }),
      });
    }
    await page.reload();
    const dev = peopleTable().locator('tr', { hasText: people.developer!.username });
    await expect(dev.textContent()).resolves.toContain('locked until');
    await dev.getByRole('button', { name: 'Unlock' }).click();
    await page.waitForURL(/done=unlocked/);
    await expect(peopleTable().locator('tr', { hasText: people.developer!.username }).textContent()).resolves.not.toContain('locked until');
    page.once('dialog', (d) => void d.accept());
    await row().getByRole('button', { name: 'Disable' }).click();
    await page.waitForURL(/done=disabled/);
    await expect(row().textContent()).resolves.toContain('disabled');
    const actions = (await auditEvents()).filter((e) => e.actor === `user:${people.security!.username}`).map((e) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining(['user.create', 'user.roles', 'user.unlock', 'user.disable', 'credential.rotate', 'runner.register', 'runner.revoke']),
    );
  }, 90_000);
});

describe('after every action above', () => {
  test('zero CSP violations', () => {
    expect(cb.cspViolations).toEqual([]);
  });
});
