import { generateKeyPairSync } from 'node:crypto';
import { AUDIT_GENESIS_HASH, auditHash, AuditRecord } from './audit';
import { toCefLine, toJsonLine } from './export';
import { signHead } from './heads';
import { verifyAuditLog } from './verify';
import { auditTarget, derivedAction, TICKET_PATTERN } from '../http/audit-hook';
import { keyedHasher } from './keyed-hash';

function chain(n: number): AuditRecord[] {
  const out: AuditRecord[] = [];
  let prev = AUDIT_GENESIS_HASH;
  for (let i = 1; i <= n; i++) {
    const r = {
      seq: i,
      at: `2026-01-01T00:00:0${i}.000Z`,
      actor: 'admin',
      action: 'run.create',
      target: `/v1/runs/${i}`,
      outcome: 'success' as const,
      sourceIp: '127.0.0.1',
      requestId: `r${i}`,
      details: { status: 201 },
      prevHash: prev,
    };
    const hash = auditHash(prev, r);
    out.push({ ...r, hash });
    prev = hash;
  }
  return out;
}

test('CEF lines escape header and extension fields so a hostile target cannot forge fields or lines', () => {
  const [record] = chain(1);
  const hostile = {
    ...record!,
    action: 'run.create',
    actor: 'user:a|b',
    target: '/v1/x=1\r\nCEF:0|evil',
    details: { ticket: 'CHG-1', code: 'ORDERLY_E_BAD_REQUEST', status: 400 },
    outcome: 'failure' as const,
  };
  const line = toCefLine(hostile);
  expect(line.split('\n')).toHaveLength(1);
  expect(line.startsWith('CEF:0|Orderly|control-room|1|run.create|run.create failure|5|')).toBe(true);
  expect(line).toContain('cs1=/v1/x\\=1\\r\\nCEF:0|evil');
  expect(line).toContain('suser=user:a|b'); // `|` needs no escape in extensions, `=` does
  expect(line).toContain('src=127.0.0.1');
  expect(line).toContain('cs3=CHG-1');
  expect(line).toContain(`rt=${Date.parse(record!.at)}`);
  expect(JSON.parse(toJsonLine(record!))).toEqual(record);
  expect(toCefLine({ ...record!, sourceIp: 'not-an-ip' })).not.toContain('src=');
});

test('verification names the first broken link and a cut tail, in memory', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const records = chain(5);
  const head = signHead(privateKey, { seq: 5, hash: records[4]!.hash, at: '2026-01-02T00:00:00.000Z' });
  expect(verifyAuditLog(records, [head], publicKey)).toMatchObject({ ok: true, events: 5, headsChecked: 1 });
  expect(verifyAuditLog(records.slice(0, 3), [head], publicKey)).toMatchObject({ ok: false, seq: 5, reason: expect.stringMatching(/beyond the last event/) });
  expect(
    verifyAuditLog(
      records.map((r) => (r.seq === 2 ? { ...r, actor: 'mallory' } : r)),
      [head],
      publicKey,
    ),
  ).toMatchObject({ ok: false, seq: 2 });
  const other = generateKeyPairSync('ed25519');
  expect(verifyAuditLog(records, [signHead(other.privateKey, head)], publicKey)).toMatchObject({
    ok: false,
    seq: 5,
    reason: expect.stringMatching(/invalid signature/),
  });
  expect(verifyAuditLog(records, [{ ...head, hash: records[3]!.hash }], publicKey)).toMatchObject({ ok: false, seq: 5 });
});

test('derived actions, targets, tickets and keyed hashes', () => {
  expect(derivedAction('POST', '/v1/runs/:id/cancel')).toBe('http.post.v1.runs.id.cancel');
  expect(derivedAction('DELETE', '/v1/tokens/:id')).toBe('http.delete.v1.tokens.id');
  expect(derivedAction('GET', undefined)).toBe('http.get.unrouted');
  expect(auditTarget('/v1/credentials/:bot/:name', { bot: '../etc', name: 'a\r\nb\0' })).toBe('/v1/credentials/..%2Fetc/a%0D%0Ab%00');
  expect(auditTarget('/v1/runs/:id', { id: 'x'.repeat(10_000) }).length).toBeLessThanOrEqual(300);
  expect(TICKET_PATTERN.test('CHG-1042')).toBe(true);
  for (const bad of ['', 'a b', 'x\r\ny', '-lead', 'y'.repeat(65)]) expect(TICKET_PATTERN.test(bad)).toBe(false);
  const hash = keyedHasher(Buffer.alloc(32, 1));
  expect(hash('member-ZZT123')).toBe(hash('member-ZZT123'));
  expect(hash('member-ZZT123')).not.toBe(keyedHasher(Buffer.alloc(32, 2))('member-ZZT123'));
  expect(hash('member-ZZT123')).not.toContain('ZZT');
});
