import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import NodeVault from 'node-vault';
import { Client } from 'pg';
import { generateSigningKeyPair, keyIdOf, loadPublicKey, publicKeyPem, RunView, versionRoleName } from '@orderly/shared';
import { createUser, REPO, setCredential, Stack, startStack, TestUser } from '../../../test/harness';
import { packBot } from '../cli/pack';

/**
 * Each promotion needs a TOTP code its approver has not used yet, so an approver's second
 * promotion may wait for the next 30-second step: the timeouts are long for that reason alone.
 *
 * Owned bot names, per-version Vault roles, the permission diff at promotion, default versions by
 * channel, secrets masked out of results and separation of duties by person: real PostgreSQL,
 * Redis, the dev Vault over HTTP and runners (`demo` is a development segment, `live` production).
 *
 * Team `claims`: alice (developer) and the service account `ci` (owned by dave, an approver).
 * Team `other`: mallory (developer). carol is an approver with no part in any upload.
 */
let stack: Stack;
let vault: NodeVault.client;
let db: Client;
let alice: TestUser;
let mallory: TestUser;
let carol: TestUser;
let dave: TestUser;
let ciToken: string;
const keys = { alice: generateSigningKeyPair(), mallory: generateSigningKeyPair(), ci: generateSigningKeyPair() };
/** Synthetic, clearly fake secret values. */
const API_KEY = 'fake-api-key-0000-not-real-ZZ';
const LEAK_KEY = 'fake-leak-key-1111-not-real-QQ';

interface BotSpec {
  name?: string;
  version: string;
  credentials?: string[];
  hosts?: string[];
  /** Source of `run`'s body; gets `input` and `secrets`. */
  body?: string;
}

/** A tiny API-only bot (no browser), one folder per version: every version is its own digest. */
function bot(spec: BotSpec): string {
  const name = spec.name ?? 'eligibility-check';
  const dir = join(stack.dataDir, `${name}-${spec.version}`);
  mkdirSync(join(dir, 'src'), { recursive: true });
  writeFileSync(
    join(dir, 'bot.json'),
    JSON.stringify({
      name,
      version: spec.version,
      entry: 'src/index.ts',
      segments: ['demo', 'live'],
      browser: false,
      input: { type: 'object', properties: {} },
      hosts: spec.hosts ?? [],
      credentials: spec.credentials ?? ['api_key'],
      timeoutSeconds: 30,
      attempts: 1,
      contacts: { owner: 'Fake Owner', dataSteward: 'Fake Steward', securityContact: 'fake-security@example.test' },
    }),
  );
  writeFileSync(
    join(dir, 'src', 'index.ts'),
    `export default { orderlyBot: 1, async run({ secrets }: { secrets: Record<string, string> }) { ${spec.body ?? `return { version: '${spec.version}', hasKey: typeof secrets.api_key === 'string' };`} } };\n`,
  );
  return dir;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function call(method: string, path: string, body: unknown, token: string, totp?: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${stack.controlRoom.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(totp ? { 'x-orderly-totp': totp } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: await response.json().catch(() => undefined) };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function publishAs(token: string, spec: BotSpec, key: { privateKeyPem: string }): Promise<{ status: number; body: any }> {
  const packed = await packBot(bot(spec), key.privateKeyPem);
  return call('POST', '/v1/packages', { archive: packed.archive.toString('base64'), envelope: packed.envelope }, token);
}

const promoteAs = async (user: TestUser, version: string, acknowledgePermissions?: string) =>
  call(
    'POST',
    `/v1/packages/eligibility-check/${version}/promote`,
    { channel: 'prod', ...(acknowledgePermissions ? { acknowledgePermissions } : {}) },
    user.token,
    await user.nextCode(),
  );

/** The version's role and policy as Vault holds them (null when absent), read with the root token. */
async function vaultRole(version: string, name = 'eligibility-check'): Promise<{ roleId: string; config: Record<string, unknown>; policy: string } | null> {
  const role = versionRoleName(name, version);
  try {
    const roleId = (await vault.read(`auth/approle/role/${role}/role-id`)).data.role_id as string;
    const config = (await vault.read(`auth/approle/role/${role}`)).data as Record<string, unknown>;
    const policy = (await vault.read(`sys/policies/acl/${role.toLowerCase()}`)).data.policy as string;
    return { roleId, config, policy };
  } catch (err) {
    if ((err as { response?: { statusCode?: number } }).response?.statusCode === 404) return null;
    throw err;
  }
}

/** The `orderly` CLI as `token`'s holder; `stdin` answers its prompts (a TOTP code for a step-up). */
function cli(args: string[], token: string, stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(join(REPO, 'node_modules', '.bin', 'orderly'), args, {
      env: { PATH: process.env.PATH ?? '', HOME: stack.dataDir, ORDERLY_URL: stack.controlRoom.url, ORDERLY_TOKEN: token },
      cwd: stack.dataDir,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

const packageCount = async () => (await stack.api('GET', '/v1/packages')).body.packages.length as number;
const startRun = async (request: Record<string, unknown>) => stack.api('POST', '/v1/runs', { bot: 'eligibility-check', input: {}, ...request });

beforeAll(async () => {
  stack = await startStack({ segments: 'demo,live', controlRoomEnv: { ORDERLY_PROD_SEGMENTS: 'live' } });
  vault = NodeVault({ endpoint: stack.vault!.address, apiVersion: 'v1', debug: () => undefined });
  vault.token = stack.vault!.rootToken;
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  [alice, mallory, carol, dave] = await Promise.all([
    createUser(stack, 'alice', ['developer']),
    createUser(stack, 'mallory', ['developer']),
    createUser(stack, 'carol', ['approver']),
    createUser(stack, 'dave', ['approver']),
  ]);
  const ci = await stack.api('POST', '/v1/service-accounts', { name: 'ci', roles: ['developer'] });
  // A key is bound to a person, or to a service account a person owns.
  const ownerless = await stack.api('POST', '/v1/keys', { name: 'ci-key', publicKeyPem: keys.ci.publicKeyPem, owner: { kind: 'service', name: 'ci' } });
  expect({ status: ownerless.status, code: ownerless.body.error.code }).toEqual({ status: 400, code: 'ORDERLY_E_BAD_REQUEST' });
  expect((await stack.api('PUT', `/v1/service-accounts/${ci.body.id}/owner`, { user: 'dave' })).status).toBe(200);
  ciToken = (await stack.api('POST', `/v1/service-accounts/${ci.body.id}/tokens`, { name: 'ci', expiresInDays: 1 })).body.token;
  for (const team of ['claims', 'other']) expect((await stack.api('POST', '/v1/teams', { name: team })).status).toBe(201);
  await stack.api('POST', '/v1/teams/claims/members', { kind: 'user', name: 'alice' });
  await stack.api('POST', '/v1/teams/claims/members', { kind: 'service', name: 'ci' });
  await stack.api('POST', '/v1/teams/other/members', { kind: 'user', name: 'mallory' });
  for (const [holder, kind] of [
    ['alice', 'user'],
    ['mallory', 'user'],
    ['ci', 'service'],
  ] as const) {
    const registered = await stack.api('POST', '/v1/keys', { name: `${holder}-key`, publicKeyPem: keys[holder].publicKeyPem, owner: { kind, name: holder } });
    expect(registered.status).toBe(201);
  }
  await setCredential(stack.vault!, 'eligibility-check', 'api_key', API_KEY);
  await setCredential(stack.vault!, 'eligibility-check', 'extra_token', 'fake-extra-token-2222-not-real');
  await stack.startRunner({ segment: 'live', channel: 'prod' });
  await stack.startRunner({ segment: 'demo' });
}, 180_000);

afterAll(async () => {
  await db?.end();
  await stack?.close();
});

test('the first publish claims the name; a developer of another team publishing eligibility-check@9.9.9 is refused, Vault unchanged, and the prod version still runs', async () => {
  const first = await publishAs(alice.token, { version: '1.0.0' }, keys.alice);
  expect(first.status).toBe(201);
  expect((await stack.api('GET', '/v1/bots/owners')).body.owners).toEqual([
    expect.objectContaining({ bot: 'eligibility-check', team: 'claims', claimedBy: 'user:alice' }),
  ]);
  expect((await stack.api('GET', '/v1/packages/eligibility-check/1.0.0')).body.team).toBe('claims');
  const role = await vaultRole('1.0.0');
  expect(role?.policy).toContain('orderly/bots/eligibility-check/api_key');

  // The first prod release: everything it declares is new, so the approver must acknowledge it.
  const unacknowledged = await promoteAs(dave, '1.0.0');
  expect(unacknowledged.status).toBe(409);
  expect(unacknowledged.body.error).toMatchObject({
    code: 'ORDERLY_E_PERMISSIONS_NOT_ACKNOWLEDGED',
    details: { credentials: ['api_key'], segments: ['demo', 'live'], against: null },
  });
  const diff = (await call('GET', '/v1/packages/eligibility-check/1.0.0/permissions', undefined, carol.token)).body;
  expect((await promoteAs(carol, '1.0.0', diff.diffDigest)).status).toBe(201);

  const count = await packageCount();
  const hostile = await publishAs(mallory.token, { version: '9.9.9', credentials: ['api_key', 'db_password'], hosts: ['attacker.example'] }, keys.mallory);
  expect(hostile.status).toBe(403);
  expect(hostile.body.error).toMatchObject({ code: 'ORDERLY_E_BOT_NOT_OWNED', details: { bot: 'eligibility-check', team: 'claims' } });
  expect(await packageCount()).toBe(count);
  expect(await vaultRole('9.9.9')).toBeNull();
  expect(await vaultRole('1.0.0')).toEqual(role);

  // A run without a version in prod takes the released version, which runs with its own lease.
  const created = await startRun({ segment: 'live' });
  expect(created.status).toBe(201);
  const run = await stack.waitForRun(created.body.id);
  expect(run).toMatchObject({ status: 'succeeded', version: '1.0.0', result: { version: '1.0.0', hasKey: true } });
}, 120_000);

test('every publisher key has a holder: registering one without is refused, and a key bound to nobody from before publishes nothing, new name or owned', async () => {
  const stray = generateSigningKeyPair();
  const unowned = await stack.api('POST', '/v1/keys', { name: 'stray-key', publicKeyPem: stray.publicKeyPem });
  expect({ status: unowned.status, code: unowned.body.error.code }).toEqual({ status: 400, code: 'ORDERLY_E_KEY_HOLDER_REQUIRED' });
  expect(JSON.stringify((await stack.api('GET', '/v1/keys')).body)).not.toContain('stray-key');
  // A developer cannot register keys at all, holder or not.
  const byDeveloper = await call(
    'POST',
    '/v1/keys',
    { name: 'stray-key', publicKeyPem: stray.publicKeyPem, owner: { kind: 'user', name: 'alice' } },
    alice.token,
  );
  expect(byDeveloper.status).toBe(403);

  // A row as keys were registered before they had holders (owner NULL), straight in the database.
  const canonical = publicKeyPem(loadPublicKey(stray.publicKeyPem));
  await db.query('INSERT INTO publisher_keys (key_id, name, public_key_pem) VALUES ($1, $2, $3)', [
    keyIdOf(loadPublicKey(canonical)),
    'old-unbound',
    canonical,
  ]);
  const before = await packageCount();
  // Every uploader (a person of the owning team, a service account of it, the admin), a new name
  // and the owned one: refused before anything is claimed or written.
  for (const [who, token, name] of [
    ['alice', alice.token, 'unclaimed-bot'],
    ['ci', ciToken, 'unclaimed-bot'],
    ['alice', alice.token, 'eligibility-check'],
    ['admin', stack.adminToken, 'eligibility-check'],
  ] as const) {
    const refused = await publishAs(token, { name, version: '7.7.7' }, stray);
    expect({ who, name, status: refused.status, code: refused.body.error?.code }).toEqual({ who, name, status: 403, code: 'ORDERLY_E_KEY_UNBOUND' });
  }
  expect(await packageCount()).toBe(before);
  expect((await stack.api('GET', '/v1/bots/owners')).body.owners.map((o: { bot: string }) => o.bot)).not.toContain('unclaimed-bot');
  expect(await vaultRole('7.7.7', 'unclaimed-bot')).toBeNull();
  expect(await vaultRole('7.7.7')).toBeNull();
}, 60_000);

test('a new version adding a credential cannot run in prod before an approver promotes it, and the promote shows the diff', async () => {
  expect((await publishAs(alice.token, { version: '1.1.0', credentials: ['api_key', 'extra_token'] }, keys.alice)).status).toBe(201);
  const refused = await startRun({ segment: 'live', version: '1.1.0' });
  expect({ status: refused.status, code: refused.body.error.code }).toEqual({ status: 409, code: 'ORDERLY_E_RELEASE_MISSING' });
  // Without a version: prod keeps running the released 1.0.0; a development segment, with no dev release, the highest accepted version.
  expect((await startRun({ segment: 'live' })).body.version).toBe('1.0.0');
  expect((await startRun({ segment: 'demo' })).body.version).toBe('1.1.0');

  const diff = await call('GET', '/v1/packages/eligibility-check/1.1.0/permissions', undefined, carol.token);
  expect(diff.body).toMatchObject({ against: { version: '1.0.0' }, added: { credentials: ['extra_token'], hosts: [], phi: [], segments: [] }, widens: true });
  // The CLI prints the diff and, without --yes, promotes nothing.
  const unconfirmed = await cli(['bot', 'promote', 'eligibility-check@1.1.0', '--to', 'prod'], carol.token);
  expect(unconfirmed.code).not.toBe(0);
  expect(unconfirmed.stderr).toContain('eligibility-check@1.1.0 compared with eligibility-check@1.0.0 (in prod):');
  expect(unconfirmed.stderr).toContain('+ credentials: extra_token');
  expect(unconfirmed.stderr).toContain('ORDERLY_E_CONFIRMATION_REQUIRED');
  expect((await startRun({ segment: 'live', version: '1.1.0' })).body.error.code).toBe('ORDERLY_E_RELEASE_MISSING');
  const promoted = await cli(['bot', 'promote', 'eligibility-check@1.1.0', '--to', 'prod', '--yes', '--json'], carol.token, `${await carol.nextCode()}\n`);
  expect(promoted.code).toBe(0);
  expect(JSON.parse(promoted.stdout).permissions).toEqual(diff.body);
  const run = await stack.waitForRun((await startRun({ segment: 'live' })).body.id);
  expect(run).toMatchObject({ status: 'succeeded', version: '1.1.0' });
  // The new version's own role reads the added credential; the old version's does not.
  expect((await vaultRole('1.1.0'))?.policy).toContain('orderly/bots/eligibility-check/extra_token');
  expect((await vaultRole('1.0.0'))?.policy).not.toContain('extra_token');
}, 120_000);

test('an acknowledgement is good for one diff only: a stale or made-up digest is refused', async () => {
  expect((await publishAs(alice.token, { version: '1.1.1', hosts: ['portal.example'] }, keys.alice)).status).toBe(201);
  const made = await promoteAs(dave, '1.1.1', 'a'.repeat(64));
  expect(made.body.error).toMatchObject({ code: 'ORDERLY_E_PERMISSIONS_NOT_ACKNOWLEDGED', details: { hosts: ['portal.example'], against: '1.1.0' } });
}, 120_000);

test('separation of duties by person: an approver who owns the service account that published cannot promote, nor one who holds the signing key', async () => {
  expect((await publishAs(ciToken, { version: '1.2.0' }, keys.ci)).status).toBe(201);
  const owner = await promoteAs(dave, '1.2.0');
  expect(owner.status).toBe(403);
  expect(owner.body.error).toMatchObject({ code: 'ORDERLY_E_SELF_APPROVAL', details: { reason: 'owns_uploading_service_account' } });

  // Uploaded by alice, signed with the key held by dave's service account.
  expect((await publishAs(alice.token, { version: '1.3.0' }, keys.ci)).status).toBe(201);
  const keyOwner = await promoteAs(dave, '1.3.0');
  expect(keyOwner.body.error).toMatchObject({ code: 'ORDERLY_E_SELF_APPROVAL', details: { reason: 'owns_signing_key' } });
  // Another approver, with no part in either, may (1.2.0 adds nothing to 1.1.0 in prod).
  expect((await call('GET', '/v1/packages/eligibility-check/1.2.0/permissions', undefined, carol.token)).body.widens).toBe(false);
  expect((await promoteAs(carol, '1.2.0')).status).toBe(201);
}, 120_000);

test('two teams publishing a new name at once: exactly one claims it, the other is refused', async () => {
  const [a, m] = await Promise.all([
    publishAs(alice.token, { name: 'race-bot', version: '1.0.0' }, keys.alice),
    publishAs(mallory.token, { name: 'race-bot', version: '2.0.0' }, keys.mallory),
  ]);
  expect([a.status, m.status].sort()).toEqual([201, 403]);
  const loser = a.status === 403 ? a : m;
  expect(loser.body.error.code).toBe('ORDERLY_E_BOT_NOT_OWNED');
  const owners = (await stack.api('GET', '/v1/bots/owners')).body.owners as { bot: string; team: string }[];
  expect(owners.filter((o) => o.bot === 'race-bot')).toEqual([expect.objectContaining({ team: a.status === 201 ? 'claims' : 'other' })]);
  expect((await stack.api('GET', '/v1/packages')).body.packages.filter((p: { name: string }) => p.name === 'race-bot')).toHaveLength(1);
});

test('a version whose Vault role cannot be written is not stored and claims nothing', async () => {
  const before = await packageCount();
  stack.vault!.devVault.seal();
  let refused;
  try {
    refused = await publishAs(alice.token, { name: 'sealed-bot', version: '1.0.0' }, keys.alice);
  } finally {
    stack.vault!.devVault.unseal();
  }
  expect(refused.status).toBeGreaterThanOrEqual(500);
  expect(refused.body.error.code).toMatch(/^ORDERLY_E_VAULT_/);
  expect(await packageCount()).toBe(before);
  expect((await stack.api('GET', '/v1/bots/owners')).body.owners.map((o: { bot: string }) => o.bot)).not.toContain('sealed-bot');
  expect(await vaultRole('1.0.0', 'sealed-bot')).toBeNull();
  // Once Vault is back, the same upload goes through.
  expect((await publishAs(alice.token, { name: 'sealed-bot', version: '1.0.0' }, keys.alice)).status).toBe(201);
}, 60_000);

test('a publish whose commit fails after its Vault role was written leaves no role, no version and no claim behind', async () => {
  // A real commit failure: a deferred constraint trigger refuses this one bot at COMMIT, after the
  // transaction wrote the version's role to Vault (the step before the claim's audit and commit).
  await db.query(`CREATE FUNCTION test_fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.name = 'commit-fails-bot' THEN RAISE EXCEPTION 'injected commit failure'; END IF; RETURN NULL; END $$`);
  await db.query(`CREATE CONSTRAINT TRIGGER test_fail_at_commit AFTER INSERT ON packages DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION test_fail_at_commit()`);
  const before = await packageCount();
  let refused;
  try {
    refused = await publishAs(alice.token, { name: 'commit-fails-bot', version: '1.0.0' }, keys.alice);
  } finally {
    await db.query('DROP TRIGGER test_fail_at_commit ON packages');
    await db.query('DROP FUNCTION test_fail_at_commit()');
  }
  expect(refused.status).toBeGreaterThanOrEqual(500);
  expect(await packageCount()).toBe(before);
  expect((await stack.api('GET', '/v1/bots/owners')).body.owners.map((o: { bot: string }) => o.bot)).not.toContain('commit-fails-bot');
  expect(await vaultRole('1.0.0', 'commit-fails-bot')).toBeNull();
  // The same upload once the database commits again: stored, with its role.
  expect((await publishAs(alice.token, { name: 'commit-fails-bot', version: '1.0.0' }, keys.alice)).status).toBe(201);
  expect((await vaultRole('1.0.0', 'commit-fails-bot'))?.policy).toContain('orderly/bots/commit-fails-bot/api_key');
}, 60_000);

test('a transfer is an audited security action: afterwards the other team publishes and the first team no longer can', async () => {
  const transferred = await stack.api('POST', '/v1/bots/eligibility-check/transfer', { team: 'other' });
  expect(transferred.body).toMatchObject({ bot: 'eligibility-check', team: 'other', transferredBy: 'admin' });
  const events = (await db.query("SELECT actor, details FROM audit_events WHERE action = 'bot.transfer'")).rows;
  expect(events).toEqual([{ actor: 'admin', details: { from: 'claims', to: 'other' } }]);
  // A developer cannot transfer (keys.manage), and a person needs a fresh second factor.
  expect((await call('POST', '/v1/bots/eligibility-check/transfer', { team: 'claims' }, alice.token)).status).toBe(403);
  expect((await publishAs(mallory.token, { version: '9.9.9' }, keys.mallory)).status).toBe(201);
  expect((await publishAs(alice.token, { version: '9.9.10' }, keys.alice)).body.error.code).toBe('ORDERLY_E_BOT_NOT_OWNED');
}, 120_000);

test('a leased secret returned by a bot is masked in its result, encoded variants too, and the run is flagged', async () => {
  await setCredential(stack.vault!, 'leaky-bot', 'api_key', LEAK_KEY);
  const leaky = await publishAs(
    alice.token,
    {
      name: 'leaky-bot',
      version: '1.0.0',
      body: "return { plain: secrets.api_key, b64: Buffer.from(secrets.api_key).toString('base64'), fine: 'coverage active' };",
    },
    keys.alice,
  );
  expect(leaky.status).toBe(201);
  const created = await stack.api('POST', '/v1/runs', { bot: 'leaky-bot', segment: 'demo', input: {} });
  const run: RunView = await stack.waitForRun(created.body.id);
  expect(run.status).toBe('succeeded');
  expect(run.flags).toEqual(['secret_in_result']);
  expect((run.result as { fine: string }).fine).toBe('coverage active');
  const text = JSON.stringify(run.result);
  expect(text).not.toContain(LEAK_KEY);
  expect(text).not.toContain(Buffer.from(LEAK_KEY).toString('base64'));
  // A bot that returns no secret is not flagged.
  expect((await stack.waitForRun((await startRun({ segment: 'demo', version: '1.0.0' })).body.id)).flags).toBeUndefined();
}, 120_000);

test('a version stored before roles were per version gets its own role, from its stored manifest, at its next run', async () => {
  await db.query("UPDATE packages SET vault_role = NULL WHERE name = 'eligibility-check' AND version = '1.0.0'");
  const run = await stack.waitForRun((await startRun({ segment: 'demo', version: '1.0.0' })).body.id);
  expect(run).toMatchObject({ status: 'succeeded', result: { hasKey: true } });
  const stored = await db.query("SELECT vault_role FROM packages WHERE name = 'eligibility-check' AND version = '1.0.0'");
  expect(stored.rows).toEqual([{ vault_role: versionRoleName('eligibility-check', '1.0.0') }]);
  expect((await vaultRole('1.0.0'))?.policy).not.toContain('extra_token');
}, 60_000);

test('a new version run in dev leases what it declares, never the credentials of the version released to the prod segment', async () => {
  // By now eligibility-check belongs to team other (the transfer above) and prod runs a released
  // version that leases api_key. The new version declares extra_token only, and asks for both.
  const version = '5.0.0';
  const published = await publishAs(
    mallory.token,
    { version, credentials: ['extra_token'], body: 'return { leased: Object.keys(secrets).sort() };' },
    keys.mallory,
  );
  expect(published.status).toBe(201);
  expect((await vaultRole(version))?.policy).not.toContain('orderly/bots/eligibility-check/api_key');

  const inDev = await stack.waitForRun((await startRun({ segment: 'demo', version })).body.id);
  expect(inDev).toMatchObject({ status: 'succeeded', version, result: { leased: ['extra_token'] } });
  // Not released: the prod segment refuses it, and keeps running the released version with its own lease.
  expect((await startRun({ segment: 'live', version })).body.error.code).toBe('ORDERLY_E_RELEASE_MISSING');
  const inProd = await stack.waitForRun((await startRun({ segment: 'live' })).body.id);
  expect(inProd.version).not.toBe(version);
  expect(inProd).toMatchObject({ status: 'succeeded', result: { hasKey: true } });
}, 120_000);

test('a run without a version in a development segment takes the newest version released to dev, never merely the newest upload', async () => {
  const versionOf = async (segment: string) => {
    const created = await startRun({ segment });
    expect(created.status).toBe(201);
    return created.body.version as string;
  };
  const highest = await versionOf('demo');
  // Uploaded last, numbered lower (a backport): not the dev default for being newest.
  expect((await publishAs(mallory.token, { version: '4.0.0' }, keys.mallory)).status).toBe(201);
  expect(await versionOf('demo')).toBe(highest);
  expect(highest).not.toBe('4.0.0');
  // Released to dev by an approver with no part in it: now the dev default, and prod is unchanged.
  const prodBefore = await versionOf('live');
  const released = await call('POST', '/v1/packages/eligibility-check/4.0.0/promote', { channel: 'dev' }, carol.token, await carol.nextCode());
  expect(released.status).toBe(201);
  expect(await versionOf('demo')).toBe('4.0.0');
  expect(await versionOf('live')).toBe(prodBefore);
}, 120_000);
