import { ERROR_CODES, ErrorCode, hasCode, isOrderlyError, OrderlyError } from './errors';

const codes = Object.keys(ERROR_CODES) as ErrorCode[];

describe('ERROR_CODES', () => {
  it.each(codes)('%s is prefixed, documented and has a 4xx/5xx status', (code) => {
    const entry = ERROR_CODES[code];
    expect(code).toMatch(/^ORDERLY_E_[A-Z0-9_]+$/);
    expect(entry.doc.trim().length).toBeGreaterThan(10);
    expect(Number.isInteger(entry.status)).toBe(true);
    expect(entry.status).toBeGreaterThanOrEqual(400);
    expect(entry.status).toBeLessThan(600);
    expect(typeof entry.retryable).toBe('boolean');
  });

  it('gives every code its own doc', () => {
    const docs = codes.map((c) => ERROR_CODES[c].doc);
    expect(new Set(docs).size).toBe(docs.length);
  });
});

describe('OrderlyError', () => {
  it('takes status and retryability from the registry, and serializes to the wire form', () => {
    const err = new OrderlyError('ORDERLY_E_VAULT_UNAVAILABLE', 'vault is down', { attempt: 2 });
    expect(err).toBeInstanceOf(Error);
    expect(err.status).toBe(503);
    expect(err.retryable).toBe(true);
    expect(JSON.parse(JSON.stringify(err))).toEqual({
      code: 'ORDERLY_E_VAULT_UNAVAILABLE',
      message: 'vault is down',
      retryable: true,
      details: { attempt: 2 },
    });
  });

  it('lets the caller override retryability', () => {
    expect(new OrderlyError('ORDERLY_E_BOT_FAILED', 'x', {}, { retryable: false }).retryable).toBe(false);
  });
});

describe('isOrderlyError', () => {
  it('accepts an OrderlyError and a plain object carrying a known code (another package copy, or the wire form)', () => {
    expect(isOrderlyError(new OrderlyError('ORDERLY_E_NOT_FOUND', 'no such run'))).toBe(true);
    expect(isOrderlyError({ code: 'ORDERLY_E_JOB_FORGED', message: 'x', retryable: false, details: {} })).toBe(true);
  });

  it.each([
    ['an unknown ORDERLY_E_ code', { code: 'ORDERLY_E_NO_SUCH_CODE', retryable: false }],
    ['a Node error code', { code: 'ENOENT', retryable: false }],
    ['an inherited property name as code', { code: 'toString', retryable: false }],
    ['__proto__ as code', { code: '__proto__', retryable: false }],
    ['constructor as code', { code: 'constructor', retryable: true }],
    ['a known code without retryable', { code: 'ORDERLY_E_NOT_FOUND' }],
    ['a non-string code', { code: 404, retryable: false }],
  ])('rejects %s', (_what, value) => {
    expect(isOrderlyError(value)).toBe(false);
  });

  it.each([null, undefined, 'ORDERLY_E_NOT_FOUND', 42, new Error('plain')])('rejects %p', (value) => {
    expect(isOrderlyError(value)).toBe(false);
  });

  it('hasCode matches only the given code', () => {
    const err = new OrderlyError('ORDERLY_E_JOB_EXPIRED', 'late');
    expect(hasCode(err, 'ORDERLY_E_JOB_EXPIRED')).toBe(true);
    expect(hasCode(err, 'ORDERLY_E_JOB_FORGED')).toBe(false);
    expect(hasCode({ code: 'toString', retryable: false }, 'ORDERLY_E_JOB_EXPIRED')).toBe(false);
  });
});
