import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import NodeVault from 'node-vault';
import { Client } from 'pg';
import { createArchive, credentialPath, IN_TOTO_PAYLOAD_TYPE, loadPrivateKey, packageStatement, signEnvelope } from '@orderly/shared';
import { createTestDatabase } from '@orderly/shared/testing';
import { createVaultClientFactory } from '@orderly/shared/vault';
import { REPO, Stack, startStack } from '../../../test/harness';
import { AuditLog, AuditRecord, verifyAuditChain } from '../audit/audit';
import { postgresDb } from '../db/db';
import { migrate } from '../db/migrations';
import { Credentials } from './credentials';

/**
 * Credential set/rotate/status against real PostgreSQL, Redis and the dev Vault over HTTP. Vault
 * is read back with node-vault and the root token, independently of the control room's client.
 */
let stack: Stack;
let vault: NodeVault.client;
/** Every value written in this file: none may appear in a response, an audit row or a log line. */
const values: string[] = [];
const responses: unknown[] = [];

const BOT = 'cred-bot';
const fresh = (label: string): string => {
  const value = `${label}-${randomBytes(12).toString('base64url')}`;
  values.push(value);
  return value;
};

async function api(method: string, path: string, body?: unknown) {
  const res = await stack.api(method, path, body);
  responses.push(res.body);
  return res;
}

/** Publishes a minimal bot declaring `credentials` (no bundling needed: ingest only reads the manifest). */
async function publishBot(name: string, credentials: string[]): Promise<void> {
  const manifest = { name, version: '1.0.0', entry: 'bot.js', segments: ['demo'], input: { type: 'object', properties: {} }, credentials };
  const archive = createArchive([
    { path: 'bot.json', data: Buffer.from(JSON.stringify(manifest)) },
    { path: 'bot.js', data: Buffer.from('module.exports = {}') },
  ]);
  const statement = packageStatement(name as never, '1.0.0' as never, createHash('sha256').update(archive).digest('hex'));
  const envelope = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), loadPrivateKey(stack.publisher.privateKeyPem));
  const res = await stack.api('POST', '/v1/packages', { archive: archive.toString('base64'), envelope });
  if (res.status >= 300) throw new Error(`publish failed: ${JSON.stringify(res.body)}`);
}

async function readVault(name: string, bot = BOT): Promise<{ value: string; version: number; currentVersion: number }> {
  const secret = await vault.read(`secret/data/${credentialPath(bot, name)}`);
  const meta = await vault.read(`secret/metadata/${credentialPath(bot, name)}`);
  return { value: secret.data.data.value, version: secret.data.metadata.version, currentVersion: meta.data.current_version };
}

async function auditRows(): Promise<AuditRecord[]> {
  const pg = new Client({ connectionString: stack.databaseUrl });
  await pg.connect();
  try {
    const rows = (await pg.query('SELECT * FROM audit_events ORDER BY seq')).rows;
    return rows.map((r) => ({
      seq: Number(r.seq),
      at: (r.at as Date).toISOString(),
      actor: r.actor,
      action: r.action,
      target: r.target,
      outcome: r.outcome,
      sourceIp: r.source_ip,
      requestId: r.request_id,
      details: r.details,
      prevHash: r.prev_hash,
      hash: r.hash,
    }));
  } finally {
    await pg.end();
  }
}

beforeAll(async () => {
  stack = await startStack();
  vault = NodeVault({ endpoint: stack.vault!.address, apiVersion: 'v1', debug: () => undefined });
  vault.token = stack.vault!.rootToken;
  await stack.registerKey('test-publisher', stack.publisher.publicKeyPem);
  await publishBot(BOT, ['api_key', 'db_password', 'cli_token', 'race_key']);
}, 60_000);
afterAll(() => stack?.close());

test('set writes the value to Vault with check-and-set; setting again overwrites it as a new version', async () => {
  const first = fresh('first');
  const res = await api('PUT', `/v1/credentials/${BOT}/api_key`, { value: first, maxAgeDays: 30 });
  expect(res.status).toBe(200);
  expect(res.body).toEqual({ bot: BOT, name: 'api_key', version: 1, createdAt: expect.any(String) });
  expect(await readVault('api_key')).toEqual({ value: first, version: 1, currentVersion: 1 });

  const second = fresh('second');
  expect((await api('PUT', `/v1/credentials/${BOT}/api_key`, { value: second })).body.version).toBe(2);
  expect(await readVault('api_key')).toEqual({ value: second, version: 2, currentVersion: 2 });
});

test('rotate writes the next version; a stale expectedVersion is a CAS conflict and writes nothing', async () => {
  const next = fresh('rotated');
  const res = await api('POST', `/v1/credentials/${BOT}/api_key/rotate`, { value: next });
  expect(res.status).toBe(200);
  expect(res.body.version).toBe(3);
  expect(await readVault('api_key')).toEqual({ value: next, version: 3, currentVersion: 3 });

  const stale = await api('POST', `/v1/credentials/${BOT}/api_key/rotate`, { value: fresh('stale'), expectedVersion: 2 });
  expect(stale.status).toBe(409);
  expect(stale.body.error.code).toBe('ORDERLY_E_CREDENTIAL_CAS_CONFLICT');
  expect(await readVault('api_key')).toEqual({ value: next, version: 3, currentVersion: 3 });
});

test('of two concurrent rotations expecting the same version exactly one wins; Vault has exactly one new version', async () => {
  const initial = await api('PUT', `/v1/credentials/${BOT}/race_key`, { value: fresh('race-initial') });
  const expectedVersion = initial.body.version as number;
  const [a, b] = [fresh('race-a'), fresh('race-b')];
  const results = await Promise.all([a, b].map((value) => api('POST', `/v1/credentials/${BOT}/race_key/rotate`, { value, expectedVersion })));
  expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
  const winner = results.findIndex((r) => r.status === 200);
  expect(results[1 - winner]!.body.error.code).toBe('ORDERLY_E_CREDENTIAL_CAS_CONFLICT');
  expect(results[winner]!.body.version).toBe(expectedVersion + 1);
  expect(await readVault('race_key')).toEqual({ value: [a, b][winner], version: expectedVersion + 1, currentVersion: expectedVersion + 1 });
});

test('status lists every declared credential: version, who rotated it, age, max age and overdue', async () => {
  // Written outside Orderly: the version is reported, but nobody is named as having rotated it.
  await publishBot('other-bot', ['token_a']);
  await createVaultClientFactory({ address: stack.vault!.address })
    .withToken(stack.vault!.rootToken)
    .kvWrite(credentialPath('other-bot', 'token_a'), { value: fresh('outside') }, { mount: 'secret' });
  expect((await api('GET', '/v1/credentials?bot=other-bot')).body.credentials).toEqual([
    expect.objectContaining({ bot: 'other-bot', name: 'token_a', exists: true, version: 1, rotatedBy: null, rotatedAt: null, maxAgeDays: 90, overdue: false }),
  ]);
  await api('PUT', `/v1/credentials/other-bot/token_a`, { value: fresh('zero-age'), maxAgeDays: 0 });

  const all = await api('GET', '/v1/credentials');
  expect(all.status).toBe(200);
  const byKey = new Map((all.body.credentials as { bot: string; name: string }[]).map((c) => [`${c.bot}/${c.name}`, c]));
  expect([...byKey.keys()].sort()).toEqual(['cred-bot/api_key', 'cred-bot/cli_token', 'cred-bot/db_password', 'cred-bot/race_key', 'other-bot/token_a']);
  expect(byKey.get('cred-bot/api_key')).toEqual({
    bot: BOT,
    name: 'api_key',
    exists: true,
    version: 3,
    createdAt: expect.any(String),
    updatedAt: expect.any(String),
    ageDays: 0,
    rotatedBy: 'admin',
    rotatedAt: expect.any(String),
    maxAgeDays: 30,
    overdue: false,
  });
  expect(byKey.get('cred-bot/db_password')).toMatchObject({ exists: false, version: null, ageDays: null, rotatedBy: null, maxAgeDays: 90, overdue: false });
  expect(byKey.get('other-bot/token_a')).toMatchObject({ exists: true, version: 2, rotatedBy: 'admin', maxAgeDays: 0, overdue: true });

  expect((await api('GET', '/v1/credentials?bot=no-such-bot')).body.error.code).toBe('ORDERLY_E_BOT_UNKNOWN');
});

test('status with an injected clock: a credential past the default max age is overdue', async () => {
  const db = postgresDb(stack.databaseUrl!);
  try {
    const client = createVaultClientFactory({ address: stack.vault!.address }).withToken(stack.vault!.rootToken);
    const later = (days: number) =>
      new Credentials({ db, audit: new AuditLog(db), vault: client, defaultMaxAgeDays: 90, now: () => new Date(Date.now() + days * 86_400_000) });
    const race = async (days: number) => (await later(days).status('cred-bot' as never)).find((c) => c.name === 'race_key')!;
    expect(await race(89)).toMatchObject({ ageDays: 89, maxAgeDays: 90, overdue: false });
    expect(await race(91)).toMatchObject({ ageDays: 91, maxAgeDays: 90, overdue: true });
  } finally {
    await db.close();
  }
});

test.each([
  ['a credential the bot does not declare', `/v1/credentials/${BOT}/undeclared`, 400, 'ORDERLY_E_BAD_REQUEST'],
  ['an unknown bot', '/v1/credentials/no-such-bot/api_key', 404, 'ORDERLY_E_BOT_UNKNOWN'],
  ['an invalid bot name', '/v1/credentials/Bad_Bot/api_key', 400, 'ORDERLY_E_BAD_REQUEST'],
  ['an invalid credential name', `/v1/credentials/${BOT}/API-KEY`, 400, 'ORDERLY_E_BAD_REQUEST'],
])('set and rotate refuse %s', async (_what, path, status, code) => {
  const value = fresh('refused');
  for (const [method, url] of [
    ['PUT', path],
    ['POST', `${path}/rotate`],
  ] as const) {
    const res = await api(method, url, { value });
    expect({ method, status: res.status, code: res.body.error.code }).toEqual({ method, status, code });
  }
});

test('values shorter than 8 or longer than 8192 characters are refused', async () => {
  const short = await api('PUT', `/v1/credentials/${BOT}/db_password`, { value: 'Sh0rt!x' });
  values.push('Sh0rt!x');
  expect(short.status).toBe(400);
  expect(short.body.error.code).toBe('ORDERLY_E_REDACTION_VALUE_TOO_SHORT');
  const tooLong = `${fresh('long')}${'L'.repeat(8192)}`;
  const long = await api('POST', `/v1/credentials/${BOT}/db_password/rotate`, { value: tooLong });
  values.push(tooLong);
  expect(long.body.error.code).toBe('ORDERLY_E_BAD_REQUEST');
  expect((await api('PUT', `/v1/credentials/${BOT}/db_password`, { value: fresh('x'), extra: 1 })).status).toBe(400);
  expect(
    await vault.read(`secret/data/${credentialPath(BOT, 'db_password')}`).catch((err: { response?: { statusCode?: number } }) => err.response?.statusCode),
  ).toBe(404);
});

test('without Vault the routes answer ORDERLY_E_VAULT_NOT_CONFIGURED, and the attempt is audited', async () => {
  const database = await createTestDatabase();
  const db = postgresDb(database.url);
  try {
    await migrate(db);
    const audit = new AuditLog(db);
    const credentials = new Credentials({ db, audit, vault: undefined, defaultMaxAgeDays: 90 });
    await expect(credentials.set({ actor: 'admin' }, { bot: BOT as never, name: 'api_key' }, { value: fresh('novault') })).rejects.toMatchObject({
      code: 'ORDERLY_E_VAULT_NOT_CONFIGURED',
    });
    await expect(credentials.status()).rejects.toMatchObject({ code: 'ORDERLY_E_VAULT_NOT_CONFIGURED' });
    expect(await audit.list()).toMatchObject([
      { action: 'credential.set', target: `${BOT}/api_key`, outcome: 'failure', details: { code: 'ORDERLY_E_VAULT_NOT_CONFIGURED' } },
    ]);
  } finally {
    await db.close();
    await database.drop();
  }
});

describe('the orderly binary (make build first)', () => {
  const BIN = join(REPO, 'node_modules', '.bin', 'orderly');
  function cli(args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(BIN, args, {
        env: { PATH: process.env.PATH ?? '', HOME: stack.dataDir, ORDERLY_URL: stack.controlRoom.url, ORDERLY_TOKEN: stack.adminToken },
        cwd: stack.dataDir,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(stdin ?? '');
    });
  }

  test('creds set reads the value from stdin; rotate --generate makes one; status --json reports both; no value is printed', async () => {
    const value = fresh('cli');
    const set = await cli(['creds', 'set', BOT, 'cli_token', '--max-age-days', '7'], `${value}\n`);
    expect(set).toMatchObject({ code: 0, stderr: '' });
    expect(set.stdout.trim()).toBe(`set ${BOT}/cli_token: version 1`);
    expect(await readVault('cli_token')).toEqual({ value, version: 1, currentVersion: 1 });

    const rotated = await cli(['creds', 'rotate', BOT, 'cli_token', '--generate', '--expected-version', '1', '--json']);
    expect(rotated.code).toBe(0);
    expect(JSON.parse(rotated.stdout)).toMatchObject({ bot: BOT, name: 'cli_token', version: 2 });
    const generated = await readVault('cli_token');
    expect(generated.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    values.push(generated.value);
    expect(`${rotated.stdout}${rotated.stderr}`).not.toContain(generated.value);

    const conflict = await cli(['creds', 'rotate', BOT, 'cli_token', '--generate', '--expected-version', '1']);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(/^orderly: ORDERLY_E_CREDENTIAL_CAS_CONFLICT: [^\n]+\n$/);

    const status = await cli(['creds', 'status', BOT, '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toContainEqual(
      expect.objectContaining({ bot: BOT, name: 'cli_token', version: 2, rotatedBy: 'admin', maxAgeDays: 7, overdue: false }),
    );
    const table = await cli(['creds', 'status']);
    expect(table.stdout.split('\n')[0]).toMatch(/^BOT\s+NAME\s+VERSION\s+AGE\/MAX\s+ROTATED BY\s+OVERDUE$/);
    expect(table.stdout).toMatch(/cred-bot\s+cli_token\s+2\s+0d\/7d\s+admin\s+no/);
  });

  test('a value is never taken from an argument, and an empty stdin is refused', async () => {
    const value = fresh('argv');
    const res = await cli(['creds', 'set', BOT, 'db_password', value], '');
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('too many arguments');
    const empty = await cli(['creds', 'set', BOT, 'db_password'], '');
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/^orderly: ORDERLY_E_BAD_REQUEST: no value given/);
    expect(await vault.read(`secret/data/${credentialPath(BOT, 'db_password')}`).catch(() => 'absent')).toBe('absent');
  });

  test('every creds command has --help', async () => {
    for (const args of [['creds'], ['creds', 'set'], ['creds', 'rotate'], ['creds', 'status']]) {
      const res = await cli([...args, '--help']);
      expect({ args, code: res.code, usage: res.stdout.includes('Usage:') }).toEqual({ args, code: 0, usage: true });
    }
  });
});

test('every attempt is audited on a valid chain, and no value appears in a response, an audit row or a log line', async () => {
  const rows = await auditRows();
  expect(verifyAuditChain(rows)).toEqual({ ok: true });
  const credentialEvents = rows.filter((r) => r.action.startsWith('credential.'));
  expect(credentialEvents.length).toBeGreaterThanOrEqual(18);
  expect(credentialEvents.every((r) => r.actor === 'admin' && r.requestId && r.sourceIp)).toBe(true);
  expect(credentialEvents).toContainEqual(
    expect.objectContaining({
      action: 'credential.rotate',
      target: `${BOT}/race_key`,
      outcome: 'failure',
      details: expect.objectContaining({ code: 'ORDERLY_E_CREDENTIAL_CAS_CONFLICT' }),
    }),
  );
  expect(credentialEvents).toContainEqual(
    expect.objectContaining({
      action: 'credential.set',
      target: `${BOT}/api_key`,
      outcome: 'success',
      details: { expectedVersion: 0, version: 1, maxAgeDays: 30 },
    }),
  );
  expect(credentialEvents).toContainEqual(
    expect.objectContaining({
      action: 'credential.set',
      target: `${BOT}/db_password`,
      outcome: 'failure',
      details: { code: 'ORDERLY_E_REDACTION_VALUE_TOO_SHORT' },
    }),
  );
  expect(credentialEvents).toContainEqual(
    expect.objectContaining({ action: 'credential.rotate', target: `${BOT}/db_password`, outcome: 'failure', details: { code: 'ORDERLY_E_BAD_REQUEST' } }),
  );

  const haystacks = { responses: JSON.stringify(responses), audit: JSON.stringify(rows), log: stack.log.text() };
  expect(stack.log.lines.length).toBeGreaterThan(10);
  expect(values.length).toBeGreaterThan(15);
  for (const value of values) {
    for (const [where, text] of Object.entries(haystacks)) expect({ where, leaked: text.includes(value) }).toEqual({ where, leaked: false });
  }
});
