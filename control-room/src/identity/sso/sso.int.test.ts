import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Stack, startStack } from '../../../../test/harness';
import { browse, Jar } from '../../../../test/oidc-idp';
import { Db, postgresDb } from '../../db/db';
import { openFlow, sealFlow, SSO_FLOW_COOKIE } from './flow';

/**
 * Single sign-on against a real OpenID Connect provider (panva's oidc-provider) on a loopback
 * port: the code flow with PKCE is driven over plain HTTP as a browser would (redirects, the
 * provider's login and consent forms, cookies). Nothing of the protocol is faked: the control
 * room discovers the provider, redeems the code and checks the ID token with openid-client.
 */

type OidcProvider = InstanceType<(typeof import('oidc-provider', { with: { 'resolution-mode': 'import' } }))['default']>;

interface Account {
  username: string;
  groups: string[];
  amr: string[];
}
const accounts = new Map<string, Account>();
const CLIENT_ID = 'orderly-console';
const CLIENT_SECRET = randomBytes(24).toString('base64url');
const GROUP_ROLES = { 'rpa-operators': ['operator@demo'], 'rpa-auditors': ['auditor'], 'rpa-security': ['security'] };

let provider: OidcProvider;
/** A provider on the same issuer with a fresh signing key (key rotation). */
let makeProvider: (kid: string) => OidcProvider;
let providerServer: Server;
let issuer: string;
let stack: Stack;
let db: Db;
let redirectUrl: string;
let secretsDir: string;

const readBody = (req: IncomingMessage) =>
  new Promise<URLSearchParams>((resolve, reject) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    req.on('end', () => resolve(new URLSearchParams(text)));
    req.on('error', reject);
  });

/** The provider's interaction pages: a login form (which account) and a consent form. */
async function interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const [, , uid, action] = (req.url ?? '').split('?')[0]!.split('/');
  if (req.method === 'GET') {
    const details = await provider.interactionDetails(req, res);
    res.setHeader('content-type', 'text/html');
    res.end(
      details.prompt.name === 'login'
        ? `<form method="post" action="/interaction/${uid}/login"><input name="login"><button>Sign in</button></form>`
        : `<form method="post" action="/interaction/${uid}/confirm"><button>Allow</button></form>`,
    );
    return;
  }
  const form = await readBody(req);
  if (action === 'login') {
    const id = form.get('login') ?? '';
    const account = accounts.get(id);
    if (!account) throw new Error(`no test account ${id}`);
    await provider.interactionFinished(req, res, { login: { accountId: id, amr: account.amr } }, { mergeWithLastSubmission: false });
    return;
  }
  const details = await provider.interactionDetails(req, res);
  const grant = new provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
  const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  const { default: Provider } = await import('oidc-provider');
  providerServer = createServer((req, res) => {
    const handle = req.url?.startsWith('/interaction/') ? interaction(req, res) : Promise.resolve(provider.callback()(req, res));
    handle.catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => providerServer.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(providerServer.address() as AddressInfo).port}`;
  const crPort = await freePort();
  redirectUrl = `http://127.0.0.1:${crPort}/v1/auth/sso/callback`;
  makeProvider = (kid: string) =>
    new Provider(issuer, {
      clients: [
        {
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
          redirect_uris: [redirectUrl],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_post',
        },
      ],
      pkce: { required: () => true },
      // `amr` with the openid scope, as the usual enterprise providers send it in every ID token.
      claims: { acr: null, auth_time: null, sid: null, openid: ['sub', 'amr'], profile: ['preferred_username', 'groups'], email: ['email'] },
      // The claims of the granted scopes go into the ID token (the control room reads only it).
      conformIdTokenClaims: false,
      findAccount: async (_ctx, id) => {
        const account = accounts.get(id);
        return account && { accountId: id, claims: async () => ({ sub: id, preferred_username: account.username, groups: account.groups }) };
      },
      cookies: { keys: [randomBytes(32).toString('base64url')] },
      jwks: { keys: [{ ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }] },
      features: { devInteractions: { enabled: false } },
      ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
    });
  provider = makeProvider('test-key-1');
  secretsDir = mkdtempSync(join(tmpdir(), 'orderly-sso-'));
  const secretFile = join(secretsDir, 'oidc-client.secret');
  writeFileSync(secretFile, `${CLIENT_SECRET}\n`, { mode: 0o600 });
  stack = await startStack({
    vault: false,
    controlRoomEnv: {
      ORDERLY_PORT: String(crPort),
      ORDERLY_OIDC_ISSUER: issuer,
      ORDERLY_OIDC_CLIENT_ID: CLIENT_ID,
      ORDERLY_OIDC_CLIENT_SECRET_FILE: secretFile,
      ORDERLY_OIDC_REDIRECT_URL: redirectUrl,
      ORDERLY_OIDC_GROUP_ROLES: JSON.stringify(GROUP_ROLES),
      // Operators and auditors may come in without MFA here; security always needs it.
      ORDERLY_OIDC_MFA_ROLES: 'approver',
    },
  });
  db = postgresDb(stack.databaseUrl!);
});
afterAll(async () => {
  await db?.close();
  await stack?.close();
  await new Promise((resolve) => providerServer?.close(resolve));
  rmSync(secretsDir, { recursive: true, force: true });
});

/**
 * From `/v1/auth/sso/start` through the provider (its login form as `login`, then its consent
 * form) to the redirect back: the callback URL and the flow cookie, not yet presented.
 */
async function throughProvider(login: string): Promise<{ jar: Jar; callback: URL; flow: string }> {
  const end = await browse(new URL('/v1/auth/sso/start', stack.controlRoom.url).href, login, { stopAt: (url) => url.href.startsWith(redirectUrl) });
  if (!end.url.href.startsWith(redirectUrl)) throw new Error(`unexpected answer from ${end.url.href}: ${end.status} ${end.text.slice(0, 300)}`);
  return { jar: end.jar, callback: end.url, flow: end.jar.get(new URL(stack.controlRoom.url), SSO_FLOW_COOKIE)! };
}

/** Presents the provider's redirect to the control room, as the browser would, with a flow cookie. */
async function callback(
  callbackUrl: URL,
  flow: string | undefined,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): Promise<{ status: number; body: any; session: string | undefined; location: string | null }> {
  const response = await fetch(callbackUrl, { redirect: 'manual', headers: flow === undefined ? {} : { cookie: `${SSO_FLOW_COOKIE}=${flow}` } });
  const session = response.headers
    .getSetCookie()
    .map((c) => /^orderly_session=([^;]+)/.exec(c)?.[1])
    .find(Boolean);
  return { status: response.status, body: await response.json().catch(() => undefined), session, location: response.headers.get('location') };
}

async function signIn(login: string) {
  const { callback: url, flow } = await throughProvider(login);
  return callback(url, flow);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function me(session: string): Promise<{ status: number; body: any }> {
  const response = await fetch(new URL('/v1/me', stack.controlRoom.url), { headers: { cookie: `orderly_session=${session}` } });
  return { status: response.status, body: await response.json() };
}

const auditEvents = (action: string) =>
  db.query<{ actor: string; target: string; outcome: string; details: Record<string, unknown> }>(
    'SELECT actor, target, outcome, details FROM audit_events WHERE action = $1 ORDER BY seq',
    [action],
  );

// ---- Tests -----------------------------------------------------------------------------------

test('the console login page offers SSO when it is configured', async () => {
  const page = await (await fetch(new URL('/console/login', stack.controlRoom.url), { headers: { accept: 'text/html' } })).text();
  expect(page).toContain('href="/v1/auth/sso/start"');
  expect(page).toContain('Sign in with SSO');
});

test('a person in a mapped group gets a session with the mapped roles; the sign-in is audited with the subject', async () => {
  accounts.set('sub-olivia', { username: 'olivia', groups: ['rpa-operators', 'unmapped-group'], amr: ['pwd'] });
  const result = await signIn('sub-olivia');
  expect(result).toMatchObject({ status: 303, location: '/console' });
  expect(result.session).toBeDefined();
  const who = await me(result.session!);
  expect(who).toMatchObject({ status: 200, body: { kind: 'user', actor: 'user:olivia', roles: ['operator@demo'] } });
  expect(who.body.permissions).toContain('runs.create');
  // Without a second factor at the provider the session is not stepped up.
  const [session] = await db.query<{ stepped_up_at: Date | null }>(
    "SELECT s.stepped_up_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'olivia'",
  );
  expect(session!.stepped_up_at).toBeNull();
  const [link] = await db.query<{ issuer: string; groups: string[] }>("SELECT s.issuer, s.groups FROM sso_identities s WHERE s.subject = 'sub-olivia'");
  expect(link).toEqual({ issuer, groups: ['rpa-operators', 'unmapped-group'] });
  const signIns = (await auditEvents('sso.sign_in')).filter((e) => e.target === 'user:olivia');
  expect(signIns).toEqual([
    expect.objectContaining({
      actor: 'user:olivia',
      outcome: 'success',
      details: expect.objectContaining({ subject: 'sub-olivia', issuer, roles: 'operator@demo', mfa: false }),
    }),
  ]);
  expect((await auditEvents('sso.roles_change')).filter((e) => e.target === 'user:olivia')).toEqual([
    expect.objectContaining({ details: expect.objectContaining({ from: '', to: 'operator@demo' }) }),
  ]);
});

test('a person with no mapped group is refused and gets no account', async () => {
  accounts.set('sub-nina', { username: 'nina', groups: ['marketing'], amr: ['pwd', 'mfa'] });
  const result = await signIn('sub-nina');
  expect(result).toMatchObject({ status: 403, body: { error: { code: 'ORDERLY_E_SSO_NO_ROLE' } }, session: undefined });
  expect(await db.query("SELECT 1 FROM users WHERE username = 'nina'")).toHaveLength(0);
  const refusals = (await auditEvents('sso.sign_in')).filter((e) => e.target === 'sso:sub-nina');
  expect(refusals).toEqual([
    expect.objectContaining({ outcome: 'denied', details: expect.objectContaining({ code: 'ORDERLY_E_SSO_NO_ROLE', subject: 'sub-nina' }) }),
  ]);
});

test('a security-mapped person without MFA at the provider is refused; with amr mfa they get in, stepped up', async () => {
  accounts.set('sub-sam', { username: 'sam', groups: ['rpa-security'], amr: ['pwd'] });
  const refused = await signIn('sub-sam');
  expect(refused).toMatchObject({ status: 403, body: { error: { code: 'ORDERLY_E_SSO_MFA_REQUIRED' } }, session: undefined });
  expect(await db.query("SELECT 1 FROM users WHERE username = 'sam'")).toHaveLength(0);

  accounts.set('sub-sam', { username: 'sam', groups: ['rpa-security'], amr: ['pwd', 'otp'] });
  const admitted = await signIn('sub-sam');
  expect(admitted).toMatchObject({ status: 303, location: '/console' });
  expect(await me(admitted.session!)).toMatchObject({ status: 200, body: { actor: 'user:sam', roles: ['security'] } });
  const [session] = await db.query<{ stepped_up_at: Date | null }>(
    "SELECT s.stepped_up_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'sam'",
  );
  expect(session!.stepped_up_at).not.toBeNull();
  // The compliance MFA check counts the provider's second factor (olivia, without one, does not pass it).
  const compliance = await stack.api('GET', '/v1/compliance');
  const mfaCheck = (compliance.body.results as { checkId: string; observed: string }[]).find((c) => c.checkId === 'auth.mfa-every-person')!;
  expect(mfaCheck.observed).toMatch(/\bolivia\b/);
  expect(mfaCheck.observed).not.toMatch(/\bsam\b/);
});

test('a group change at the provider changes the roles at the next sign-in; losing every mapped group ends access', async () => {
  accounts.set('sub-gus', { username: 'gus', groups: ['rpa-operators'], amr: ['pwd'] });
  const first = await signIn('sub-gus');
  expect(await me(first.session!)).toMatchObject({ body: { roles: ['operator@demo'] } });

  accounts.set('sub-gus', { username: 'gus', groups: ['rpa-auditors'], amr: ['pwd'] });
  const second = await signIn('sub-gus');
  expect(await me(second.session!)).toMatchObject({ status: 200, body: { actor: 'user:gus', roles: ['auditor'] } });
  // The roles are the person's: the earlier session sees the change at its next request too.
  expect(await me(first.session!)).toMatchObject({ status: 200, body: { roles: ['auditor'] } });
  const changes = (await auditEvents('sso.roles_change')).filter((e) => e.target === 'user:gus');
  expect(changes.map((e) => [e.details.from, e.details.to])).toEqual([
    ['', 'operator@demo'],
    ['operator@demo', 'auditor'],
  ]);
  expect(await db.query("SELECT 1 FROM users WHERE username LIKE 'gus%' OR username LIKE 'sso-%'")).toHaveLength(1);

  accounts.set('sub-gus', { username: 'gus', groups: [], amr: ['pwd'] });
  expect(await signIn('sub-gus')).toMatchObject({ status: 403, body: { error: { code: 'ORDERLY_E_SSO_NO_ROLE' } } });
  expect((await me(second.session!)).status).toBe(401);
  const [user] = await db.query<{ roles: string[] }>("SELECT roles FROM users WHERE username = 'gus'");
  expect(user!.roles).toEqual([]);
});

test('a tampered state, a missing or altered flow cookie, a wrong nonce and a replayed code are refused', async () => {
  accounts.set('sub-tess', { username: 'tess', groups: ['rpa-auditors'], amr: ['pwd'] });
  const dataKey = Buffer.from(readFileSync(join(stack.dataDir, 'secrets', 'data.key'), 'utf8').trim(), 'base64');

  const { callback: url, flow } = await throughProvider('sub-tess');
  const tamperedState = new URL(url);
  tamperedState.searchParams.set('state', `${url.searchParams.get('state')}x`);
  expect(await callback(tamperedState, flow)).toMatchObject({ status: 401, body: { error: { code: 'ORDERLY_E_SSO_STATE_INVALID' } }, session: undefined });
  expect(await callback(url, undefined)).toMatchObject({ status: 401, body: { error: { code: 'ORDERLY_E_SSO_STATE_INVALID' } } });
  const bytes = Buffer.from(flow, 'base64url');
  bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 1;
  expect(await callback(url, bytes.toString('base64url'))).toMatchObject({ status: 401, body: { error: { code: 'ORDERLY_E_SSO_STATE_INVALID' } } });

  // A flow cookie with the right state and PKCE verifier but another nonce (sealed with the
  // control room's own key, which only the host has): the ID token's nonce does not match.
  const opened = openFlow(dataKey, flow, Date.now())!;
  expect(opened.state).toBe(url.searchParams.get('state'));
  const wrongNonce = sealFlow(dataKey, 'test', { ...opened, nonce: randomBytes(32).toString('base64url') });
  expect(await callback(url, wrongNonce)).toMatchObject({
    status: 401,
    body: { error: { code: 'ORDERLY_E_SSO_CALLBACK_INVALID', details: { reason: 'nonce' } } },
    session: undefined,
  });
  // The code was redeemed by that attempt: presenting it again, with the genuine cookie, is a replay.
  expect(await callback(url, flow)).toMatchObject({
    status: 401,
    body: { error: { code: 'ORDERLY_E_SSO_CALLBACK_INVALID', details: { reason: 'invalid_grant' } } },
    session: undefined,
  });
  expect(await db.query("SELECT 1 FROM users WHERE username = 'tess'")).toHaveLength(0);

  // A clean run of the same person works, and no audit event holds the code or a token.
  const ok = await signIn('sub-tess');
  expect(ok.status).toBe(303);
  const all = JSON.stringify(await db.query('SELECT details, target FROM audit_events'));
  expect(all).not.toContain(url.searchParams.get('code')!);
  expect(all).not.toContain(flow.slice(0, 40));
});

test('the provider rotates its signing key: the next sign-in verifies against the new key without a restart', async () => {
  accounts.set('sub-rita', { username: 'rita', groups: ['rpa-auditors'], amr: ['pwd'] });
  expect(await signIn('sub-rita')).toMatchObject({ status: 303 });
  // Same issuer and client, a new key id the control room has not seen.
  provider = makeProvider(`test-key-${randomBytes(4).toString('hex')}`);
  // openid-client fetches the JWKS again for an unknown key id once its copy is a minute old (and
  // refreshes it every 5 minutes anyway): a shifted clock stands for that minute, for everyone.
  const realNow = Date.now.bind(Date);
  const shifted = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 61_000);
  try {
    const after = await signIn('sub-rita');
    expect(after).toMatchObject({ status: 303, location: '/console' });
    expect(await me(after.session!)).toMatchObject({ status: 200, body: { actor: 'user:rita', roles: ['auditor'] } });
  } finally {
    shifted.mockRestore();
  }
});
