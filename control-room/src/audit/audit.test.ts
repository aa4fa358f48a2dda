import { canonicalJson } from '@orderly/shared';
import { AUDIT_GENESIS_HASH, auditHash } from './audit';

test('canonical JSON sorts keys at every depth and drops undefined', () => {
  expect(canonicalJson({ b: 1, a: { d: [3, { z: null, y: 'x' }], c: undefined } })).toBe('{"a":{"d":[3,{"y":"x","z":null}]},"b":1}');
  expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
  expect(() => canonicalJson({ a: Number.NaN })).toThrow();
});

test('the hash covers the previous hash and every field of the event', () => {
  const base = {
    at: '2026-01-01T00:00:00.000Z',
    actor: 'admin',
    action: 'credential.set',
    target: 'bot/name',
    outcome: 'success' as const,
    sourceIp: null,
    requestId: 'r',
    details: { version: 1 },
    prevHash: AUDIT_GENESIS_HASH,
  };
  const h = auditHash(AUDIT_GENESIS_HASH, base);
  expect(h).toMatch(/^[0-9a-f]{64}$/);
  expect(auditHash('1'.repeat(64), base)).not.toBe(h);
  expect(auditHash(AUDIT_GENESIS_HASH, { ...base, details: { version: 2 } })).not.toBe(h);
  expect(auditHash(AUDIT_GENESIS_HASH, { ...base, outcome: 'failure' })).not.toBe(h);
});
