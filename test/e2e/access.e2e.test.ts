import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import { runnerTokenPath } from '@orderly/control-room';
import { Permission, PERMISSIONS } from '../../control-room/src/access/permissions';
import { ROLE_PERMISSIONS, ROLES } from '../../control-room/src/access/roles';
import { hardenRoutes, registeredRoutes } from '../../control-room/src/http/hardening';
import { createUser, Stack, startStack, TestUser } from '../harness';

/**
 * Access control end to end: every registered route × every role (plus anonymous, the bootstrap
 * admin, runners and a service account) against ROLE_PERMISSIONS; separation of duties; MFA,
 * sessions, CSRF and step-up; revocation; lockout. Routes added later are covered automatically.
 */
let stack: Stack;
const people: Partial<Record<(typeof ROLES)[number], TestUser>> = {};
let serviceToken: string;
let runnerIdentityToken: string;

beforeAll(async () => {
  // `other` is a production segment: developers may not start runs there.
  stack = await startStack({ vault: false, controlRoomEnv: { ORDERLY_PROD_SEGMENTS: 'other' } });
  for (const role of ROLES.filter((r) => r !== 'admin')) people[role] = await createUser(stack, `${role}-1`, [role]);
  const account = await stack.api('POST', '/v1/service-accounts', { name: 'ci-publisher', roles: ['developer'] });
  serviceToken = (await stack.api('POST', `/v1/service-accounts/${account.body.id}/tokens`, { name: 'ci', expiresInDays: 7 })).body.token;
  runnerIdentityToken = (await stack.api('POST', '/v1/runners', { name: 'demo-runner-1', segment: 'demo' })).body.token;
}, 120_000);
afterAll(async () => {
  await stack?.close();
});

/** One request over HTTP (Fastify's inject needs an ESM-only module that Jest cannot load here). */
async function inject(method: string, url: string, token?: string, body?: unknown, headers: Record<string, string> = {}) {
  const hasBody = method !== 'GET' && method !== 'HEAD';
  const response = await fetch(`${stack.controlRoom.url}${url}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(hasBody ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(hasBody ? { body: JSON.stringify(body ?? {}) } : {}),
  });
  const text = await response.text();
  const json = () => {
    try {
      return JSON.parse(text);
    } catch {
      return undefined; // a PEM or PNG route
    }
  };
  return { statusCode: response.status, headers: response.headers, json };
}

/** A concrete URL for a route pattern: ids are random, so allowed calls change nothing. */
const concrete = (url: string) => url.replace(/:([A-Za-z]+)/g, (_m, name: string) => (name === 'digest' ? `sha256:${'0'.repeat(64)}` : name === 'id' ? randomUUID() : 'matrix-test'));

test('every registered route × every principal is admitted exactly where ROLE_PERMISSIONS says', async () => {
  const routes = registeredRoutes(stack.controlRoom.app).filter((r) => r.method !== 'HEAD');
  expect(routes.length).toBeGreaterThan(30);
  expect(routes.every((r) => (PERMISSIONS as readonly string[]).includes(r.permission))).toBe(true);
  const principals: { name: string; token: string | undefined; permissions: ReadonlySet<Permission> }[] = [
    { name: 'anonymous', token: undefined, permissions: new Set() },
    { name: 'admin', token: stack.adminToken, permissions: new Set(ROLE_PERMISSIONS.admin) },
    { name: 'bootstrap runner', token: readFileSync(runnerTokenPath(join(stack.dataDir, 'secrets'), 'demo'), 'utf8').trim(), permissions: new Set(['runner.api']) },
    { name: 'runner identity', token: runnerIdentityToken, permissions: new Set(['runner.api']) },
    { name: 'service account (developer)', token: serviceToken, permissions: new Set(ROLE_PERMISSIONS.developer) },
    ...Object.entries(people).map(([role, user]) => ({ name: role, token: user!.token, permissions: new Set(ROLE_PERMISSIONS[role as 'developer']) })),
  ];
  const mismatches: string[] = [];
  for (const route of routes) {
    for (const principal of principals) {
      const response = await inject(route.method, concrete(route.url), principal.token);
      const error = (response.json() as { error?: { code: string; details?: { permission?: string } } } | undefined)?.error;
      const deniedByTable = (response.statusCode === 401 && error?.code === 'ORDERLY_E_UNAUTHENTICATED')
        || (response.statusCode === 403 && error?.code === 'ORDERLY_E_FORBIDDEN' && error.details?.permission === route.permission);
      const expectedDenied = route.permission !== 'public' && !principal.permissions.has(route.permission);
      const expectedStatus = principal.token === undefined ? 401 : 403;
      if (expectedDenied !== deniedByTable || (expectedDenied && response.statusCode !== expectedStatus)) {
        mismatches.push(`${route.method} ${route.url} as ${principal.name}: ${response.statusCode} ${error?.code ?? ''} (expected ${expectedDenied ? expectedStatus : 'admitted'})`);
      }
    }
  }
  expect(mismatches).toEqual([]);
}, 120_000);

test('a route without a permission cannot be registered', () => {
  const app = Fastify();
  hardenRoutes(app, { maxPackageBytes: 1024 });
  expect(() => app.get('/no-permission', async () => 'x')).toThrow(/declares no valid permission/);
  expect(() => app.get('/bogus', { config: { permission: 'everything' as Permission } }, async () => 'x')).toThrow(/declares no valid permission/);
  app.get('/fine', { config: { permission: 'public' } }, async () => 'x');
  expect(registeredRoutes(app).map((r) => `${r.method} ${r.url}`)).toContain('GET /fine');
});

test('step-up is required on credential changes, key registration and role changes', () => {
  const stepUp = registeredRoutes(stack.controlRoom.app).filter((r) => r.stepUp).map((r) => `${r.method} ${r.url}`);
  expect(stepUp).toEqual(expect.arrayContaining([
    'PUT /v1/credentials/:bot/:name', 'POST /v1/credentials/:bot/:name/rotate', 'POST /v1/credentials/:bot/revoke-runs', 'POST /v1/keys', 'PUT /v1/users/:id/roles',
  ]));
});

describe('separation of duties', () => {
  test('an operator cannot publish; a developer can reach publishing', async () => {
    const asOperator = await inject('POST', '/v1/packages', people.operator!.token, { archive: 'AAAA', envelope: {} });
    expect(asOperator.statusCode).toBe(403);
    expect(asOperator.json().error).toMatchObject({ code: 'ORDERLY_E_FORBIDDEN', details: { permission: 'packages.publish' } });
    const asDeveloper = await inject('POST', '/v1/packages', people.developer!.token, { archive: 'AAAA', envelope: {} });
    expect(asDeveloper.statusCode).toBe(400); // admitted, then the package is refused as malformed
  });

  test('a developer cannot set or rotate credentials or register keys', async () => {
    for (const [method, url] of [['PUT', '/v1/credentials/some-bot/api_key'], ['POST', '/v1/credentials/some-bot/api_key/rotate'], ['POST', '/v1/keys']] as const) {
      const response = await inject(method, url, people.developer!.token, { value: 'x'.repeat(12) });
      expect(response.statusCode).toBe(403);
      expect(response.json().error.code).toBe('ORDERLY_E_FORBIDDEN');
    }
  });

  test('a developer starts runs only outside production segments; an operator anywhere', async () => {
    const run = (token: string, segment?: string) => inject('POST', '/v1/runs', token, { bot: 'no-such-bot', ...(segment ? { segment } : {}) });
    for (const response of [await run(people.developer!.token, 'other'), await run(people.developer!.token)]) {
      expect(response.statusCode).toBe(403);
      expect(response.json().error).toMatchObject({ code: 'ORDERLY_E_FORBIDDEN', details: { permission: 'runs.create' } });
    }
    const batch = await inject('POST', '/v1/runs/batch', people.developer!.token, { runs: [{ bot: 'no-such-bot', segment: 'demo' }, { bot: 'no-such-bot', segment: 'other' }] });
    expect(batch.statusCode).toBe(403);
    // Admitted (the bot does not exist): the segment check passed.
    expect((await run(people.developer!.token, 'demo')).json().error.code).toBe('ORDERLY_E_BOT_UNKNOWN');
    expect((await run(people.operator!.token, 'other')).json().error.code).toBe('ORDERLY_E_BOT_UNKNOWN');
    expect((await run(people.approver!.token, 'demo')).statusCode).toBe(403);
  });

  test('security cannot change their own roles; role changes need a fresh TOTP with a token', async () => {
    const security = people.security!;
    const auditor = people.auditor!;
    const own = await inject('PUT', `/v1/users/${security.id}/roles`, security.token, { roles: ['security', 'approver'] }, { 'x-orderly-totp': await security.nextCode() });
    expect(own.json().error.code).toBe('ORDERLY_E_FORBIDDEN');
    const noCode = await inject('PUT', `/v1/users/${auditor.id}/roles`, security.token, { roles: ['auditor', 'operator'] });
    expect(noCode.statusCode).toBe(403);
    expect(noCode.json().error.code).toBe('ORDERLY_E_STEP_UP_REQUIRED');
    const code = await security.nextCode();
    const changed = await inject('PUT', `/v1/users/${auditor.id}/roles`, security.token, { roles: ['auditor', 'operator'] }, { 'x-orderly-totp': code });
    expect(changed.statusCode).toBe(200);
    expect(changed.json().roles).toEqual(['auditor', 'operator']);
    // The same code again is a replay.
    const replay = await inject('PUT', `/v1/users/${auditor.id}/roles`, security.token, { roles: ['auditor'] }, { 'x-orderly-totp': code });
    expect(replay.json().error.code).toBe('ORDERLY_E_STEP_UP_REQUIRED');
    // The auditor's token carries only the roles it was issued with: auditor, not the new operator role.
    expect((await inject('GET', '/v1/runs', auditor.token)).statusCode).toBe(403);
  });
});

describe('console sessions', () => {
  let user: TestUser;
  beforeAll(async () => {
    user = await createUser(stack, 'console-user', ['operator']);
  }, 60_000);

  const signIn = async (code: string) => stack.api('POST', '/v1/session', { username: user.username, password: user.password, code }, '');

  test('no session without a second factor; the cookie is Secure, HttpOnly, SameSite=Strict', async () => {
    const noCode = await fetch(`${stack.controlRoom.url}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: user.username, password: user.password }) });
    expect(noCode.status).toBe(400);
    expect(noCode.headers.get('set-cookie')).toBeNull();
    const wrong = await signIn('000000');
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('ORDERLY_E_SIGN_IN_FAILED');
    const response = await fetch(`${stack.controlRoom.url}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: user.username, password: user.password, code: await user.nextCode() }) });
    expect(response.status).toBe(201);
    const cookie = response.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^orderly_session=[A-Za-z0-9_-]+; /);
    for (const attribute of ['Secure', 'HttpOnly', 'SameSite=Strict', 'Path=/']) expect(cookie.split('; ')).toContain(attribute);
    const { csrfToken } = (await response.json()) as { csrfToken: string };
    const session = cookie.split(';')[0]!;

    const me = await inject('GET', '/v1/me', undefined, undefined, { cookie: session });
    expect(me.json()).toMatchObject({ kind: 'user', actor: 'user:console-user', roles: ['operator'] });
    // State-changing requests on the cookie need the CSRF header.
    const forged = await inject('POST', '/v1/tokens', undefined, { name: 'from-console', expiresInDays: 1 }, { cookie: session });
    expect(forged.statusCode).toBe(403);
    expect(forged.json().error.code).toBe('ORDERLY_E_CSRF_TOKEN_INVALID');
    const wrongCsrf = await inject('POST', '/v1/tokens', undefined, { name: 'from-console', expiresInDays: 1 }, { cookie: session, 'x-csrf-token': `${csrfToken}x` });
    expect(wrongCsrf.json().error.code).toBe('ORDERLY_E_CSRF_TOKEN_INVALID');
    const made = await inject('POST', '/v1/tokens', undefined, { name: 'from-console', expiresInDays: 1 }, { cookie: session, 'x-csrf-token': csrfToken });
    expect(made.statusCode).toBe(201);
    // Signing out ends the session at once.
    expect((await inject('DELETE', '/v1/session', undefined, undefined, { cookie: session, 'x-csrf-token': csrfToken })).statusCode).toBe(204);
    expect((await inject('GET', '/v1/me', undefined, undefined, { cookie: session })).statusCode).toBe(401);
  });

  test('a session step-up takes a fresh TOTP code, once', async () => {
    const response = await fetch(`${stack.controlRoom.url}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: user.username, password: user.password, code: await user.nextCode() }) });
    const session = response.headers.get('set-cookie')!.split(';')[0]!;
    const { csrfToken } = (await response.json()) as { csrfToken: string };
    const headers = { cookie: session, 'x-csrf-token': csrfToken };
    const code = await user.nextCode();
    expect((await inject('POST', '/v1/session/step-up', undefined, { code }, headers)).statusCode).toBe(204);
    expect((await inject('POST', '/v1/session/step-up', undefined, { code }, headers)).json().error.code).toBe('ORDERLY_E_SIGN_IN_FAILED');
  }, 90_000);
});

test('revoking an API token takes effect on the next request; a revoked runner identity is shut out', async () => {
  const user = await createUser(stack, 'revoker', ['auditor']);
  expect((await inject('GET', '/v1/me', user.token)).statusCode).toBe(200);
  const listed = await inject('GET', '/v1/tokens', user.token);
  expect(listed.json().tokens.map((t: { id: string }) => t.id)).toContain(user.tokenId);
  expect(JSON.stringify(listed.json())).not.toContain(user.token);
  expect((await inject('DELETE', `/v1/tokens/${user.tokenId}`, user.token)).statusCode).toBe(200);
  const after = await inject('GET', '/v1/me', user.token);
  expect(after.statusCode).toBe(401);
  expect(after.json().error.code).toBe('ORDERLY_E_UNAUTHENTICATED');

  const runner = await stack.api('POST', '/v1/runners', { name: 'short-lived', segment: 'demo' });
  expect((await inject('GET', `/v1/runner/packages/sha256:${'0'.repeat(64)}`, runner.body.token)).statusCode).toBe(404);
  expect((await inject('DELETE', `/v1/runners/${runner.body.id}`, people.security!.token)).statusCode).toBe(200);
  expect((await inject('GET', `/v1/runner/packages/sha256:${'0'.repeat(64)}`, runner.body.token)).statusCode).toBe(401);
});

test('brute force: five failures lock the username, known or not, with the same answer', async () => {
  const user = await createUser(stack, 'target', ['auditor']);
  for (const username of [user.username, 'no-such-person']) {
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) answers.push((await stack.api('POST', '/v1/session', { username, password: 'wrong password', code: '000000' }, '')).body.error.code);
    expect(answers).toEqual([...Array(5).fill('ORDERLY_E_SIGN_IN_FAILED'), 'ORDERLY_E_SIGN_IN_LOCKED']);
  }
  const locked = await stack.api('POST', '/v1/session', { username: user.username, password: user.password, code: await user.nextCode() }, '');
  expect(locked.status).toBe(429);
  expect(locked.body.error.details.retryAfterSeconds).toBeGreaterThan(0);
  // The security team unlocks.
  expect((await inject('POST', `/v1/users/${user.username}/unlock`, people.security!.token)).statusCode).toBe(200);
  expect((await stack.api('POST', '/v1/session', { username: user.username, password: user.password, code: await user.nextCode() }, '')).status).toBe(201);
}, 90_000);
