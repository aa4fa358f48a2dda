import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUser, Stack, startStack } from '../../../../test/harness';
import { browse, startTestIdp, TestIdp } from '../../../../test/oidc-idp';
import { loginWithSso } from '../../cli/commands/login';
import { Db, postgresDb } from '../../db/db';

/**
 * `orderly login --sso` end to end (the CLI's loopback listener, the control room, a real
 * oidc-provider whose login form is driven over plain HTTP) and the leaver check: the control
 * room asks the provider at ORDERLY_OIDC_CHECK_SECONDS (1 second here, 300 by default) and a
 * person the provider disabled loses sessions and API tokens, audited.
 */

let idp: TestIdp;
let stack: Stack;
let db: Db;
let dir: string;

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  const crPort = await freePort();
  idp = await startTestIdp(`http://127.0.0.1:${crPort}/v1/auth/sso/callback`);
  dir = mkdtempSync(join(tmpdir(), 'orderly-sso-cli-'));
  const secretFile = join(dir, 'oidc-client.secret');
  writeFileSync(secretFile, `${idp.clientSecret}\n`, { mode: 0o600 });
  const webhookSecret = join(dir, 'alert-webhook.secret');
  writeFileSync(webhookSecret, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  stack = await startStack({
    vault: false,
    controlRoomEnv: {
      ORDERLY_PORT: String(crPort),
      ORDERLY_OIDC_ISSUER: idp.issuer,
      ORDERLY_OIDC_CLIENT_ID: idp.clientId,
      ORDERLY_OIDC_CLIENT_SECRET_FILE: secretFile,
      ORDERLY_OIDC_REDIRECT_URL: `http://127.0.0.1:${crPort}/v1/auth/sso/callback`,
      ORDERLY_OIDC_GROUP_ROLES: JSON.stringify({ 'rpa-operators': ['operator@demo'], 'rpa-auditors': ['auditor'] }),
      ORDERLY_OIDC_MFA_ROLES: 'approver',
      ORDERLY_OIDC_CHECK_SECONDS: '1',
      // One replica leads at once: it must take the lead quickly for the check to run.
      ORDERLY_LEADER_POLL_SECONDS: '1',
      // One break-glass local account; alerts go to a port nobody listens on, so they stay in the outbox.
      ORDERLY_BREAK_GLASS_USERS: 'glass',
      ORDERLY_ALERT_WEBHOOK_URL: 'http://127.0.0.1:9/alerts',
      ORDERLY_ALERT_WEBHOOK_SECRET_FILE: webhookSecret,
    },
  });
  db = postgresDb(stack.databaseUrl!);
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
  await idp?.close();
  rmSync(dir, { recursive: true, force: true });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function me(headers: Record<string, string>): Promise<{ status: number; body: any }> {
  const response = await fetch(new URL('/v1/me', stack.controlRoom.url), { headers });
  return { status: response.status, body: await response.json() };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function postJson(path: string, body: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(new URL(path, stack.controlRoom.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

const auditEvents = (action: string, target: string) =>
  db.query<{ actor: string; outcome: string; details: Record<string, unknown> }>(
    'SELECT actor, outcome, details FROM audit_events WHERE action = $1 AND target = $2 ORDER BY seq',
    [action, target],
  );

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** `orderly login --sso` as the CLI runs it; the "browser" is browse() on the URL the CLI shows. */
async function cliLogin(login: string) {
  const path = join(dir, `${login}-${randomBytes(4).toString('hex')}`, 'token');
  let landing: { url: URL; status: number; text: string } | undefined;
  const saved = await loginWithSso(
    { url: stack.controlRoom.url, token: undefined },
    {
      name: 'laptop',
      expiresInDays: 7,
      openUrl: async (url) => {
        landing = await browse(url, login);
      },
    },
    path,
  );
  return { saved, landing: landing!, token: readFileSync(path, 'utf8').trim(), path };
}

async function consoleSession(login: string): Promise<string> {
  const { jar } = await browse(new URL('/v1/auth/sso/start', stack.controlRoom.url).href, login, {
    stopAt: (url) => url.pathname === '/console',
  });
  return jar.get(new URL(stack.controlRoom.url), 'orderly_session')!;
}

test('orderly login --sso: the provider sign-in in a browser ends with an API token of the person, saved 0600', async () => {
  idp.accounts.set('sub-cleo', { username: 'cleo', groups: ['rpa-operators'], amr: ['pwd'] });
  const { saved, landing, token, path } = await cliLogin('sub-cleo');
  // The browser landed on the CLI's loopback listener, which said so.
  expect(landing.url.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(landing.url.origin).not.toBe(new URL(stack.controlRoom.url).origin);
  expect(landing).toMatchObject({ status: 200, text: expect.stringContaining('Signed in to Orderly') });
  expect(saved).toMatchObject({ owner: 'user:cleo', scopes: ['operator@demo'] });
  expect(statSync(path).mode & 0o777).toBe(0o600);
  expect(await me({ authorization: `Bearer ${token}` })).toMatchObject({ status: 200, body: { kind: 'user', actor: 'user:cleo', roles: ['operator@demo'] } });
  // No session was opened for the CLI sign-in; the sign-in and the token are audited.
  expect(await db.query("SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'cleo'")).toHaveLength(0);
  expect(await auditEvents('sso.sign_in', 'user:cleo')).toEqual([
    expect.objectContaining({ outcome: 'success', details: expect.objectContaining({ client: 'cli', subject: 'sub-cleo', refreshable: true }) }),
  ]);
  expect(await auditEvents('sso.cli_token', 'user:cleo')).toEqual([expect.objectContaining({ outcome: 'success' })]);

  // The code the browser carried is spent: presenting it again is refused.
  const code = landing.url.searchParams.get('code')!;
  const replay = await postJson('/v1/login/sso/token', { code, codeVerifier: randomBytes(32).toString('base64url'), name: 'again', expiresInDays: 1 });
  expect(replay).toMatchObject({ status: 401, body: { error: { code: 'ORDERLY_E_SSO_CLI_CODE_INVALID' } } });
});

test('a CLI code is bound to the PKCE verifier of the process that started it, and only loopback listeners get one', async () => {
  idp.accounts.set('sub-dora', { username: 'dora', groups: ['rpa-auditors'], amr: ['pwd'] });
  const listener: Server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  try {
    const verifier = randomBytes(32).toString('base64url');
    const start = new URL('/v1/auth/sso/start', stack.controlRoom.url);
    start.search = new URLSearchParams({
      cli_redirect: `http://127.0.0.1:${(listener.address() as AddressInfo).port}/cb`,
      cli_challenge: createHash('sha256').update(verifier).digest('base64url'),
      cli_state: randomBytes(16).toString('base64url'),
    }).toString();
    const { url } = await browse(start.href, 'sub-dora');
    const code = url.searchParams.get('code')!;
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Someone who caught the code but not the verifier: refused, and the code is gone with it.
    const stolen = await postJson('/v1/login/sso/token', { code, codeVerifier: randomBytes(32).toString('base64url'), name: 'x', expiresInDays: 1 });
    expect(stolen).toMatchObject({ status: 401, body: { error: { code: 'ORDERLY_E_SSO_CLI_CODE_INVALID' } } });
    expect(await postJson('/v1/login/sso/token', { code, codeVerifier: verifier, name: 'x', expiresInDays: 1 })).toMatchObject({ status: 401 });
    expect(await db.query("SELECT 1 FROM api_tokens t JOIN users u ON u.id = t.owner_id WHERE u.username = 'dora'")).toHaveLength(0);
  } finally {
    await new Promise((resolve) => listener.close(resolve));
  }
  // A redirect that is not a loopback listener is refused before the provider is involved.
  for (const redirect of ['https://evil.example.test/cb', 'http://127.0.0.1.evil.test:80/cb', 'http://localhost:9/cb']) {
    const start = new URL('/v1/auth/sso/start', stack.controlRoom.url);
    start.search = new URLSearchParams({ cli_redirect: redirect, cli_challenge: 'A'.repeat(43), cli_state: 'B'.repeat(20) }).toString();
    const response = await fetch(start, { redirect: 'manual' });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('ORDERLY_E_BAD_REQUEST');
  }
});

test('a person the provider disabled loses their console session and API tokens at the next check, audited', async () => {
  idp.accounts.set('sub-lee', { username: 'lee', groups: ['rpa-operators'], amr: ['pwd'] });
  const session = await consoleSession('sub-lee');
  const { token } = await cliLogin('sub-lee');
  expect(await me({ cookie: `orderly_session=${session}` })).toMatchObject({ status: 200, body: { actor: 'user:lee' } });
  expect(await me({ authorization: `Bearer ${token}` })).toMatchObject({ status: 200 });
  // A check has run for lee while they were still there, and changed nothing.
  await eventually('a check of lee', async () => {
    const [row] = await db.query<{ checked_at: Date }>("SELECT checked_at FROM sso_identities WHERE subject = 'sub-lee'");
    return row && row.checked_at.getTime() > Date.now() - 2_000 ? true : undefined;
  });
  expect(await me({ authorization: `Bearer ${token}` })).toMatchObject({ status: 200 });

  idp.accounts.get('sub-lee')!.disabled = true;
  const [ended] = await eventually('lee to be ended', async () => {
    const events = await auditEvents('sso.access_end', 'user:lee');
    return events.length > 0 ? events : undefined;
  });
  expect(ended).toMatchObject({
    actor: 'sso',
    outcome: 'success',
    details: { reason: 'provider_refused', subject: 'sub-lee', sessions: 1, tokens: 1, from: 'operator@demo' },
  });
  expect((await me({ cookie: `orderly_session=${session}` })).status).toBe(401);
  expect((await me({ authorization: `Bearer ${token}` })).status).toBe(401);
  const [tokenRow] = await db.query<{ revoked_by: string }>("SELECT t.revoked_by FROM api_tokens t JOIN users u ON u.id = t.owner_id WHERE u.username = 'lee'");
  expect(tokenRow!.revoked_by).toBe('sso');
  // Nothing of the provider's tokens is in the audit trail.
  expect(JSON.stringify(await db.query('SELECT details FROM audit_events'))).not.toMatch(/refresh_token|eyJ/);
});

test('a group change at the provider changes the roles at the next check, without a new sign-in', async () => {
  idp.accounts.set('sub-gwen', { username: 'gwen', groups: ['rpa-operators'], amr: ['pwd'] });
  const session = await consoleSession('sub-gwen');
  expect(await me({ cookie: `orderly_session=${session}` })).toMatchObject({ body: { roles: ['operator@demo'] } });
  idp.accounts.get('sub-gwen')!.groups = ['rpa-auditors'];
  await eventually('gwen to be an auditor', async () => {
    const who = await me({ cookie: `orderly_session=${session}` });
    return who.body.roles?.[0] === 'auditor' ? true : undefined;
  });
  expect((await auditEvents('sso.roles_change', 'user:gwen')).map((e) => [e.actor, e.details.from, e.details.to])).toEqual([
    ['sso', '', 'operator@demo'],
    ['sso', 'operator@demo', 'auditor'],
  ]);
});

test('with single sign-on, local sign-in is off except for break-glass accounts, whose every use alerts and is audited', async () => {
  // Not named in ORDERLY_BREAK_GLASS_USERS: the right password and code are still refused.
  await expect(createUser(stack, 'local-lou', ['operator@demo'])).rejects.toThrow(/ORDERLY_E_LOCAL_SIGN_IN_DISABLED/);
  expect(await auditEvents('auth.break_glass', 'user:local-lou')).toEqual([]);

  // The break-glass account: its CLI sign-in (in createUser) and a console session both get in.
  const glass = await createUser(stack, 'glass', ['security']);
  const session = await postJson('/v1/session', { username: 'glass', password: glass.password, code: await glass.nextCode() });
  expect(session.status).toBe(201);
  expect((await auditEvents('auth.break_glass', 'user:glass')).map((e) => [e.actor, e.outcome, e.details.via])).toEqual([
    ['user:glass', 'success', 'cli'],
    ['user:glass', 'success', 'api'],
  ]);
  const alerts = await db.query<{ body: { username: string; via: string } }>("SELECT body FROM alert_outbox WHERE kind = 'auth.break_glass' ORDER BY id");
  expect(alerts.map((a) => [a.body.username, a.body.via])).toEqual([
    ['glass', 'cli'],
    ['glass', 'api'],
  ]);
  // No alert for the refused local account, nothing secret in the alerts.
  expect(JSON.stringify(alerts)).not.toContain(glass.password);

  // The compliance check finds both local sign-ins alerted; a sign-in whose alert is missing fails it.
  const check = async () =>
    ((await stack.api('GET', '/v1/compliance')).body as { results: { checkId: string; result: string; observed: string }[] }).results.find(
      (r) => r.checkId === 'access.break-glass-accounts',
    );
  expect(await check()).toMatchObject({ result: 'pass', observed: expect.stringContaining('2 local sign-ins, 2 alerts in 7 days') });
  await db.query("DELETE FROM alert_outbox WHERE id = (SELECT max(id) FROM alert_outbox WHERE kind = 'auth.break_glass')");
  expect(await check()).toMatchObject({ result: 'fail', observed: expect.stringContaining('2 local sign-ins, 1 alerts in 7 days') });
});
