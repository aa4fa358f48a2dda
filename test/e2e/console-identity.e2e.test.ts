import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { BrowserContext, Page } from 'playwright-core';
import { createUser, REPO, Stack, startStack, TestUser } from '../harness';
import { accessibilityProblems, ConsoleBrowser, launchConsoleBrowser, postAs } from './console-browser';

/**
 * The console's identity pages in Debian Chromium against the real stack: API tokens, service
 * accounts and teams (membership, bot name transfer). What each role is offered, and refused, is
 * read from the README's permission table, not from the code's map; each action changes what the
 * API would change, with step-up where the API needs it, and is audited; one-time token values
 * appear in the page only.
 */
const ARTIFACTS = join(REPO, '.orderly', 'test-artifacts', 'console');
const ROLES = ['operator', 'developer', 'approver', 'security', 'auditor'] as const;
type Role = (typeof ROLES)[number];

/** The README's permission table: role -> the permissions it holds. */
const README_PERMISSIONS: ReadonlyMap<string, ReadonlySet<string>> = (() => {
  const lines = readFileSync(join(REPO, 'README.md'), 'utf8').split('\n');
  const at = lines.findIndex((l) => l.startsWith('| permission | developer |'));
  if (at < 0) throw new Error('README has no permission table');
  const cells = (l: string) =>
    l
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
  const head = cells(lines[at]!);
  const out = new Map<string, Set<string>>(head.slice(1).map((r) => [r, new Set<string>()]));
  for (const line of lines.slice(at + 2)) {
    if (!line.startsWith('|')) break;
    const row = cells(line);
    head.slice(1).forEach((role, i) => {
      if (row[i + 1] === '✓') out.get(role)!.add(row[0]!.replace(/`/g, ''));
    });
  }
  return out;
})();
const holds = (role: Role, permission: string) => README_PERMISSIONS.get(role)?.has(permission) === true;

let stack: Stack;
let cb: ConsoleBrowser;
let db: Client;
const people: Partial<Record<Role, TestUser>> = {};

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  stack = await startStack();
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'sleepy'));
  for (const role of ROLES) people[role] = await createUser(stack, `${role}-i`, [role]);
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
const me = (token: string) => fetch(url('/v1/me'), { headers: { authorization: `Bearer ${token}` } });
/** The sign-in was a second factor just now: make it 10 minutes old, so the next change asks for a step-up. */
const staleStepUp = (user: TestUser) => db.query("UPDATE sessions SET stepped_up_at = now() - interval '10 minutes' WHERE user_id = $1", [user.id]);

describe('each role is offered only what the README role table gives it, and the rest is refused', () => {
  const OFFERS: { page: string; permission: string; offer: (p: Page) => ReturnType<Page['locator']> }[] = [
    { page: '/console/tokens', permission: 'self', offer: (p) => p.getByRole('button', { name: 'Create token' }) },
    { page: '/console/service-accounts', permission: 'users.manage', offer: (p) => p.getByRole('button', { name: 'Create service account' }) },
    { page: '/console/tokens', permission: 'users.manage', offer: (p) => p.getByRole('table', { name: 'Every API token' }) },
    { page: '/console/teams', permission: 'keys.manage', offer: (p) => p.getByRole('button', { name: 'Create team' }) },
  ];
  const PAGES: { page: string; permission: string; label: string }[] = [
    { page: '/console/tokens', permission: 'self', label: 'API tokens' },
    { page: '/console/service-accounts', permission: 'users.manage', label: 'Service accounts' },
    { page: '/console/teams', permission: 'keys.read', label: 'Teams' },
  ];
  /** Bodies that would pass validation: a role without the permission is refused before anything else. */
  const ACTIONS: { path: string; permission: string; fields: Record<string, string> }[] = [
    { path: '/console/service-accounts', permission: 'users.manage', fields: { name: 'probe-account', roles: 'auditor' } },
    { path: '/console/service-accounts/probe-account/tokens', permission: 'users.manage', fields: { name: 'probe', expiresInDays: '1' } },
    { path: '/console/service-accounts/probe-account/owner', permission: 'users.manage', fields: { user: 'operator-i' } },
    { path: '/console/service-accounts/probe-account/disable', permission: 'users.manage', fields: {} },
    { path: '/console/teams', permission: 'keys.manage', fields: { name: 'probe-team' } },
    { path: '/console/teams/probe-team/members', permission: 'keys.manage', fields: { kind: 'user', name: 'operator-i' } },
    { path: '/console/teams/probe-team/members/user/operator-i/remove', permission: 'keys.manage', fields: {} },
    { path: '/console/bots/sleepy/transfer', permission: 'keys.manage', fields: { team: 'probe-team' } },
  ];

  test.each(ROLES)(
    'as %s',
    async (role) => {
      const context = await cb.newContext();
      const page = await cb.signIn(context, people[role]!);
      const nav = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
      for (const p of PAGES) {
        expect({ page: p.page, inNav: nav.includes(p.label) }).toEqual({ page: p.page, inNav: holds(role, p.permission) });
        const response = await page.goto(url(p.page));
        expect({ page: p.page, status: response!.status() }).toEqual({ page: p.page, status: holds(role, p.permission) ? 200 : 403 });
      }
      for (const o of OFFERS) {
        const response = await page.goto(url(o.page));
        if (response!.status() === 403) continue;
        expect({ page: o.page, offered: (await o.offer(page).count()) > 0 }).toEqual({ page: o.page, offered: holds(role, o.permission) });
        expect(await accessibilityProblems(page)).toEqual([]);
        await page.screenshot({ path: join(ARTIFACTS, `identity-${role}-${o.page.split('/')[2]}.png`), fullPage: true });
      }
      await page.goto(url('/console/tokens'));
      for (const a of ACTIONS.filter((x) => !holds(role, x.permission))) {
        const answer = await postAs(context, page, url(a.path), a.fields);
        expect({ path: a.path, status: answer.status, code: answer.code }).toEqual({ path: a.path, status: 403, code: 'ORDERLY_E_FORBIDDEN' });
      }
      await context.close();
    },
    120_000,
  );
});

describe('API tokens', () => {
  test('a person creates a token after a step-up, sees it once, and revokes it; both audited', async () => {
    const dev = people.developer!;
    const context = await cb.newContext();
    const page = await cb.signIn(context, dev);
    await staleStepUp(dev);
    await page.goto(url('/console/tokens'));
    const own = () => page.getByRole('table', { name: 'Your API tokens' });
    await expect(own().textContent()).resolves.toContain(dev.username);
    expect(await page.getByRole('table', { name: 'Every API token' }).count()).toBe(0);
    const form = page.getByRole('form', { name: 'New API token' });
    const create = async () => {
      await form.getByLabel('Token name').fill('console ci token');
      await form.getByLabel(/^Expires after/).fill('7');
      await form.getByRole('button', { name: 'Create token' }).click();
    };
    await create();
    await page.waitForURL(/\/console\/step-up\?next=/);
    await page.getByLabel('Authenticator code').fill(await dev.nextCode());
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.waitForURL(/\/console\/tokens\?done=stepped-up/);
    await create();
    await page.locator('#shown').waitFor({ state: 'visible' });
    const token = (await page.locator('#shown pre').first().textContent())!;
    expect(token.length).toBeGreaterThan(20);
    // The token works, carries the developer's role, and is nowhere but this page.
    const answer = await me(token);
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { roles: string[] }).roles).toEqual(['developer']);
    expect((await cb.held(context, page)).includes(token)).toBe(false);
    await page.screenshot({ path: join(ARTIFACTS, 'identity-developer-token-created.png'), fullPage: true });
    await page.reload();
    expect((await page.content()).includes(token)).toBe(false);
    const row = own().locator('tr', { hasText: 'console ci token' });
    await expect(row.textContent()).resolves.toContain('active');
    // Another person's token is not this person's to revoke: it answers like a missing one.
    const other = await postAs(context, page, url(`/console/tokens/${people.operator!.tokenId}/revoke`), {});
    expect([other.status, other.code]).toEqual([404, 'ORDERLY_E_NOT_FOUND']);
    expect((await me(people.operator!.token)).status).toBe(200);
    page.once('dialog', (d) => void d.accept());
    await row.getByRole('button', { name: 'Revoke' }).click();
    await page.waitForURL(/done=token-revoked/);
    await expect(own().locator('tr', { hasText: 'console ci token' }).textContent()).resolves.toContain('revoked');
    expect((await me(token)).status).toBe(401);
    const events = (await auditEvents()).filter((e) => e.actor === `user:${dev.username}`);
    expect(events.filter((e) => e.action === 'token.create' && e.outcome === 'success')).toHaveLength(1);
    expect(events.filter((e) => e.action === 'token.revoke' && e.outcome === 'success')).toHaveLength(1);
    expect(JSON.stringify(events).includes(token)).toBe(false);
    await context.close();
  }, 120_000);
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

  test('service accounts: create, issue a token (shown once), set the owner; its token is revoked from the tokens page', async () => {
    await page.goto(url('/console/service-accounts'));
    const form = page.getByRole('form', { name: 'New service account' });
    // Nobody grants a role they do not hold: security holds none of the service roles.
    await form.getByLabel('Name').fill('ci-publisher');
    await form.getByLabel(/^Roles/).fill('developer');
    await form.getByRole('button', { name: 'Create service account' }).click();
    await page.waitForFunction(() => (document.getElementById('flash')?.textContent ?? '').includes('ORDERLY_E_GRANT_NOT_HELD'));
    expect(((await stack.api('GET', '/v1/service-accounts')).body.serviceAccounts as { name: string }[]).map((a) => a.name)).not.toContain('ci-publisher');
    // A security person who also holds developer may create it.
    const both = await createUser(stack, 'security-dev-i', ['security', 'developer']);
    const ctx2 = await cb.newContext();
    const p2 = await cb.signIn(ctx2, both);
    await p2.goto(url('/console/service-accounts'));
    const f2 = p2.getByRole('form', { name: 'New service account' });
    await f2.getByLabel('Name').fill('ci-publisher');
    await f2.getByLabel(/^Roles/).fill('developer');
    await f2.getByRole('button', { name: 'Create service account' }).click();
    await p2.waitForURL(/done=service-account-created/);
    const account = ((await stack.api('GET', '/v1/service-accounts')).body.serviceAccounts as { id: string; name: string; roles: string[] }[]).find(
      (a) => a.name === 'ci-publisher',
    );
    expect(account).toMatchObject({ roles: ['developer'] });
    const row = p2.getByRole('table', { name: 'Service accounts' }).locator('tr', { hasText: 'ci-publisher' });
    await row.getByLabel('Token name').fill('ci');
    await row.getByRole('button', { name: 'Issue token' }).click();
    await p2.locator('#shown').waitFor({ state: 'visible' });
    const token = (await p2.locator('#shown pre').first().textContent())!;
    const answer = await me(token);
    expect(answer.status).toBe(200);
    expect((await answer.json()) as { actor: string }).toMatchObject({ actor: 'service:ci-publisher' });
    expect((await cb.held(ctx2, p2)).includes(token)).toBe(false);
    await p2.reload();
    await row.getByLabel('Owner (username)').fill(both.username);
    await row.getByRole('button', { name: 'Set owner' }).click();
    await p2.waitForURL(/done=service-account-owner/);
    const owner = await db.query<{ owner_user_id: string }>('SELECT owner_user_id FROM service_accounts WHERE id = $1', [account!.id]);
    expect(owner.rows[0]!.owner_user_id).toBe(both.id);
    await p2.screenshot({ path: join(ARTIFACTS, 'identity-security-service-accounts.png'), fullPage: true });
    await ctx2.close();
    // The security team sees every token, the service account's too, and revokes it.
    await page.goto(url('/console/tokens'));
    const every = page.getByRole('table', { name: 'Every API token' });
    await expect(every.textContent()).resolves.toContain(people.developer!.username);
    page.once('dialog', (d) => void d.accept());
    await every.locator('tr', { hasText: 'service:ci-publisher' }).getByRole('button', { name: 'Revoke' }).click();
    await page.waitForURL(/done=token-revoked/);
    expect((await me(token)).status).toBe(401);
    // Disabling the account stops every token it still has.
    const second = await stack.api('POST', `/v1/service-accounts/${account!.id}/tokens`, { name: 'second', expiresInDays: 1 });
    expect(second.status).toBe(201);
    expect((await me(second.body.token as string)).status).toBe(200);
    await page.goto(url('/console/service-accounts'));
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Disable ci-publisher' }).click();
    await page.waitForURL(/done=service-account-disabled/);
    await expect(page.getByRole('table', { name: 'Service accounts' }).locator('tr', { hasText: 'ci-publisher' }).textContent()).resolves.toContain('disabled');
    expect(await page.getByRole('button', { name: 'Disable ci-publisher' }).count()).toBe(0);
    expect((await me(second.body.token as string)).status).toBe(401);
    const events = await auditEvents();
    expect(
      events.filter((e) => e.action === 'service_account.disable' && e.outcome === 'success' && e.actor === `user:${people.security!.username}`),
    ).toHaveLength(1);
    expect(events.filter((e) => e.action === 'service_account.create' && e.outcome === 'success' && e.actor === `user:${both.username}`)).toHaveLength(1);
    expect(
      events.filter((e) => e.action === 'service_account.create' && e.outcome !== 'success' && e.actor === `user:${people.security!.username}`),
    ).toHaveLength(1);
    expect(events.filter((e) => e.action === 'service_account.token' && e.outcome === 'success')).toHaveLength(1);
    expect(events.filter((e) => e.action === 'service_account.owner' && e.outcome === 'success' && e.details.to === both.id)).toHaveLength(1);
    expect(events.filter((e) => e.action === 'token.revoke' && e.outcome === 'success' && e.actor === `user:${people.security!.username}`)).toHaveLength(1);
    expect(JSON.stringify(events).includes(token)).toBe(false);
  }, 120_000);

  test('teams: create, add and remove members, transfer a bot name with step-up, audited with both teams', async () => {
    await page.goto(url('/console/teams'));
    expect(await accessibilityProblems(page)).toEqual([]);
    for (const name of ['team-alpha', 'team-beta']) {
      // Each from a fresh page: the URL of the first creation already says done=team-created.
      await page.goto(url('/console/teams'));
      const form = page.getByRole('form', { name: 'New team' });
      await form.getByLabel('Team name').fill(name);
      await form.getByRole('button', { name: 'Create team' }).click();
      await page.waitForURL(/done=team-created/);
    }
    const teamRow = (name: string) =>
      page
        .getByRole('table', { name: 'Teams' })
        .getByRole('row')
        .filter({ has: page.getByRole('cell', { name, exact: true }) });
    const add = page.getByRole('form', { name: 'Add a member to team-alpha' });
    await add.getByLabel('Name').fill(people.developer!.username);
    await add.getByRole('button', { name: 'Add member' }).click();
    await page.waitForURL(/done=member-added/);
    await expect(teamRow('team-alpha').textContent()).resolves.toContain(`person ${people.developer!.username}`);
    // A bot name the harness's publishing team claimed at its first publish: the free-text transfer moves it.
    const first = page.getByRole('form', { name: 'Transfer a bot name' });
    await first.getByLabel('Bot name').fill('sleepy');
    await first.getByLabel('To team').selectOption('team-alpha');
    await first.getByRole('button', { name: 'Transfer bot name' }).click();
    await page.waitForURL(/done=transferred/);
    await expect(teamRow('team-alpha').textContent()).resolves.toContain('sleepy');
    // With a stale second factor the transfer asks for a step-up first, then goes through.
    await staleStepUp(people.security!);
    const transfer = async () => {
      const form = page.getByRole('form', { name: 'Transfer sleepy' });
      await form.getByLabel(/Move sleepy to/).selectOption('team-beta');
      await form.getByRole('button', { name: 'Transfer sleepy' }).click();
    };
    await transfer();
    await page.waitForURL(/\/console\/step-up\?next=/);
    await page.getByLabel('Authenticator code').fill(await people.security!.nextCode());
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.waitForURL(/\/console\/teams\?done=stepped-up/);
    await transfer();
    await page.waitForURL(/done=transferred/);
    await expect(teamRow('team-beta').textContent()).resolves.toContain('sleepy');
    await page.screenshot({ path: join(ARTIFACTS, 'identity-security-teams.png'), fullPage: true });
    const teams = (await stack.api('GET', '/v1/teams')).body.teams as { name: string; bots: string[]; members: { name: string }[] }[];
    expect(teams.find((t) => t.name === 'team-beta')!.bots).toEqual(['sleepy']);
    expect(teams.find((t) => t.name === 'team-alpha')!.bots).toEqual([]);
    // Remove the member.
    page.once('dialog', (d) => void d.accept());
    await teamRow('team-alpha')
      .getByRole('button', { name: `Remove ${people.developer!.username}` })
      .click();
    await page.waitForURL(/done=member-removed/);
    expect(((await stack.api('GET', '/v1/teams')).body.teams as { name: string; members: unknown[] }[]).find((t) => t.name === 'team-alpha')!.members).toEqual(
      [],
    );
    const events = (await auditEvents()).filter((e) => e.actor === `user:${people.security!.username}`);
    expect(events.filter((e) => e.action === 'bot.transfer' && e.outcome === 'success').map((e) => e.details)).toEqual([
      { from: 'harness-team', to: 'team-alpha' },
      { from: 'team-alpha', to: 'team-beta' },
    ]);
    expect(events.filter((e) => e.action === 'team.create' && e.outcome === 'success')).toHaveLength(2);
    expect(events.filter((e) => e.action === 'team.member_add' && e.outcome === 'success')).toHaveLength(1);
    expect(events.filter((e) => e.action === 'team.member_remove' && e.outcome === 'success')).toHaveLength(1);
    // The refused attempt (stale second factor) is audited too.
    expect(events.filter((e) => e.action === 'bot.transfer' && e.outcome !== 'success').length).toBeGreaterThanOrEqual(1);
  }, 150_000);
});

describe('schedules page', () => {
  test("shows each schedule's time zone, calendar, overlap and misfire policies", async () => {
    const created = await stack.api('POST', '/v1/schedules', {
      name: 'zoned-nightly',
      bot: 'sleepy',
      segment: 'demo',
      input: {},
      cron: '0 2 * * *',
      timeZone: 'Europe/Berlin',
      overlap: 'queue_one',
      misfire: 'skip',
    });
    expect(created.status).toBe(201);
    const context = await cb.newContext();
    const page = await cb.signIn(context, people.operator!);
    await page.goto(url('/console/schedules'));
    const row = page.locator('tr', { hasText: 'zoned-nightly' });
    const cells = await row.locator('td').allTextContents();
    expect(cells.slice(4, 8)).toEqual(['Europe/Berlin', '—', 'queue one', 'skip']);
    expect(await accessibilityProblems(page)).toEqual([]);
    await context.close();
  }, 60_000);
});

describe('after every test above', () => {
  test('zero CSP violations', () => {
    expect(cb.cspViolations).toEqual([]);
  });
});
