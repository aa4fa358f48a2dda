import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { inspect } from 'node:util';
import { z } from 'zod';
import { open, seal } from '../crypto/aead';
import { createVaultClientFactory, type VaultClientConfig, type VaultClientFactory } from './client';
import { startDevVault, type DevVault } from '@orderly/dev-vault';
import { secretIdCreationPath } from './policy';
import type { VaultRetryEvent } from './retry';

/*
 * The wrapper end to end against the dev Vault over HTTP (node-vault underneath): the control
 * room provisions a bot, a run unwraps, logs in, reads only its secrets and revokes; failures map
 * to our codes. All data is generated and fake; no token is ever printed.
 */

let now = Date.now();
let dv: DevVault;
let factory: VaultClientFactory;
const retries: VaultRetryEvent[] = [];

const fake = (label: string): string => `fake-${label}-${randomBytes(4).toString('hex')}`;
const fast: Partial<VaultClientConfig> = { baseDelayMs: 10, maxDelayMs: 40, requestTimeoutMs: 2_000, defaultBudgetMs: 3_000 };

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string; details: Record<string, unknown> }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeDefined();
  return error as { code: string; message: string; details: Record<string, unknown> };
}

beforeAll(async () => {
  dv = await startDevVault({ port: 0, now: () => now });
  factory = createVaultClientFactory({ address: dv.address, ...fast, onRetry: (e) => retries.push(e) });
});
afterAll(() => dv.close());
beforeEach(() => {
  retries.length = 0;
});

async function provisionBot(): Promise<{ roleName: string; roleId: string; secretPath: string; password: string }> {
  const admin = factory.withToken(dv.rootToken);
  const roleName = fake('bot');
  const secretPath = `bots/${roleName}/payer-portal`;
  const password = fake('portal-password');
  expect(await admin.kvWrite(secretPath, { username: 'fake-user', password }, { cas: 0 })).toMatchObject({ version: 1 });
  const role = await admin.upsertBotRole({ roleName, kvPaths: [secretPath], tokenTtlSeconds: 300, secretIdTtlSeconds: 120 });
  expect(role.policyName).toBe(roleName.toLowerCase());
  return { roleName, roleId: await admin.readRoleId(roleName), secretPath, password };
}

describe('the credential path of one run', () => {
  it('wraps a single-use SecretID, unwraps it once, logs in, reads only its own secret, revokes', async () => {
    const admin = factory.withToken(dv.rootToken);
    const bot = await provisionBot();
    const otherPath = `bots/${fake('other')}/secret`;
    const otherValue = fake('other-password');
    await admin.kvWrite(otherPath, { password: otherValue });

    const expectedPath = secretIdCreationPath(bot.roleName);
    const wrapped = await admin.createWrappedSecretId(bot.roleName, { wrapTtlSeconds: 60, metadata: { run_id: fake('run') } });
    expect(wrapped).toMatchObject({ creationPath: expectedPath, ttlSeconds: 60, wrappingToken: expect.any(String), wrappingAccessor: expect.any(String) });

    const runner = factory.anonymous();
    expect(await runner.lookupWrapping(wrapped.wrappingToken, expectedPath)).toMatchObject({ creationPath: expectedPath, creationTtlSeconds: 60 });
    const secret = await runner.unwrapSecretId(wrapped.wrappingToken, expectedPath);
    expect(secret).toMatchObject({ secretIdNumUses: 1, secretIdTtlSeconds: 120 });
    expect((await failure(runner.unwrapSecretId(wrapped.wrappingToken, expectedPath))).code).toBe('ORDERLY_E_VAULT_WRAP_INVALID');

    const login = await runner.approleLogin({ roleId: bot.roleId, secretId: secret.secretId });
    expect(login).toMatchObject({ policies: ['default', bot.roleName.toLowerCase()], leaseDurationSeconds: 300, renewable: true, tokenType: 'service' });
    const replay = await failure(runner.approleLogin({ roleId: bot.roleId, secretId: secret.secretId }));
    expect(replay).toMatchObject({ code: 'ORDERLY_E_VAULT_PERMISSION_DENIED', details: { path: 'auth/approle/login', vaultStatus: 400 } });

    const run = login.client;
    expect((await run.kvRead(bot.secretPath))?.data).toEqual({ username: 'fake-user', password: bot.password });
    const denied = await failure(run.kvRead(otherPath));
    expect(denied).toMatchObject({ code: 'ORDERLY_E_VAULT_PERMISSION_DENIED', details: { path: `secret/data/${otherPath}`, vaultStatus: 403 } });
    expect(denied.message).toContain(`secret/data/${otherPath}`);
    expect(JSON.stringify(denied) + denied.message).not.toContain(otherValue);
    expect((await failure(run.kvWrite(bot.secretPath, { password: 'fake-overwrite' }))).code).toBe('ORDERLY_E_VAULT_PERMISSION_DENIED');

    const self = await run.lookupSelf();
    expect(self).toMatchObject({ policies: ['default', bot.roleName.toLowerCase()], renewable: true, orphan: true, path: 'auth/approle/login' });
    expect(self.ttlSeconds).toBeLessThanOrEqual(300);
    expect(await run.renewSelf(60)).toMatchObject({ leaseDurationSeconds: 60, renewable: true });
    await run.revokeSelf();
    expect((await failure(run.lookupSelf())).code).toBe('ORDERLY_E_VAULT_PERMISSION_DENIED');
    expect(retries).toEqual([]);

    // The token never shows when a client is printed or serialised.
    expect(inspect(run)).toBe(`VaultClient { address: ${JSON.stringify(dv.address)} }`);
    expect(JSON.stringify({ run })).toBe(JSON.stringify({ run: { address: dv.address } }));
  });

  it('gives each login its own client: the anonymous client that logged in stays anonymous', async () => {
    const bot = await provisionBot();
    const admin = factory.withToken(dv.rootToken);
    const runner = factory.anonymous();
    const w = await admin.createWrappedSecretId(bot.roleName, { wrapTtlSeconds: 60 });
    const s = await runner.unwrapSecretId(w.wrappingToken, secretIdCreationPath(bot.roleName));
    const login = await runner.approleLogin({ roleId: bot.roleId, secretId: s.secretId });
    expect(await login.client.lookupSelf()).toMatchObject({ path: 'auth/approle/login' });
    expect(await failure(runner.lookupSelf())).toMatchObject({
      code: 'ORDERLY_E_VAULT_ERROR',
      details: { vaultStatus: 400, vaultErrors: ['missing client token'] },
    });
    expect(await admin.lookupSelf()).toMatchObject({ policies: ['root'] });
  });

  it('ignores VAULT_TOKEN and friends in the environment', async () => {
    const saved = { token: process.env.VAULT_TOKEN, prefix: process.env.VAULT_PREFIX };
    process.env.VAULT_TOKEN = dv.rootToken;
    process.env.VAULT_PREFIX = '/nowhere';
    try {
      const anonymous = createVaultClientFactory({ address: dv.address, ...fast }).anonymous();
      expect((await failure(anonymous.lookupSelf())).details).toMatchObject({ vaultStatus: 400 });
      expect(await anonymous.health()).toMatchObject({ sealed: false, initialized: true });
    } finally {
      if (saved.token === undefined) delete process.env.VAULT_TOKEN;
      else process.env.VAULT_TOKEN = saved.token;
      if (saved.prefix === undefined) delete process.env.VAULT_PREFIX;
      else process.env.VAULT_PREFIX = saved.prefix;
    }
  });

  it('refuses a wrapping token minted for another path without consuming it', async () => {
    const a = await provisionBot();
    const b = await provisionBot();
    const admin = factory.withToken(dv.rootToken);
    const w = await admin.createWrappedSecretId(a.roleName, { wrapTtlSeconds: 60 });
    const wrongPath = await failure(factory.anonymous().unwrapSecretId(w.wrappingToken, secretIdCreationPath(b.roleName)));
    expect(wrongPath).toMatchObject({
      code: 'ORDERLY_E_VAULT_WRAP_INVALID',
      details: { creationPath: secretIdCreationPath(a.roleName), expectedCreationPath: secretIdCreationPath(b.roleName) },
    });
    expect(await factory.anonymous().unwrapSecretId(w.wrappingToken, secretIdCreationPath(a.roleName))).toMatchObject({ secretIdNumUses: 1 });
  });

  it('treats an expired wrapping token as invalid, and an expired run token as denied', async () => {
    const bot = await provisionBot();
    const admin = factory.withToken(dv.rootToken);
    const w1 = await admin.createWrappedSecretId(bot.roleName, { wrapTtlSeconds: 30 });
    now += 31_000;
    expect((await failure(factory.anonymous().unwrapSecretId(w1.wrappingToken, secretIdCreationPath(bot.roleName)))).code).toBe('ORDERLY_E_VAULT_WRAP_INVALID');

    const w2 = await admin.createWrappedSecretId(bot.roleName, { wrapTtlSeconds: 30 });
    const s = await factory.anonymous().unwrapSecretId(w2.wrappingToken, secretIdCreationPath(bot.roleName));
    const { client } = await factory.anonymous().approleLogin({ roleId: bot.roleId, secretId: s.secretId });
    now += 301_000;
    expect((await failure(client.kvRead(bot.secretPath))).code).toBe('ORDERLY_E_VAULT_PERMISSION_DENIED');
  });
});

describe('KV v2', () => {
  it('reads versions, reports absence as null, maps a CAS conflict, validates the secret shape', async () => {
    const admin = factory.withToken(dv.rootToken);
    const path = `creds/${fake('cred')}`;
    expect(await admin.kvRead(path)).toBeNull();
    expect(await admin.kvReadMetadata(path)).toBeNull();
    await admin.kvWrite(path, { password: 'fake-pw-1' }, { cas: 0 });
    const conflict = await failure(admin.kvWrite(path, { password: 'fake-pw-race' }, { cas: 0 }));
    expect(conflict).toMatchObject({ code: 'ORDERLY_E_CREDENTIAL_CAS_CONFLICT', details: { path: `secret/data/${path}`, attempts: 1 } });
    expect(conflict.message).not.toContain('fake-pw-race');
    expect(await admin.kvWrite(path, { password: 'fake-pw-2' }, { cas: 1 })).toMatchObject({ version: 2 });
    expect(await admin.kvRead(path, { version: 1 })).toMatchObject({ data: { password: 'fake-pw-1' }, version: 1 });
    const Cred = z.object({ password: z.string() });
    const typed = await admin.kvRead(path, { schema: Cred });
    expect(typed?.data.password).toBe('fake-pw-2');
    const wrongShape = await failure(admin.kvRead(path, { schema: z.object({ password: z.number() }) }));
    expect(wrongShape).toMatchObject({ code: 'ORDERLY_E_VAULT_ERROR', details: { problems: ['password: invalid_type'] } });
    expect(JSON.stringify(wrongShape) + wrongShape.message).not.toContain('fake-pw-2');
    expect(await admin.kvReadMetadata(path)).toMatchObject({ currentVersion: 2, versions: { 1: { destroyed: false }, 2: { destroyed: false } } });
  });
});

describe('transit', () => {
  it('envelope-encrypts with a data key, decrypting the key through Vault later', async () => {
    const admin = factory.withToken(dv.rootToken);
    const key = fake('runs');
    await admin.transitCreateKey(key);
    const dataKey = await admin.transitDataKey(key);
    expect(dataKey.plaintext).toHaveLength(32);
    const box = seal(dataKey.plaintext ?? Buffer.alloc(0), dataKey.ciphertext, Buffer.from('{"member":"FAKE-0001"}'), 'run-fake-1');
    const keyAgain = await admin.transitDecrypt(key, box.kid);
    expect(open(keyAgain, box, 'run-fake-1').toString()).toBe('{"member":"FAKE-0001"}');
    const wrappedOnly = await admin.transitDataKey(key, { wrappedOnly: true });
    expect(wrappedOnly.plaintext).toBeUndefined();
    expect(await admin.transitDecrypt(key, wrappedOnly.ciphertext)).toHaveLength(32);
  });

  it('rotates, rewraps and enforces min_decryption_version', async () => {
    const admin = factory.withToken(dv.rootToken);
    const key = fake('key');
    await admin.transitCreateKey(key);
    const created = (await admin.transitReadKey(key)).latestVersionCreatedAt;
    const aad = Buffer.from('run-fake-2');
    const v1 = await admin.transitEncrypt(key, Buffer.from('fake-phi-v1'), { associatedData: aad });
    expect(v1.keyVersion).toBe(1);
    expect(await admin.transitRotate(key)).toBe(2);
    expect((await admin.transitDecrypt(key, v1.ciphertext, { associatedData: aad })).toString()).toBe('fake-phi-v1');
    const plain = await admin.transitEncrypt(key, Buffer.from('fake-phi-plain'));
    expect(plain.keyVersion).toBe(2);
    const old = await admin.transitEncrypt(key, Buffer.from('fake-phi-old'));
    await admin.transitRotate(key);
    const rewrapped = await admin.transitRewrap(key, old.ciphertext);
    expect(rewrapped).toMatchObject({ keyVersion: 3, ciphertext: expect.stringMatching(/^vault:v3:/) });
    await admin.transitConfigureKey(key, { minDecryptionVersion: 3 });
    const read = await admin.transitReadKey(key);
    expect(read).toMatchObject({ latestVersion: 3, minDecryptionVersion: 3 });
    // The last rotation's time, which the compliance check of the key's rotation age judges (Vault's clock, not ours).
    expect(created).toBeInstanceOf(Date);
    expect(read.latestVersionCreatedAt!.getTime()).toBeGreaterThanOrEqual(created!.getTime());
    const refused = await failure(admin.transitDecrypt(key, old.ciphertext));
    expect(refused).toMatchObject({
      code: 'ORDERLY_E_VAULT_ERROR',
      details: { vaultStatus: 400, vaultErrors: ['ciphertext or signature version is disallowed by policy (too old)'] },
    });
    expect((await admin.transitDecrypt(key, rewrapped.ciphertext)).toString()).toBe('fake-phi-old');
  });

  it('signs and verifies with an ed25519 key', async () => {
    const admin = factory.withToken(dv.rootToken);
    const key = fake('signer');
    await admin.transitCreateKey(key, 'ed25519');
    const input = Buffer.from('fake job envelope');
    const { signature, keyVersion } = await admin.transitSign(key, input);
    expect(keyVersion).toBe(1);
    expect(await admin.transitVerify(key, input, signature)).toBe(true);
    expect(await admin.transitVerify(key, Buffer.from('fake forged envelope'), signature)).toBe(false);
  });
});

describe('failure mapping', () => {
  it('maps a sealed Vault to ORDERLY_E_VAULT_SEALED without retrying; health still answers', async () => {
    const admin = factory.withToken(dv.rootToken);
    dv.seal();
    try {
      const sealed = await failure(admin.kvRead('creds/anything'));
      expect(sealed).toMatchObject({ code: 'ORDERLY_E_VAULT_SEALED', details: { attempts: 1, vaultStatus: 503, path: 'secret/data/creds/anything' } });
      expect((await failure(factory.anonymous().approleLogin({ roleId: 'fake', secretId: 'fake' }))).code).toBe('ORDERLY_E_VAULT_SEALED');
      expect(await admin.health()).toMatchObject({ sealed: true });
      expect(retries).toEqual([]);
    } finally {
      dv.unseal();
    }
  });

  it('gives up on an unreachable Vault with ORDERLY_E_VAULT_UNAVAILABLE after bounded retries', async () => {
    const port = await closedPort();
    const events: VaultRetryEvent[] = [];
    const client = createVaultClientFactory({ address: `http://127.0.0.1:${port}`, ...fast, onRetry: (e) => events.push(e) }).withToken(
      'hvs' + '.fakeFAKEfake0000000000',
    );
    const start = Date.now();
    const error = await failure(client.kvRead('creds/x', { deadline: start + 400 }));
    const elapsed = Date.now() - start;
    expect(error).toMatchObject({ code: 'ORDERLY_E_VAULT_UNAVAILABLE', details: { network: 'ECONNREFUSED', path: 'secret/data/creds/x' } });
    expect(Number(error.details.attempts)).toBeGreaterThanOrEqual(4);
    expect(events).toHaveLength(Number(error.details.attempts) - 1);
    expect(events.every((e) => e.reason === 'ECONNREFUSED' && e.delayMs <= 40)).toBe(true);
    expect(elapsed).toBeLessThan(400 + 250);
  });

  it('retries 429 and 503 standby answers, then succeeds', async () => {
    await withFlakyProxy([429, 503], async (address, seen) => {
      const events: VaultRetryEvent[] = [];
      const client = createVaultClientFactory({ address, ...fast, onRetry: (e) => events.push(e) }).withToken(dv.rootToken);
      expect(await client.lookupSelf()).toMatchObject({ policies: ['root'] });
      expect(events.map((e) => e.reason)).toEqual(['status 429', 'status 503']);
      expect(seen()).toBe(3);
    });
  });

  it('retries an ambiguous 500 for an idempotent read, but never repeats a login', async () => {
    await withFlakyProxy([500], async (address, seen) => {
      const client = createVaultClientFactory({ address, ...fast }).withToken(dv.rootToken);
      expect(await client.lookupSelf()).toMatchObject({ policies: ['root'] });
      expect(seen()).toBe(2);
    });
    await withFlakyProxy([500], async (address, seen) => {
      const error = await failure(
        createVaultClientFactory({ address, ...fast })
          .anonymous()
          .approleLogin({ roleId: 'fake-role', secretId: 'fake-secret' }),
      );
      expect(error).toMatchObject({ code: 'ORDERLY_E_VAULT_UNAVAILABLE', details: { attempts: 1, vaultStatus: 500 } });
      expect(error.message).toMatch(/not idempotent/);
      expect(seen()).toBe(1);
    });
  });

  it('times out each attempt and stops at the deadline when Vault never answers', async () => {
    const sockets = new Set<Socket>();
    const silent = createNetServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as { port: number }).port;
      const client = createVaultClientFactory({ address: `http://127.0.0.1:${port}`, ...fast, requestTimeoutMs: 100 }).withToken(
        'hvs' + '.fakeFAKEfake0000000000',
      );
      const start = Date.now();
      const error = await failure(client.kvRead('creds/x', { deadline: start + 450 }));
      expect(error).toMatchObject({ code: 'ORDERLY_E_VAULT_UNAVAILABLE', details: { network: 'ECONNABORTED' } });
      expect(Number(error.details.attempts)).toBeGreaterThanOrEqual(2);
      expect(Date.now() - start).toBeLessThan(450 + 250);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});

/** A port nothing listens on (bound a moment ago, then closed). */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

/**
 * A loopback proxy to the dev Vault that answers the first requests with the given statuses
 * (Vault's error body, not its sealed text) and forwards the rest.
 */
async function withFlakyProxy(statuses: number[], body: (address: string, seen: () => number) => Promise<void>): Promise<void> {
  const upstream = new URL(dv.address);
  const queue = [...statuses];
  let count = 0;
  const proxy: Server = createHttpServer((req, res) => {
    count += 1;
    const status = queue.shift();
    if (status !== undefined) {
      req.resume();
      res.writeHead(status, { 'Content-Type': 'application/json', Connection: 'close' });
      res.end(JSON.stringify({ errors: [status === 429 ? 'fake rate limit' : status === 503 ? 'Vault is in standby mode (fake)' : 'internal error'] }));
      return;
    }
    const forward = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    req.pipe(forward);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  try {
    await body(`http://127.0.0.1:${(proxy.address() as { port: number }).port}`, () => count);
  } finally {
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
  }
}
