import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FastifyRequest } from 'fastify';
import { generateBoxKeyPair, generateSigningKeyPair, loadPublicKey, runnerKeyId, SegmentName } from '@orderly/shared';
import { createTestDatabase } from '@orderly/shared/testing';
import { Db, pgliteDb, postgresDb } from '../db/db';
import { migrate } from '../db/migrations';
import { Identity } from './identity';
import { Role } from './schemas';
import { base32Decode, totpAt } from './totp';

/**
 * The identity store against real databases, with an injected clock: sessions expire when idle
 * and at their absolute limit, lockout backs off, TOTP codes and recovery codes are single use,
 * revocation applies at once. (HTTP-level behaviour is in test/e2e/access.e2e.test.ts.)
 */
const SEGMENTS = ['demo', 'prod'] as SegmentName[];
// Weak scrypt keeps the suite fast; the strong default is tested in passwords.test.ts.
const FAST = { log2N: 10, r: 8, p: 1 };
const PASSWORD = `pw-${randomBytes(12).toString('base64url')}`;

class TestClock {
  now = Date.UTC(2026, 0, 5, 9, 0, 0);
  readonly fn = () => this.now;
  advance(ms: number) {
    this.now += ms;
  }
}

async function setup(db: Db) {
  await migrate(db);
  const clock = new TestClock();
  const identity = new Identity({
    db,
    dataKey: randomBytes(32),
    dataKeyId: 'test',
    segments: SEGMENTS,
    clock: clock.fn,
    settings: { scrypt: FAST, sessionIdleMinutes: 15, sessionMaxHours: 12 },
  });
  /** Creates and enrols a person; returns their TOTP secret and recovery codes. */
  async function person(username: string, roles: Role[]) {
    const created = await identity.users.create(username, roles, 'admin');
    const { secret, otpauthUri } = await identity.users.startEnrolment(username, created.enrolmentSecret);
    expect(otpauthUri).toContain(`secret=${secret}`);
    const key = base32Decode(secret);
    const recoveryCodes = await identity.users.confirmEnrolment(username, created.enrolmentSecret, PASSWORD, totpAt(key, clock.now));
    clock.advance(30_000); // the enrolment code's step is spent
    return { id: created.user.id, key, recoveryCodes, code: () => totpAt(key, clock.now) };
  }
  return { identity, clock, person };
}

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Db;
beforeAll(async () => {
  database = await createTestDatabase();
  db = postgresDb(database.url);
});
afterAll(async () => {
  await db.close();
  await database.drop();
});

test('enrolment: the secret is single use, a wrong code refuses, and the TOTP secret is stored sealed', async () => {
  const { identity, clock } = await setup(db);
  const created = await identity.users.create('enrol-a', ['developer'], 'admin');
  const { secret } = await identity.users.startEnrolment('enrol-a', created.enrolmentSecret);
  await expect(identity.users.confirmEnrolment('enrol-a', created.enrolmentSecret, PASSWORD, '000000')).rejects.toMatchObject({
    code: 'ORDERLY_E_SIGN_IN_FAILED',
  });
  await expect(identity.users.confirmEnrolment('enrol-a', 'x'.repeat(43), PASSWORD, totpAt(base32Decode(secret), clock.now))).rejects.toMatchObject({
    code: 'ORDERLY_E_SIGN_IN_FAILED',
  });
  const codes = await identity.users.confirmEnrolment('enrol-a', created.enrolmentSecret, PASSWORD, totpAt(base32Decode(secret), clock.now));
  expect(codes).toHaveLength(10);
  // Spent: the enrolment secret cannot re-enrol (and so cannot replace the TOTP secret).
  await expect(identity.users.startEnrolment('enrol-a', created.enrolmentSecret)).rejects.toMatchObject({ code: 'ORDERLY_E_SIGN_IN_FAILED' });
  const [row] = await db.query<{ totp_sealed: unknown; password_hash: string; enrolment_hash: string | null }>(
    'SELECT totp_sealed, password_hash, enrolment_hash FROM users WHERE username = $1',
    ['enrol-a'],
  );
  const stored = JSON.stringify(row);
  expect(stored).not.toContain(secret);
  expect(stored).not.toContain(PASSWORD);
  expect(row!.password_hash).toMatch(/^scrypt\$/);
  expect(row!.enrolment_hash).toBeNull();
  const recovery = await db.query<{ code_hash: string }>('SELECT code_hash FROM recovery_codes');
  expect(recovery.map((r) => r.code_hash)).not.toContain(codes[0]);
});

test('an enrolment secret expires', async () => {
  const { identity, clock } = await setup(db);
  const created = await identity.users.create('enrol-late', ['auditor'], 'admin');
  clock.advance(73 * 3600_000);
  await expect(identity.users.startEnrolment('enrol-late', created.enrolmentSecret)).rejects.toMatchObject({ code: 'ORDERLY_E_SIGN_IN_FAILED' });
});

test('sign-in needs the second factor; a TOTP code is refused the second time (replay)', async () => {
  const { identity, person } = await setup(db);
  const alice = await person('alice', ['operator']);
  await expect(identity.users.signIn('alice', PASSWORD, '123456')).rejects.toMatchObject({ code: 'ORDERLY_E_SIGN_IN_FAILED' });
  const code = alice.code();
  await expect(identity.users.signIn('alice', 'wrong password!', code)).rejects.toMatchObject({ code: 'ORDERLY_E_SIGN_IN_FAILED' });
  await expect(identity.users.signIn('alice', PASSWORD, code)).resolves.toMatchObject({ username: 'alice' });
  await expect(identity.users.signIn('alice', PASSWORD, code)).rejects.toMatchObject({ code: 'ORDERLY_E_SIGN_IN_FAILED' });
  // The same code cannot serve a step-up either.
  await expect(identity.users.stepUp(alice.id, code)).resolves.toBe(false);
});

test('recovery codes work once each', async () => {
  const { identity, person } = await setup(db);
  const bob = await person('bob', ['developer']);
  const [first, second] = bob.recoveryCodes;
  await expect(identity.users.signIn('bob', PASSWORD, first!)).resolves.toMatchObject({ username: 'bob' });
  await expect(identity.users.signIn('bob', PASSWORD, first!)).rejects.toMatchObject({ code: 'ORDERLY_E_SIGN_IN_FAILED' });
  await expect(identity.users.signIn('bob', PASSWORD, second!.toUpperCase())).resolves.toMatchObject({ username: 'bob' });
  // A recovery code is not a step-up.
  await expect(identity.users.stepUp(bob.id, bob.recoveryCodes[2]!)).resolves.toBe(false);
});

test('lockout after 5 failures, with exponential backoff, the same for unknown usernames; unlock clears it', async () => {
  const { identity, clock, person } = await setup(db);
  const carol = await person('carol', ['auditor']);
  for (const username of ['carol', 'nobody-here']) {
    for (let i = 0; i < 5; i++)
      await expect(identity.users.signIn(username, 'wrong password!', '000000')).rejects.toMatchObject({ code: 'ORDERLY_E_SIGN_IN_FAILED' });
    // Locked: even the right answer is refused, and an unknown username answers the same.
    const locked = await identity.users.signIn(username, PASSWORD, carol.code()).catch((e: unknown) => e);
    expect(locked).toMatchObject({ code: 'ORDERLY_E_SIGN_IN_LOCKED', details: { retryAfterSeconds: 30 } });
  }
  clock.advance(31_000);
  // One more failure after the first lock doubles it.
  await expect(identity.users.signIn('carol', 'wrong password!', '000000')).rejects.toMatchObject({ code: 'ORDERLY_E_SIGN_IN_FAILED' });
  await expect(identity.users.signIn('carol', PASSWORD, carol.code())).rejects.toMatchObject({
    code: 'ORDERLY_E_SIGN_IN_LOCKED',
    details: { retryAfterSeconds: 60 },
  });
  clock.advance(61_000);
  await expect(identity.users.signIn('carol', PASSWORD, carol.code())).resolves.toMatchObject({ username: 'carol' });
  // Success reset the count: four failures do not lock.
  for (let i = 0; i < 4; i++)
    await expect(identity.users.signIn('carol', 'wrong password!', '000000')).rejects.toMatchObject({ code: 'ORDERLY_E_SIGN_IN_FAILED' });
  await expect(identity.users.signIn('carol', 'wrong password!', '000000')).rejects.toMatchObject({ code: 'ORDERLY_E_SIGN_IN_FAILED' });
  expect((await identity.users.find('carol')).locked_until).not.toBeNull();
  await identity.users.unlock('carol');
  clock.advance(30_000);
  await expect(identity.users.signIn('carol', PASSWORD, carol.code())).resolves.toMatchObject({ username: 'carol' });
});

test('sessions end after 15 idle minutes, and after 12 hours however busy', async () => {
  const { identity, clock, person } = await setup(db);
  await person('dave', ['operator']);
  const idle = await identity.sessions.create((await identity.users.find('dave')).id);
  clock.advance(14 * 60_000);
  await expect(identity.sessions.resolve(idle.sessionId)).resolves.toMatchObject({ user: { username: 'dave' } });
  clock.advance(14 * 60_000); // 28 minutes in, but only 14 since the last request
  await expect(identity.sessions.resolve(idle.sessionId)).resolves.toBeDefined();
  clock.advance(15 * 60_000);
  await expect(identity.sessions.resolve(idle.sessionId)).rejects.toMatchObject({ code: 'ORDERLY_E_SESSION_EXPIRED' });
  // Deleted on expiry: the cookie is worthless from now on.
  await expect(identity.sessions.resolve(idle.sessionId)).resolves.toBeUndefined();

  const busy = await identity.sessions.create((await identity.users.find('dave')).id);
  for (let minutes = 0; minutes < 12 * 60 - 10; minutes += 10) {
    clock.advance(10 * 60_000);
    await expect(identity.sessions.resolve(busy.sessionId)).resolves.toBeDefined();
  }
  clock.advance(10 * 60_000);
  await expect(identity.sessions.resolve(busy.sessionId)).rejects.toMatchObject({ code: 'ORDERLY_E_SESSION_EXPIRED' });
  // Only the hash of the session id is stored.
  expect(JSON.stringify(await db.query('SELECT * FROM sessions'))).not.toContain(busy.sessionId);
});

test("API tokens: scopes within the owner's roles, capped expiry, revocation and role removal apply at once", async () => {
  const { identity, clock, person } = await setup(db);
  const erin = await person('erin', ['developer', 'operator']);
  const owner = { kind: 'user' as const, id: erin.id, name: 'erin', roles: ['developer', 'operator'] as Role[] };
  await expect(identity.tokens.create(owner, { name: 'x', scopes: ['security'], expiresInDays: 1 })).rejects.toMatchObject({ code: 'ORDERLY_E_FORBIDDEN' });
  await expect(identity.tokens.create(owner, { name: 'x', expiresInDays: 91 })).rejects.toMatchObject({ code: 'ORDERLY_E_BAD_REQUEST' });
  const token = await identity.tokens.create(owner, { name: 'ci', scopes: ['developer', 'operator'], expiresInDays: 1 });
  expect(JSON.stringify(await db.query('SELECT * FROM api_tokens'))).not.toContain(token.token);
  await expect(identity.tokens.resolve(token.token)).resolves.toMatchObject({ roles: ['developer', 'operator'] });
  // Removing a role from the owner removes it from the token.
  const admin = { kind: 'admin' as const, id: 'admin', actor: 'admin', permissions: new Set(['users.manage'] as const) };
  await identity.users.setRoles('erin', ['developer'], admin);
  await expect(identity.tokens.resolve(token.token)).resolves.toMatchObject({ roles: ['developer'] });
  // Someone else cannot revoke it (and is told it does not exist); the owner can, at once.
  const stranger = { kind: 'user' as const, id: '00000000-0000-4000-8000-000000000000', actor: 'user:x', permissions: new Set(['self'] as const) };
  await expect(identity.tokens.revoke(token.id, stranger)).rejects.toMatchObject({ code: 'ORDERLY_E_NOT_FOUND' });
  await identity.tokens.revoke(token.id, { kind: 'user', id: erin.id, actor: 'user:erin', permissions: new Set(['self'] as const) });
  await expect(identity.tokens.resolve(token.token)).resolves.toBeUndefined();
  // Expiry.
  const short = await identity.tokens.create({ ...owner, roles: ['developer'] }, { name: 'short', expiresInDays: 1 });
  clock.advance(86_400_000);
  await expect(identity.tokens.resolve(short.token)).resolves.toBeUndefined();
  // A disabled owner's tokens stop working.
  const third = await identity.tokens.create({ ...owner, roles: ['developer'] }, { name: 'third', expiresInDays: 2 });
  await identity.users.disable('erin');
  await expect(identity.tokens.resolve(third.token)).resolves.toBeUndefined();
});

test('runner identities are bound to a served segment and revoked at once', async () => {
  const { identity } = await setup(db);
  const own = () => ({ publicKeyPem: generateSigningKeyPair().publicKeyPem });
  await expect(identity.runners.register('r-x', 'nowhere' as SegmentName, 'admin', own())).rejects.toMatchObject({ code: 'ORDERLY_E_SEGMENT_UNKNOWN' });
  const runner = await identity.runners.register('r-1', 'prod' as SegmentName, 'admin', own());
  await expect(identity.runners.register('r-1', 'demo' as SegmentName, 'admin', own())).rejects.toMatchObject({ code: 'ORDERLY_E_IDENTITY_CONFLICT' });
  await expect(identity.runners.resolve(runner.token)).resolves.toMatchObject({ name: 'r-1', segment: 'prod' });
  await identity.runners.revoke('r-1');
  await expect(identity.runners.resolve(runner.token)).resolves.toBeUndefined();
});

test('a runner registers with its own public key; the database keeps the public half only, and bootstrap runners are revocable', async () => {
  const { identity } = await setup(db);
  const pair = generateSigningKeyPair();
  const registered = await identity.runners.register('r-keyed', 'demo' as SegmentName, 'admin', { publicKeyPem: pair.publicKeyPem });
  expect(Object.keys(registered)).not.toContain('signingKey');
  expect(registered.keyId).toBe(runnerKeyId(loadPublicKey(pair.publicKeyPem)));
  const [row] = await db.query<{ public_key: string; key_id: string }>("SELECT public_key, key_id FROM runner_identities WHERE name = 'r-keyed'");
  expect(row).toEqual({ public_key: pair.publicKeyPem, key_id: registered.keyId });
  // The same key for a second runner would let one sign as the other.
  await expect(identity.runners.register('r-copy', 'demo' as SegmentName, 'admin', { publicKeyPem: pair.publicKeyPem })).rejects.toMatchObject({
    code: 'ORDERLY_E_IDENTITY_CONFLICT',
  });
  await expect(identity.runners.register('r-bad', 'demo' as SegmentName, 'admin', { publicKeyPem: generateBoxKeyPair().publicKeyPem })).rejects.toMatchObject({
    code: 'ORDERLY_E_KEY_INVALID',
  });
  // The control room never makes a runner's private key: without a public key nothing is registered.
  await expect(identity.runners.register('r-made', 'demo' as SegmentName, 'admin')).rejects.toMatchObject({ code: 'ORDERLY_E_RUNNER_KEY_REQUIRED' });
  expect(await db.query("SELECT 1 FROM runner_identities WHERE name = 'r-made'")).toEqual([]);
  const dump = JSON.stringify(await db.query('SELECT * FROM runner_identities'));
  expect(dump).not.toContain('PRIVATE KEY');
  expect(await identity.runners.revokeBootstrap('demo' as SegmentName, 'admin')).toMatchObject({ segment: 'demo', revokedBy: 'admin' });
  await expect(identity.runners.revokeBootstrap('nowhere' as SegmentName, 'admin')).rejects.toMatchObject({ code: 'ORDERLY_E_SEGMENT_UNKNOWN' });
});

test('PGlite: enrol, sign in, session and token on the embedded database', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'orderly-identity-'));
  const lite = await pgliteDb(dir);
  try {
    const { identity, person } = await setup(lite);
    const frank = await person('frank', ['approver']);
    const user = await identity.users.signIn('frank', PASSWORD, frank.code());
    const session = await identity.sessions.create(user.id);
    await expect(identity.sessions.resolve(session.sessionId)).resolves.toMatchObject({ user: { username: 'frank', roles: ['approver'] } });
    const token = await identity.tokens.create({ kind: 'user', id: user.id, name: 'frank', roles: ['approver'] }, { name: 'cli', expiresInDays: 3 });
    await expect(identity.tokens.resolve(token.token)).resolves.toMatchObject({ roles: ['approver'] });
    await expect(identity.users.create('frank', ['developer'], 'admin')).rejects.toMatchObject({ code: 'ORDERLY_E_IDENTITY_CONFLICT' });
  } finally {
    await lite.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('step-up: a session is fresh for 5 minutes after sign-in or step-up; a token needs a current code; service accounts never pass', async () => {
  const { identity, clock, person } = await setup(db);
  const gina = await person('gina', ['security']);
  const user = await identity.users.signIn('gina', PASSWORD, gina.code());
  const session = await identity.sessions.create(user.id);
  const request = (headers: Record<string, string> = {}) => ({ method: 'PUT', headers }) as unknown as FastifyRequest;
  const sessionPrincipal = async () =>
    identity.authenticate({ method: 'PUT', headers: { cookie: `orderly_session=${session.sessionId}` } } as unknown as FastifyRequest, undefined);
  await expect(identity.checkStepUp(request(), await sessionPrincipal())).resolves.toBeUndefined();
  clock.advance(5 * 60_000 + 1000);
  await expect(identity.checkStepUp(request(), await sessionPrincipal())).rejects.toMatchObject({ code: 'ORDERLY_E_STEP_UP_REQUIRED' });
  const stale = await sessionPrincipal();
  expect(stale?.credential?.kind).toBe('session');
  await expect(identity.users.stepUp(gina.id, gina.code())).resolves.toBe(true);
  await identity.sessions.markSteppedUp((stale!.credential as { sessionHash: string }).sessionHash);
  await expect(identity.checkStepUp(request(), await sessionPrincipal())).resolves.toBeUndefined();

  const token = await identity.tokens.create({ kind: 'user', id: gina.id, name: 'gina', roles: ['security'] }, { name: 't', expiresInDays: 1 });
  const tokenPrincipal = await identity.authenticate(request(), token.token);
  await expect(identity.checkStepUp(request(), tokenPrincipal)).rejects.toMatchObject({ code: 'ORDERLY_E_STEP_UP_REQUIRED' });
  clock.advance(30_000);
  await expect(identity.checkStepUp(request({ 'x-orderly-totp': gina.code() }), tokenPrincipal)).resolves.toBeUndefined();

  const account = await identity.serviceAccounts.create('ci-bot', ['developer'], 'admin');
  const serviceToken = await identity.tokens.create(
    { kind: 'service', id: account.id, name: account.name, roles: account.roles },
    { name: 'ci', expiresInDays: 1 },
  );
  const service = await identity.authenticate(request(), serviceToken.token);
  expect(service).toMatchObject({ kind: 'service', actor: 'service:ci-bot' });
  clock.advance(30_000);
  await expect(identity.checkStepUp(request({ 'x-orderly-totp': gina.code() }), service)).rejects.toMatchObject({ code: 'ORDERLY_E_STEP_UP_REQUIRED' });
});
