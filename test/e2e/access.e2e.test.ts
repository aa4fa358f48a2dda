import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import { runnerTokenPath } from '@orderly/control-room';
import { generateSigningKeyPair } from '@orderly/shared';
import { Permission } from '../../control-room/src/access/permissions';
import { hardenRoutes, registeredRoutes } from '../../control-room/src/http/hardening';
import { createUser, REPO, Stack, startStack, TEST_REASON, TestUser } from '../harness';

/**
 * Access control end to end, held to the README rather than to the code: the route x role
 * matrix reads its expectations from the README's permission and route tables (never from
 * roles.ts), fails on any 5xx, and probes with real ids of a production run and of packages of
 * another segment, so that the checks inside handlers are reached. Then: segment-scoped bindings
 * and PHI reads by reason; step-up and two people for identity changes; separation of duties;
 * sessions, CSRF, revocation, lockout.
 */

// ---- The README's tables -------------------------------------------------------------------
const README = readFileSync(join(REPO, 'README.md'), 'utf8');

/** The markdown table whose header row starts with `head`: header cells and body rows. */
function readmeTable(head: string): { header: string[]; rows: string[][] } {
  const lines = README.split('\n');
  const at = lines.findIndex((l) => l.startsWith(head));
  if (at < 0) throw new Error(`README has no table starting with ${head}`);
  // These two tables hold no `|` inside a cell.
  const cells = (line: string) =>
    line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
  const rows: string[][] = [];
  for (const line of lines.slice(at + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(cells(line.trim()));
  }
  return { header: cells(lines[at]!.trim()), rows };
}
const unquote = (cell: string) => cell.replace(/^`|`$/g, '');

/** Column (role, `admin`, `runner`) -> the permissions the README gives it. */
const README_ROLES: ReadonlyMap<string, ReadonlySet<string>> = (() => {
  const { header, rows } = readmeTable('| permission | developer |');
  const roles = new Map<string, Set<string>>(header.slice(1).map((h) => [h, new Set<string>()]));
  for (const row of rows) header.slice(1).forEach((role, i) => row[i + 1] === '✓' && roles.get(role)!.add(unquote(row[0]!)));
  return roles;
})();
/** `METHOD /path` -> the permission and step-up the README documents for it. */
const README_ROUTES: ReadonlyMap<string, { permission: string; stepUp: boolean }> = new Map(
  readmeTable('| route | permission | step-up |').rows.map((row) => [unquote(row[0]!), { permission: unquote(row[1]!), stepUp: row[2] === 'step-up' }]),
);

// ---- The stack --------------------------------------------------------------------------------
const PERSON_ROLES = ['developer', 'approver', 'operator', 'security', 'auditor'] as const;
let stack: Stack;
const people: Partial<Record<(typeof PERSON_ROLES)[number], TestUser>> = {};
let serviceToken: string;
let runnerIdentityToken: string;
let demoRunnerToken: string;
let otherRunnerToken: string;
/** Real ids: a waiting run in the production segment `other`, one in `demo`, and two packages. */
const real = { prodRun: '', demoRun: '', demoOnlyDigest: '', bothDigest: '' };
/** A runner's report-signing public key, of a pair made where the runner runs (orderly runner keygen). */
const runnerPublicKey = () => generateSigningKeyPair().publicKeyPem;

beforeAll(async () => {
  const secretFile = join(REPO, 'node_modules', '.access-alert-secret');
  writeFileSync(secretFile, 'access-e2e-alert-secret-0123456789abcdef', { mode: 0o600 });
  // `other` is a production segment: developers may not start runs there. Alerts go to a closed
  // port, so they stay in the outbox where the test can see them.
  stack = await startStack({
    vault: false,
    controlRoomEnv: { ORDERLY_PROD_SEGMENTS: 'other', ORDERLY_ALERT_WEBHOOK_URL: 'http://127.0.0.1:9/alerts', ORDERLY_ALERT_WEBHOOK_SECRET_FILE: secretFile },
  });
  for (const role of PERSON_ROLES) people[role] = await createUser(stack, `${role}-1`, [role]);
  const account = await stack.api('POST', '/v1/service-accounts', { name: 'ci-publisher', roles: ['developer'] });
  serviceToken = (await stack.api('POST', `/v1/service-accounts/${account.body.id}/tokens`, { name: 'ci', expiresInDays: 7 })).body.token;
  runnerIdentityToken = (await stack.api('POST', '/v1/runners', { name: 'demo-runner-1', segment: 'demo', publicKey: runnerPublicKey() })).body.token;
  demoRunnerToken = readFileSync(runnerTokenPath(join(stack.dataDir, 'secrets'), 'demo'), 'utf8').trim();
  otherRunnerToken = readFileSync(runnerTokenPath(join(stack.dataDir, 'secrets'), 'other'), 'utf8').trim();

  real.demoOnlyDigest = (await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'slow'))).digest; // segments [demo]
  real.bothDigest = (await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'sleepy'))).digest; // [demo, other]
  // The approver acknowledges the permission diff (a first prod version adds everything) and
  // steps up with a fresh code.
  const { diffDigest } = (await stack.api('GET', '/v1/packages/sleepy/1.0.0/permissions')).body as { diffDigest: string };
  const promoted = await fetch(`${stack.controlRoom.url}/v1/packages/sleepy/1.0.0/promote`, {
    method: 'POST',
    headers: { authorization: `Bearer ${people.approver!.token}`, 'content-type': 'application/json', 'x-orderly-totp': await people.approver!.nextCode() },
    body: JSON.stringify({ channel: 'prod', ticket: 'CHG-ACCESS', acknowledgePermissions: diffDigest }),
  });
  if (promoted.status >= 300) throw new Error(`promote failed: ${await promoted.text()}`);
  // No runner runs in this stack: both runs stay waiting, so probes change nothing.
  real.prodRun = (await stack.startRun({ bot: 'sleepy', segment: 'other', input: {} } as never)).id;
  real.demoRun = (await stack.startRun({ bot: 'sleepy', segment: 'demo', input: {} } as never)).id;
}, 180_000);
afterAll(async () => {
  await stack?.close();
});

/** One request over HTTP (Fastify's inject needs an ESM-only module that Jest cannot load here). */
async function inject(method: string, url: string, token?: string, body?: unknown, headers: Record<string, string> = {}) {
  const hasBody = method !== 'GET' && method !== 'HEAD' && body !== null;
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
const withCode = async (user: TestUser) => ({ 'x-orderly-totp': await user.nextCode() });

/**
 * A console session of `user`, signed in just now: a sign-in is a fresh second factor for five
 * minutes, so a test can make several step-up requests without waiting for new TOTP steps.
 */
async function freshSession(user: TestUser): Promise<Record<string, string>> {
  const response = await fetch(`${stack.controlRoom.url}/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: user.username, password: user.password, code: await user.nextCode() }),
  });
  if (response.status !== 201) throw new Error(`sign-in failed: ${await response.text()}`);
  const { csrfToken } = (await response.json()) as { csrfToken: string };
  return { cookie: response.headers.get('set-cookie')!.split(';')[0]!, 'x-csrf-token': csrfToken };
}

/**
 * A concrete URL for a route pattern. Reads and runner routes get real ids (the production run,
 * packages of both kinds) so that segment checks inside handlers are reached; routes that would
 * change something when admitted get ids that match nothing (a cancel of the real run would end it).
 */
function concrete(method: string, url: string): string {
  const destructive = method !== 'GET' && !url.startsWith('/v1/runner/');
  return url.replace(/:([A-Za-z]+)/g, (_m, name: string) => {
    if (name === 'digest') return real.demoOnlyDigest;
    if ((name === 'id' || name === 'runId') && /\/runs\/|\/dlq\//.test(url)) return destructive && !url.includes('/dlq/') ? randomUUID() : real.prodRun;
    if (name === 'id') return randomUUID();
    if (name === 'shot') return '1';
    if (name === 'name' && url.startsWith('/v1/packages')) return 'sleepy';
    if (name === 'version') return '1.0.0';
    return 'matrix-test';
  });
}

/** Valid bodies for the runner routes: a malformed body would stop at validation, before the checks. */
/** A well-formed fencing token that no claim issued: valid bodies reach the handlers' own checks. */
const PROBE_FENCE = 'probe-fence-0000000000000000';
const RUNNER_BODIES: Record<string, unknown> = {
  'POST /v1/runner/runs/:id/claim': { runnerId: 'matrix-probe' },
  'POST /v1/runner/runs/:id/renew': { attempt: 1, fence: PROBE_FENCE },
  'POST /v1/runner/runs/:id/steps/begin': { attempt: 1, fence: PROBE_FENCE, name: 'probe' },
  'POST /v1/runner/runs/:id/steps/complete': { attempt: 1, fence: PROBE_FENCE, name: 'probe', result: { ok: true } },
  'POST /v1/runner/runs/:id/lease': { attempt: 1, fence: PROBE_FENCE, accessor: 'probe-accessor' },
  // The PNG signature and nothing else: enough to pass the format check and reach the segment's.
  'POST /v1/runner/runs/:id/screenshots': { attempt: 1, name: 'probe', png: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).toString('base64') },
};

test('the README documents every registered route with the permission and step-up the code declares, and no other', () => {
  const registered = registeredRoutes(stack.controlRoom.app).filter((r) => r.method !== 'HEAD');
  expect(registered.length).toBeGreaterThan(50);
  const code = new Map(registered.map((r) => [`${r.method} ${r.url}`, { permission: r.permission as string, stepUp: r.stepUp }]));
  expect([...code.keys()].filter((k) => !README_ROUTES.has(k))).toEqual([]);
  expect([...README_ROUTES.keys()].filter((k) => !code.has(k))).toEqual([]);
  const differing = [...code].filter(([k, v]) => README_ROUTES.get(k)!.permission !== v.permission || README_ROUTES.get(k)!.stepUp !== v.stepUp);
  expect(
    differing.map(
      ([k, v]) =>
        `${k}: code ${v.permission}${v.stepUp ? ' step-up' : ''}, README ${README_ROUTES.get(k)!.permission}${README_ROUTES.get(k)!.stepUp ? ' step-up' : ''}`,
    ),
  ).toEqual([]);
  // Every permission a route names is in the README's permission table.
  expect([...README_ROUTES.values()].filter((r) => ![...README_ROLES.values()].some((perms) => perms.has(r.permission)))).toEqual([]);
});

test('every registered route x every principal answers as the README tables say: never a 5xx, step-up where documented', async () => {
  const routes = registeredRoutes(stack.controlRoom.app).filter((r) => r.method !== 'HEAD');
  const column = (name: string) => {
    const perms = README_ROLES.get(name);
    if (!perms) throw new Error(`README permission table has no column ${name}`);
    return perms;
  };
  const principals: { name: string; token: string | undefined; permissions: ReadonlySet<string>; person: boolean }[] = [
    { name: 'anonymous', token: undefined, permissions: new Set(['public']), person: false },
    { name: 'admin', token: stack.adminToken, permissions: column('admin'), person: false },
    { name: 'bootstrap runner', token: demoRunnerToken, permissions: column('runner'), person: false },
    { name: 'runner identity', token: runnerIdentityToken, permissions: column('runner'), person: false },
    // A service account never passes a step-up either.
    { name: 'service account (developer)', token: serviceToken, permissions: column('developer'), person: true },
    ...PERSON_ROLES.map((role) => ({ name: role, token: people[role]!.token, permissions: column(role), person: true })),
  ];
  const mismatches: string[] = [];
  for (const route of routes) {
    const documented = README_ROUTES.get(`${route.method} ${route.url}`);
    if (!documented) {
      mismatches.push(`${route.method} ${route.url} is not in the README`);
      continue;
    }
    for (const principal of principals) {
      const key = `${route.method} ${route.url}`;
      const response = await inject(route.method, concrete(route.method, route.url), principal.token, RUNNER_BODIES[key], { 'x-orderly-reason': TEST_REASON });
      const error = (response.json() as { error?: { code: string; details?: { permission?: string } } } | undefined)?.error;
      const expectedDenied = documented.permission !== 'public' && !principal.permissions.has(documented.permission);
      const expectedStatus = principal.token === undefined ? 401 : 403;
      const deniedByTable =
        (response.statusCode === 401 && error?.code === 'ORDERLY_E_UNAUTHENTICATED') ||
        (response.statusCode === 403 && error?.code === 'ORDERLY_E_FORBIDDEN' && error.details?.permission === documented.permission);
      const where = `${key} as ${principal.name}: ${response.statusCode} ${error?.code ?? ''}`;
      if (response.statusCode >= 500) mismatches.push(`${where} (a 5xx)`);
      else if (expectedDenied !== deniedByTable || (expectedDenied && response.statusCode !== expectedStatus))
        mismatches.push(`${where} (expected ${expectedDenied ? expectedStatus : 'admitted'})`);
      else if (!expectedDenied && documented.stepUp && principal.person && error?.code !== 'ORDERLY_E_STEP_UP_REQUIRED')
        mismatches.push(`${where} (expected ORDERLY_E_STEP_UP_REQUIRED: no TOTP code was sent)`);
    }
  }
  expect(mismatches).toEqual([]);
}, 180_000);

test('a runner of another segment reaches nothing of a production run or of a package not allowed in its segment', async () => {
  for (const token of [demoRunnerToken, runnerIdentityToken]) {
    for (const [key, body] of Object.entries(RUNNER_BODIES)) {
      const path = key.split(' ')[1]!.replace(':id', real.prodRun);
      const response = await inject('POST', path, token, body);
      const code = response.json()?.error?.code;
      // Refused by the handler's segment check: not a validation error (the probe reached it), not a success.
      expect({ key, status: response.statusCode, code }).toEqual({
        key,
        status: expect.any(Number),
        code: expect.stringMatching(/^ORDERLY_E_(NOT_FOUND|FORBIDDEN|RUN_NOT_CLAIMABLE|JOB_WRONG_SEGMENT|ATTEMPT_STALE)$/),
      });
      expect(response.statusCode).toBeGreaterThanOrEqual(403);
      expect(response.statusCode).toBeLessThan(500);
    }
  }
  // The production run is untouched.
  expect((await stack.api('GET', `/v1/runs/${real.prodRun}`)).body).toMatchObject({ status: 'waiting', attempts: 0 });
  // Package fetch: `other`'s runner gets nothing of a demo-only package; demo's runner gets it.
  for (const suffix of ['', '/release']) {
    const refused = await inject('GET', `/v1/runner/packages/${real.demoOnlyDigest}${suffix}`, otherRunnerToken);
    expect([refused.statusCode, refused.json().error.code]).toEqual([404, 'ORDERLY_E_NOT_FOUND']);
    expect((await inject('GET', `/v1/runner/packages/${real.demoOnlyDigest}${suffix}`, demoRunnerToken)).statusCode).toBe(200);
    expect((await inject('GET', `/v1/runner/packages/${real.bothDigest}${suffix}`, otherRunnerToken)).statusCode).toBe(200);
  }
});

describe('PHI by segment and by reason', () => {
  let devOperator: TestUser;
  beforeAll(async () => {
    devOperator = await createUser(stack, 'operator-of-demo', ['operator@demo']);
  }, 60_000);
  const phiReads = async () =>
    (await inject('GET', `/v1/access/phi-reads?runId=${real.prodRun}`, people.auditor!.token)).json().reads as {
      actor: string;
      runId: string;
      part: string;
      reason: string;
      segment: string;
    }[];

  test('an operator bound to demo reads nothing of a prod run, not even that it exists', async () => {
    const listed = (await inject('GET', '/v1/runs?limit=500', devOperator.token)).json().runs as { id: string; segment: string }[];
    expect(listed.map((r) => r.id)).toContain(real.demoRun);
    expect(listed.filter((r) => r.segment !== 'demo')).toEqual([]);
    for (const path of ['', '/result', '/logs', '/screenshots', '/screenshots/1']) {
      const response = await inject('GET', `/v1/runs/${real.prodRun}${path}`, devOperator.token, undefined, {
        'x-orderly-reason': 'ticket CHG-7 eligibility question',
      });
      expect([path, response.statusCode, response.json()?.error?.code]).toEqual([path, 404, 'ORDERLY_E_NOT_FOUND']);
    }
    const cancel = await inject('POST', `/v1/runs/${real.prodRun}/cancel`, devOperator.token);
    expect([cancel.statusCode, cancel.json().error.code]).toEqual([404, 'ORDERLY_E_NOT_FOUND']);
    const start = await inject('POST', '/v1/runs', devOperator.token, { bot: 'sleepy', segment: 'other', input: {} });
    expect([start.statusCode, start.json().error.code]).toEqual([403, 'ORDERLY_E_FORBIDDEN']);
    // In its own segment it reads with a reason.
    const own = await inject('GET', `/v1/runs/${real.demoRun}/result`, devOperator.token, undefined, {
      'x-orderly-reason': 'ticket CHG-7 eligibility question',
    });
    expect(own.statusCode).toBe(200);
    expect(own.json()).toMatchObject({ runId: real.demoRun, input: {}, result: null });
    // Dead letters and schedules of prod are out of its sight too.
    const dlq = await inject('GET', '/v1/dlq?segment=other', devOperator.token);
    expect(dlq.json()).toEqual({ entries: [], nextCursor: null });
    expect((await inject('GET', `/v1/dlq/${real.prodRun}`, devOperator.token)).statusCode).toBe(404);
    const discard = await inject('POST', `/v1/dlq/${real.prodRun}/discard`, devOperator.token, { reason: 'not mine to discard' });
    expect([discard.statusCode, discard.json().error.code]).toEqual([404, 'ORDERLY_E_NOT_FOUND']);
    const prodSchedule = await stack.api('POST', '/v1/schedules', { name: 'prod-yearly', bot: 'sleepy', segment: 'other', input: {}, cron: '0 0 1 1 *' });
    expect(prodSchedule.status).toBe(201);
    const schedules = (await inject('GET', '/v1/schedules', devOperator.token)).json().schedules as { name: string }[];
    expect(schedules.map((x) => x.name)).not.toContain('prod-yearly');
    expect((await inject('GET', '/v1/schedules/prod-yearly', devOperator.token)).statusCode).toBe(404);
    expect((await inject('POST', '/v1/schedules/prod-yearly/pause', devOperator.token)).statusCode).toBe(404);
    const schedule = await inject('POST', '/v1/schedules', devOperator.token, {
      name: 'sneaky',
      bot: 'sleepy',
      segment: 'other',
      input: {},
      cron: '0 0 1 1 *',
    });
    expect([schedule.statusCode, schedule.json().error.code]).toEqual([403, 'ORDERLY_E_FORBIDDEN']);
    expect((await stack.api('GET', '/v1/schedules/prod-yearly')).body).toMatchObject({ paused: false });
    // Nothing of the prod run was read by it (the review holds only the matrix's reads).
    expect((await phiReads()).filter((r) => r.actor === 'user:operator-of-demo')).toEqual([]);
  });

  test('listing and state views carry no PHI; a PHI read without a reason is refused, with one it is audited and reviewable', async () => {
    const operator = people.operator!;
    const state = (await inject('GET', `/v1/runs/${real.prodRun}`, operator.token)).json();
    expect(state).toMatchObject({ id: real.prodRun, segment: 'other', status: 'waiting' });
    expect(state).not.toHaveProperty('input');
    expect(state).not.toHaveProperty('result');
    const before = (await phiReads()).length;
    for (const path of ['/result', '/logs', '/screenshots/1']) {
      const refused = await inject('GET', `/v1/runs/${real.prodRun}${path}`, operator.token);
      expect([path, refused.statusCode, refused.json().error.code]).toEqual([path, 400, 'ORDERLY_E_REASON_REQUIRED']);
      const blank = await inject('GET', `/v1/runs/${real.prodRun}${path}`, operator.token, undefined, { 'x-orderly-reason': '  ' });
      expect(blank.json().error.code).toBe('ORDERLY_E_REASON_REQUIRED');
    }
    expect((await phiReads()).length).toBe(before);

    const read = await inject('GET', `/v1/runs/${real.prodRun}/result`, operator.token, undefined, { 'x-orderly-reason': 'ticket CHG-8 member called' });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual({ runId: real.prodRun, status: 'waiting', input: {}, result: null });
    const logs = await inject('GET', `/v1/runs/${real.prodRun}/logs`, operator.token, undefined, { 'x-orderly-reason': 'ticket CHG-8 member called' });
    expect(logs.json()).toEqual({ lines: [] });
    const reads = (await phiReads()).filter((r) => r.reason !== TEST_REASON);
    expect(reads.length).toBe(2);
    expect(reads.map((r) => [r.actor, r.runId, r.segment, r.part, r.reason])).toEqual([
      ['user:operator-1', real.prodRun, 'other', 'logs', 'ticket CHG-8 member called'],
      ['user:operator-1', real.prodRun, 'other', 'result', 'ticket CHG-8 member called'],
    ]);
    // The review is the auditors'; an operator cannot see who read what.
    expect((await inject('GET', '/v1/access/phi-reads', operator.token)).statusCode).toBe(403);
  });

  test('a developer reads PHI of runs outside production only', async () => {
    const developer = people.developer!;
    const reason = { 'x-orderly-reason': 'debugging a failing dev run' };
    expect((await inject('GET', `/v1/runs/${real.demoRun}/result`, developer.token, undefined, reason)).statusCode).toBe(200);
    const prod = await inject('GET', `/v1/runs/${real.prodRun}/result`, developer.token, undefined, reason);
    expect([prod.statusCode, prod.json().error.code, prod.json().error.details.permission]).toEqual([403, 'ORDERLY_E_FORBIDDEN', 'runs.read_phi']);
  });

  test('bindings name configured segments of run roles only', async () => {
    for (const roles of [['operator@nowhere'], ['security@demo'], ['approver@demo'], ['operator@']]) {
      const response = await inject('POST', '/v1/users', stack.adminToken, { username: 'bad-binding', roles });
      expect([String(roles), response.statusCode]).toEqual([String(roles), 400]);
    }
  });
});

describe('step-up and two people for identity changes', () => {
  let secA: TestUser;
  let secB: TestUser;
  /** Fresh console sessions of both: step-up requests without a new TOTP code each. */
  let asA: Record<string, string>;
  let asB: Record<string, string>;
  beforeAll(async () => {
    // secA also holds developer and approver, so it may grant them; secB holds security only.
    secA = await createUser(stack, 'sec-a', ['security', 'developer', 'approver']);
    secB = await createUser(stack, 'sec-b', ['security']);
    asA = await freshSession(secA);
    asB = await freshSession(secB);
  }, 120_000);

  test('a security user without a fresh second factor cannot create a user, a service account, a runner or a token', async () => {
    const attempts: [string, string, unknown][] = [
      ['POST', '/v1/users', { username: 'no-step-up', roles: ['developer'] }],
      ['POST', '/v1/service-accounts', { name: 'no-step-up', roles: ['developer'] }],
      ['POST', '/v1/runners', { name: 'no-step-up', segment: 'demo', publicKey: runnerPublicKey() }],
      ['POST', '/v1/tokens', { name: 'no-step-up', expiresInDays: 1 }],
      ['POST', `/v1/service-accounts/ci-publisher/tokens`, { name: 'no-step-up', expiresInDays: 1 }],
    ];
    for (const [method, path, body] of attempts) {
      const response = await inject(method, path, secA.token, body);
      expect([path, response.statusCode, response.json().error.code]).toEqual([path, 403, 'ORDERLY_E_STEP_UP_REQUIRED']);
    }
    const names = JSON.stringify([
      (await stack.api('GET', '/v1/users')).body,
      (await stack.api('GET', '/v1/runners')).body,
      (await stack.api('GET', '/v1/service-accounts')).body,
      (await stack.api('GET', '/v1/tokens?all=true')).body,
    ]);
    expect(names).not.toContain('no-step-up');
    // With a fresh code the same request goes through.
    const created = await inject('POST', '/v1/users', secA.token, { username: 'with-step-up', roles: ['developer'] }, await withCode(secA));
    expect(created.statusCode).toBe(201);
    expect(created.json().user.roles).toEqual(['developer']);
  });

  test('nobody grants a role they do not hold', async () => {
    for (const [path, method, body] of [
      ['/v1/users', 'POST', { username: 'op-by-sec', roles: ['operator'] }],
      ['/v1/service-accounts', 'POST', { name: 'op-by-sec', roles: ['operator'] }],
      [`/v1/users/${people.auditor!.id}/roles`, 'PUT', { roles: ['auditor', 'operator'] }],
    ] as const) {
      const response = await inject(method, path, undefined, body, asB);
      expect([path, response.statusCode, response.json().error.code]).toEqual([path, 403, 'ORDERLY_E_GRANT_NOT_HELD']);
    }
    // A token for a service account hands its roles over: the issuer must hold them.
    const token = await inject('POST', '/v1/service-accounts/ci-publisher/tokens', undefined, { name: 'handed', expiresInDays: 1 }, asB);
    expect(token.json().error.code).toBe('ORDERLY_E_GRANT_NOT_HELD');
    expect(JSON.stringify((await stack.api('GET', '/v1/users')).body)).not.toContain('op-by-sec');
  });

  test('a second security person is needed to grant approver; the request raises an alert', async () => {
    const candidate = (await inject('POST', '/v1/users', undefined, { username: 'candidate', roles: ['developer'] }, asA)).json().user as { id: string };
    const asked = await inject('PUT', `/v1/users/${candidate.id}/roles`, undefined, { roles: ['developer', 'approver'] }, asA);
    expect(asked.statusCode).toBe(202);
    const request = asked.json().request as { id: string; status: string; rolesAfter: string[]; requestedBy: string };
    expect(request).toMatchObject({ status: 'pending', rolesAfter: ['developer', 'approver'], requestedBy: 'user:sec-a' });
    expect(asked.json().user.roles).toEqual(['developer']);
    const users = (await stack.api('GET', '/v1/users')).body.users as { username: string; roles: string[] }[];
    expect(users.find((u) => u.username === 'candidate')!.roles).toEqual(['developer']);
    const alerts = (await inject('GET', '/v1/alerts', people.operator!.token)).json();
    expect(alerts.undelivered.map((a: { kind: string }) => a.kind)).toContain('access.requested');

    // The requester cannot confirm it; the second person needs a fresh factor too.
    const own = await inject('POST', `/v1/access/requests/${request.id}/approve`, undefined, {}, asA);
    expect([own.statusCode, own.json().error.code]).toEqual([409, 'ORDERLY_E_ACCESS_REQUEST_INVALID']);
    const noCode = await inject('POST', `/v1/access/requests/${request.id}/approve`, secB.token, {});
    expect(noCode.json().error.code).toBe('ORDERLY_E_STEP_UP_REQUIRED');
    const pending = (await inject('GET', '/v1/access/requests', secB.token)).json().requests as { id: string }[];
    expect(pending.map((r) => r.id)).toContain(request.id);
    const approved = await inject('POST', `/v1/access/requests/${request.id}/approve`, undefined, {}, asB);
    expect(approved.statusCode).toBe(200);
    expect(approved.json()).toMatchObject({ status: 'approved', decidedBy: 'user:sec-b' });
    const after = (await stack.api('GET', '/v1/users')).body.users as { username: string; roles: string[] }[];
    expect(after.find((u) => u.username === 'candidate')!.roles).toEqual(['developer', 'approver']);
    // Decided once.
    const again = await inject('POST', `/v1/access/requests/${request.id}/approve`, undefined, {}, asB);
    expect(again.json().error.code).toBe('ORDERLY_E_ACCESS_REQUEST_INVALID');
    // Creating a person with approver waits the same way: created with the rest, approver pending.
    const created = await inject('POST', '/v1/users', undefined, { username: 'new-approver', roles: ['developer', 'approver'] }, asA);
    expect(created.statusCode).toBe(201);
    expect(created.json().user.roles).toEqual(['developer']);
    expect(created.json().request).toMatchObject({ status: 'pending', rolesAfter: ['developer', 'approver'] });
  }, 120_000);

  test('no runner is registered without its own public key: the control room makes no private key, for any segment or registrar', async () => {
    const pendingBefore = (await inject('GET', '/v1/access/requests', undefined, undefined, asA)).json().requests.length as number;
    for (const [who, token, headers] of [
      ['security with step-up', undefined, asA],
      ['admin', stack.adminToken, {}],
    ] as const) {
      for (const segment of ['other', 'demo']) {
        const keyless = await inject('POST', '/v1/runners', token, { name: `keyless-${segment}`, segment }, headers);
        const body = keyless.json();
        expect({ who, segment, status: keyless.statusCode, code: body.error?.code }).toEqual({
          who,
          segment,
          status: 400,
          code: 'ORDERLY_E_RUNNER_KEY_REQUIRED',
        });
        expect(JSON.stringify(body)).not.toContain('PRIVATE KEY');
      }
    }
    const names = ((await stack.api('GET', '/v1/runners')).body.runners as { name: string }[]).map((r) => r.name);
    expect(names.filter((n) => n.startsWith('keyless-'))).toEqual([]);
    // A refused registration asks nobody for a confirmation either.
    expect((await inject('GET', '/v1/access/requests', undefined, undefined, asA)).json().requests).toHaveLength(pendingBefore);
  });

  test('a runner for a production segment admits nothing until a second security person confirms it', async () => {
    const registered = await inject('POST', '/v1/runners', undefined, { name: 'prod-runner-1', segment: 'other', publicKey: runnerPublicKey() }, asA);
    expect(registered.statusCode).toBe(202);
    const { token, request } = registered.json() as { token: string; request: { id: string } };
    const probe = () => inject('GET', `/v1/runner/packages/${real.bothDigest}/release`, token);
    expect((await probe()).statusCode).toBe(401);
    const rejected = await inject('POST', `/v1/access/requests/${request.id}/reject`, undefined, {}, asA);
    expect(rejected.json().error.code).toBe('ORDERLY_E_ACCESS_REQUEST_INVALID');
    expect((await inject('POST', `/v1/access/requests/${request.id}/approve`, undefined, {}, asB)).statusCode).toBe(200);
    expect((await probe()).statusCode).toBe(200);
    // A runner of a non-production segment needs no second person.
    expect((await inject('POST', '/v1/runners', undefined, { name: 'demo-runner-2', segment: 'demo', publicKey: runnerPublicKey() }, asA)).statusCode).toBe(
      201,
    );
  }, 90_000);
});

test('step-up on promote and on key revoke: refused without a fresh code, done with one', async () => {
  const approver = people.approver!;
  const promote = () => inject('POST', '/v1/packages/slow/1.0.0/promote', approver.token, { channel: 'prod', ticket: 'CHG-9' });
  expect((await promote()).json().error.code).toBe('ORDERLY_E_STEP_UP_REQUIRED');
  expect((await stack.api('GET', '/v1/packages/slow/1.0.0')).body.attestations).toEqual([]);

  const security = people.security!;
  const key = generateSigningKeyPair();
  const registered = await inject(
    'POST',
    '/v1/keys',
    security.token,
    { name: 'revocable', publicKeyPem: key.publicKeyPem, owner: { kind: 'user', name: security.username } },
    await withCode(security),
  );
  expect(registered.statusCode).toBe(201);
  const keyId = registered.json().keyId as string;
  const noCode = await inject('POST', `/v1/keys/${keyId}/revoke`, security.token);
  expect([noCode.statusCode, noCode.json().error.code]).toEqual([403, 'ORDERLY_E_STEP_UP_REQUIRED']);
  const listed = (await inject('GET', '/v1/keys', security.token)).json();
  expect(JSON.stringify(listed)).toContain(keyId);
  const revoked = await inject('POST', `/v1/keys/${keyId}/revoke`, security.token, undefined, await withCode(security));
  expect(revoked.statusCode).toBe(200);
}, 90_000);

test('a route without a permission cannot be registered', () => {
  const app = Fastify();
  hardenRoutes(app, { maxPackageBytes: 1024 });
  expect(() => app.get('/no-permission', async () => 'x')).toThrow(/declares no valid permission/);
  expect(() => app.get('/bogus', { config: { permission: 'everything' as Permission } }, async () => 'x')).toThrow(/declares no valid permission/);
  app.get('/fine', { config: { permission: 'public' } }, async () => 'x');
  expect(registeredRoutes(app).map((r) => `${r.method} ${r.url}`)).toContain('GET /fine');
});

test('step-up is required on credential and key changes, promotion and every identity change', () => {
  const stepUp = registeredRoutes(stack.controlRoom.app)
    .filter((r) => r.stepUp)
    .map((r) => `${r.method} ${r.url}`);
  expect(stepUp).toEqual(
    expect.arrayContaining([
      'PUT /v1/credentials/:bot/:name',
      'POST /v1/credentials/:bot/:name/rotate',
      'POST /v1/credentials/:bot/revoke-runs',
      'POST /v1/keys',
      'POST /v1/keys/:id/revoke',
      'POST /v1/packages/:name/:version/promote',
      'PUT /v1/users/:id/roles',
      'POST /v1/users',
      'POST /v1/service-accounts',
      'POST /v1/service-accounts/:id/tokens',
      'POST /v1/runners',
      'POST /v1/tokens',
      'POST /v1/access/requests/:id/approve',
      'POST /v1/access/requests/:id/reject',
    ]),
  );
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
    for (const [method, url] of [
      ['PUT', '/v1/credentials/some-bot/api_key'],
      ['POST', '/v1/credentials/some-bot/api_key/rotate'],
      ['POST', '/v1/keys'],
    ] as const) {
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
    const batch = await inject('POST', '/v1/runs/batch', people.developer!.token, {
      runs: [
        { bot: 'no-such-bot', segment: 'demo' },
        { bot: 'no-such-bot', segment: 'other' },
      ],
    });
    expect(batch.statusCode).toBe(403);
    // Admitted (the bot does not exist): the segment check passed.
    expect((await run(people.developer!.token, 'demo')).json().error.code).toBe('ORDERLY_E_BOT_UNKNOWN');
    expect((await run(people.operator!.token, 'other')).json().error.code).toBe('ORDERLY_E_BOT_UNKNOWN');
    expect((await run(people.approver!.token, 'demo')).statusCode).toBe(403);
  });

  test('security cannot change their own roles; role changes need a fresh TOTP with a token', async () => {
    // A security person who holds the roles they grant (nobody grants a role they do not hold).
    const security = await createUser(stack, 'sec-granter', ['security', 'auditor', 'operator']);
    const auditor = people.auditor!;
    const own = await inject(
      'PUT',
      `/v1/users/${security.id}/roles`,
      security.token,
      { roles: ['security', 'auditor'] },
      { 'x-orderly-totp': await security.nextCode() },
    );
    expect(own.json().error.code).toBe('ORDERLY_E_FORBIDDEN');
    const noCode = await inject('PUT', `/v1/users/${auditor.id}/roles`, security.token, { roles: ['auditor', 'operator'] });
    expect(noCode.statusCode).toBe(403);
    expect(noCode.json().error.code).toBe('ORDERLY_E_STEP_UP_REQUIRED');
    const code = await security.nextCode();
    const changed = await inject('PUT', `/v1/users/${auditor.id}/roles`, security.token, { roles: ['auditor', 'operator'] }, { 'x-orderly-totp': code });
    expect(changed.statusCode).toBe(200);
    expect(changed.json().user.roles).toEqual(['auditor', 'operator']);
    // The same code again is a replay.
    const replay = await inject('PUT', `/v1/users/${auditor.id}/roles`, security.token, { roles: ['auditor'] }, { 'x-orderly-totp': code });
    expect(replay.json().error.code).toBe('ORDERLY_E_STEP_UP_REQUIRED');
    // The auditor's token carries only the roles it was issued with: auditor, not the new operator role.
    expect((await inject('GET', '/v1/runs', auditor.token)).statusCode).toBe(403);
  }, 90_000);
});

describe('console sessions', () => {
  let user: TestUser;
  beforeAll(async () => {
    user = await createUser(stack, 'console-user', ['operator']);
  }, 60_000);

  const signIn = async (code: string) => stack.api('POST', '/v1/session', { username: user.username, password: user.password, code }, '');

  test('no session without a second factor; the cookie is Secure, HttpOnly, SameSite=Strict', async () => {
    const noCode = await fetch(`${stack.controlRoom.url}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: user.username, password: user.password }),
    });
    expect(noCode.status).toBe(400);
    expect(noCode.headers.get('set-cookie')).toBeNull();
    const wrong = await signIn('000000');
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('ORDERLY_E_SIGN_IN_FAILED');
    const response = await fetch(`${stack.controlRoom.url}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: user.username, password: user.password, code: await user.nextCode() }),
    });
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
    const wrongCsrf = await inject(
      'POST',
      '/v1/tokens',
      undefined,
      { name: 'from-console', expiresInDays: 1 },
      { cookie: session, 'x-csrf-token': `${csrfToken}x` },
    );
    expect(wrongCsrf.json().error.code).toBe('ORDERLY_E_CSRF_TOKEN_INVALID');
    const made = await inject('POST', '/v1/tokens', undefined, { name: 'from-console', expiresInDays: 1 }, { cookie: session, 'x-csrf-token': csrfToken });
    expect(made.statusCode).toBe(201);
    // Signing out ends the session at once.
    expect((await inject('DELETE', '/v1/session', undefined, undefined, { cookie: session, 'x-csrf-token': csrfToken })).statusCode).toBe(204);
    expect((await inject('GET', '/v1/me', undefined, undefined, { cookie: session })).statusCode).toBe(401);
  });

  test('a session step-up takes a fresh TOTP code, once', async () => {
    const response = await fetch(`${stack.controlRoom.url}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: user.username, password: user.password, code: await user.nextCode() }),
    });
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

  const runner = await stack.api('POST', '/v1/runners', { name: 'short-lived', segment: 'demo', publicKey: runnerPublicKey() });
  expect((await inject('GET', `/v1/runner/packages/sha256:${'0'.repeat(64)}`, runner.body.token)).statusCode).toBe(404);
  expect((await inject('DELETE', `/v1/runners/${runner.body.id}`, people.security!.token)).statusCode).toBe(200);
  expect((await inject('GET', `/v1/runner/packages/sha256:${'0'.repeat(64)}`, runner.body.token)).statusCode).toBe(401);
});

test('brute force: five failures lock the username, known or not, with the same answer', async () => {
  const user = await createUser(stack, 'target', ['auditor']);
  for (const username of [user.username, 'no-such-person']) {
    const answers: string[] = [];
    for (let i = 0; i < 6; i++)
      answers.push((await stack.api('POST', '/v1/session', { username, password: 'wrong password', code: '000000' }, '')).body.error.code);
    expect(answers).toEqual([...Array(5).fill('ORDERLY_E_SIGN_IN_FAILED'), 'ORDERLY_E_SIGN_IN_LOCKED']);
  }
  const locked = await stack.api('POST', '/v1/session', { username: user.username, password: user.password, code: await user.nextCode() }, '');
  expect(locked.status).toBe(429);
  expect(locked.body.error.details.retryAfterSeconds).toBeGreaterThan(0);
  // The security team unlocks.
  expect((await inject('POST', `/v1/users/${user.username}/unlock`, people.security!.token)).statusCode).toBe(200);
  expect((await stack.api('POST', '/v1/session', { username: user.username, password: user.password, code: await user.nextCode() }, '')).status).toBe(201);
}, 90_000);
