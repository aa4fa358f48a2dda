import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { loadPrivateKey } from '@orderly/shared';
import { Stack, startStack } from '../../../test/harness';
import { buildProgram } from '../cli/main';
import { Db, postgresDb } from '../db/db';
import { AuditLog, auditHash, AuditRecord } from './audit';
import { AuditHeads } from './heads';

/**
 * Issue 6, must show: `orderly audit verify` (the CLI path: events and heads fetched over the API,
 * checked client-side with the release public key) names the first broken link when an event is
 * changed, deleted or inserted straight in the database by a superuser, and when the tail is cut
 * below a signed head; the application's own connection cannot UPDATE, DELETE or TRUNCATE.
 */
let stack: Stack;
let superuser: Client;
let appDb: Db;
let heads: AuditHeads;

/** Runs `orderly audit verify --json` in-process and returns its verdict and exit code. */
async function cliVerify(): Promise<{ verdict: { ok: boolean; seq?: number; reason?: string; events?: number; headsChecked?: number }; exitCode: number }> {
  let out = '';
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  });
  const before = process.exitCode;
  process.exitCode = 0;
  try {
    await buildProgram().parseAsync(['--url', stack.controlRoom.url, '--token', stack.adminToken, 'audit', 'verify', '--json'], { from: 'user' });
    return { verdict: JSON.parse(out) as never, exitCode: Number(process.exitCode ?? 0) };
  } finally {
    write.mockRestore();
    process.exitCode = before;
  }
}

const rows = async (): Promise<AuditRecord[]> => new AuditLog(appDb).list();

/** A superuser session with triggers off: what an attacker with database access can do. */
async function asAttacker<T>(fn: (db: Client) => Promise<T>): Promise<T> {
  await superuser.query('SET session_replication_role = replica');
  try {
    return await fn(superuser);
  } finally {
    await superuser.query('SET session_replication_role = DEFAULT');
  }
}

async function reinsert(r: AuditRecord): Promise<void> {
  await asAttacker((db) =>
    db.query(
      'INSERT INTO audit_events (seq, at, actor, action, target, outcome, source_ip, request_id, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
      [r.seq, r.at, r.actor, r.action, r.target, r.outcome, r.sourceIp, r.requestId, JSON.stringify(r.details), r.prevHash, r.hash],
    ),
  );
}

beforeAll(async () => {
  stack = await startStack({ vault: false });
  superuser = new Client({ connectionString: stack.databaseUrl });
  await superuser.connect();
  appDb = postgresDb(stack.databaseUrl!);
  const releaseKey = loadPrivateKey(readFileSync(join(stack.dataDir, 'secrets', 'release.key'), 'utf8'));
  heads = new AuditHeads(appDb, new AuditLog(appDb), releaseKey);

  // Real traffic: a success, a refusal, a denial, with a ticket.
  expect((await stack.registerKey('tamper-publisher', stack.publisher.publicKeyPem)).status).toBe(201);
  expect((await stack.api('POST', '/v1/runs', { bot: 'no-such-bot' })).status).toBe(404);
  expect((await stack.api('GET', '/v1/runs', undefined, '')).status).toBe(401);
  // A rolled-back append leaves a gap in the sequence; an attacker can try to fill it.
  await superuser.query("SELECT nextval(pg_get_serial_sequence('audit_events', 'seq'))");
  const ticketed = await fetch(`${stack.controlRoom.url}/v1/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json', 'x-orderly-ticket': 'CHG-1042' },
    body: JSON.stringify({ name: 'bad name!' }),
  });
  expect(ticketed.status).toBe(400);
  expect((await stack.api('POST', '/v1/runs/batch', { runs: [] })).status).toBe(400);
  await heads.signIfMoved();
});

afterAll(async () => {
  await superuser?.end();
  await appDb?.close();
  await stack?.close();
});

test('the request hook recorded success, failure and denial, with actor, target, code and ticket, and no body', async () => {
  const events = await rows();
  expect(events.map((e) => [e.action, e.outcome, e.actor])).toEqual([
    // The key's holder and their team (stack.registerKey: every key has a holder).
    ['http.post.v1.users', 'success', 'admin'],
    // ...who enrols a second factor, as every person does.
    ['http.post.v1.enrolment', 'success', 'anonymous'],
    ['http.post.v1.enrolment.confirm', 'success', 'anonymous'],
    ['team.create', 'success', 'admin'],
    ['team.member_add', 'success', 'admin'],
    ['key.register', 'success', 'admin'],
    ['run.create', 'failure', 'admin'],
    ['http.get.v1.runs', 'denied', 'anonymous'],
    ['key.register', 'failure', 'admin'],
    ['run.create_batch', 'failure', 'admin'],
  ]);
  expect(events[6]!.details).toMatchObject({ method: 'POST', status: 404, code: 'ORDERLY_E_BOT_UNKNOWN' });
  expect(events[7]!.details).toMatchObject({ status: 401, code: 'ORDERLY_E_UNAUTHENTICATED' });
  expect(events[8]!.details).toMatchObject({ ticket: 'CHG-1042', code: 'ORDERLY_E_BAD_REQUEST' });
  expect(events.every((e) => e.sourceIp === '127.0.0.1' && typeof e.requestId === 'string')).toBe(true);
  expect(JSON.stringify(events)).not.toContain('no-such-bot'); // bodies never reach the log
});

test('an intact log verifies, heads included', async () => {
  const { verdict, exitCode } = await cliVerify();
  expect(verdict).toMatchObject({ ok: true, events: 10, headsChecked: 1 });
  expect(exitCode).toBe(0);
});

test('an event changed in the database is named', async () => {
  const target = (await rows())[6]!; // a failure, made to look like a success
  await asAttacker((db) => db.query('UPDATE audit_events SET outcome = $1 WHERE seq = $2', ['success', target.seq]));
  try {
    const { verdict, exitCode } = await cliVerify();
    expect(verdict).toMatchObject({ ok: false, seq: target.seq, reason: expect.stringMatching(/hash does not match/) });
    expect(exitCode).toBe(1);
  } finally {
    await asAttacker((db) => db.query('UPDATE audit_events SET outcome = $1 WHERE seq = $2', [target.outcome, target.seq]));
  }
  expect((await cliVerify()).verdict.ok).toBe(true);
});

test('a deleted event is named by the link after it', async () => {
  const [, removed, next] = await rows();
  await asAttacker((db) => db.query('DELETE FROM audit_events WHERE seq = $1', [removed!.seq]));
  try {
    const { verdict, exitCode } = await cliVerify();
    expect(verdict).toMatchObject({ ok: false, seq: next!.seq, reason: expect.stringMatching(/prev_hash/) });
    expect(exitCode).toBe(1);
  } finally {
    await reinsert(removed!);
  }
  expect((await cliVerify()).verdict.ok).toBe(true);
});

test('an event inserted into a gap, with a correct hash of its own, is named by the link after it', async () => {
  const events = await rows();
  const gapAfter = events.findIndex((e, i) => events[i + 1] && events[i + 1]!.seq > e.seq + 1);
  expect(gapAfter).toBeGreaterThanOrEqual(0);
  const previous = events[gapAfter]!;
  const forged = {
    seq: previous.seq + 1,
    at: previous.at,
    actor: 'admin',
    action: 'run.create',
    target: '/v1/runs',
    outcome: 'success' as const,
    sourceIp: '127.0.0.1',
    requestId: 'forged',
    details: {},
    prevHash: previous.hash,
  };
  const hash = auditHash(previous.hash, forged);
  // The attacker also has to drop the constraint that stops two events following one.
  await asAttacker(async (db) => {
    await db.query('ALTER TABLE audit_events DROP CONSTRAINT audit_events_prev_hash_key');
    await db.query(
      'INSERT INTO audit_events (seq, at, actor, action, target, outcome, source_ip, request_id, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
      [forged.seq, forged.at, forged.actor, forged.action, forged.target, forged.outcome, forged.sourceIp, forged.requestId, '{}', forged.prevHash, hash],
    );
  });
  try {
    const { verdict, exitCode } = await cliVerify();
    expect(verdict).toMatchObject({ ok: false, seq: events[gapAfter + 1]!.seq, reason: expect.stringMatching(/prev_hash/) });
    expect(exitCode).toBe(1);
  } finally {
    await asAttacker(async (db) => {
      await db.query('DELETE FROM audit_events WHERE seq = $1', [forged.seq]);
      await db.query('ALTER TABLE audit_events ADD CONSTRAINT audit_events_prev_hash_key UNIQUE (prev_hash)');
    });
  }
  expect((await cliVerify()).verdict.ok).toBe(true);
});

test('a tail cut below a signed head is detected; a forged head is refused', async () => {
  const events = await rows();
  const tail = events.slice(-2);
  const signed = (await heads.list()).at(-1)!;
  expect(signed.seq).toBe(events.at(-1)!.seq);
  await asAttacker((db) => db.query('DELETE FROM audit_events WHERE seq = ANY($1)', [tail.map((e) => e.seq)]));
  try {
    // The remaining chain is internally consistent: only the signed head shows the cut.
    const { verdict, exitCode } = await cliVerify();
    expect(verdict).toMatchObject({ ok: false, seq: signed.seq, reason: expect.stringMatching(/beyond the last event/) });
    expect(exitCode).toBe(1);
  } finally {
    for (const e of tail) await reinsert(e);
  }
  await asAttacker((db) => db.query('UPDATE audit_heads SET hash = $1 WHERE seq = $2', ['f'.repeat(64), signed.seq]));
  try {
    expect((await cliVerify()).verdict).toMatchObject({ ok: false, seq: signed.seq, reason: expect.stringMatching(/invalid signature/) });
  } finally {
    await asAttacker((db) => db.query('UPDATE audit_heads SET hash = $1 WHERE seq = $2', [signed.hash, signed.seq]));
  }
  expect((await cliVerify()).verdict.ok).toBe(true);
});

test("the application's connection cannot UPDATE, DELETE or TRUNCATE events or heads, nor expire what is not an old prefix", async () => {
  for (const sql of [
    "UPDATE audit_events SET outcome = 'failure'",
    'DELETE FROM audit_events',
    'TRUNCATE audit_events',
    "UPDATE audit_heads SET hash = 'x'",
    'DELETE FROM audit_heads',
    'TRUNCATE audit_heads',
  ]) {
    await expect(appDb.query(sql)).rejects.toMatchObject({ message: expect.stringMatching(/append-only/) });
  }
  // The expiry path lets through only rows at or below the named seq AND older than the cut-off.
  await expect(
    appDb.transaction(async (tx) => {
      await tx.query(
        "SELECT set_config('orderly.audit_expire_through', '999999', true), set_config('orderly.audit_expire_before', '2000-01-01T00:00:00Z', true)",
      );
      await tx.query('DELETE FROM audit_events');
    }),
  ).rejects.toMatchObject({ message: expect.stringMatching(/append-only/) });
  expect((await cliVerify()).verdict).toMatchObject({ ok: true, events: 10 });
});
