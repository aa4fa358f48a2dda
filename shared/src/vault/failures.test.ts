import { classifyFailure, sanitizeVaultMessage, toOrderlyError } from './failures';

describe('classifyFailure', () => {
  const api = (statusCode: number, body: unknown): Error => Object.assign(new Error('x'), { response: { statusCode, body } });

  it.each([
    [api(503, { errors: ['Vault is sealed'] }), 'sealed', 'never'],
    [api(503, { errors: [] }), 'unavailable', 'unprocessed'],
    [api(429, { errors: ['rate limit quota exceeded'] }), 'unavailable', 'unprocessed'],
    [api(412, { errors: [] }), 'unavailable', 'unprocessed'],
    [api(500, { errors: ['internal error'] }), 'unavailable', 'ambiguous'],
    [api(502, undefined), 'unavailable', 'ambiguous'],
    [api(403, { errors: ['1 error occurred:\n\t* permission denied\n\n'] }), 'denied', 'never'],
    [api(404, { errors: [] }), 'not-found', 'never'],
    [Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), 'unavailable', 'unprocessed'],
    [Object.assign(new Error('timeout of 5ms exceeded'), { code: 'ECONNABORTED' }), 'unavailable', 'ambiguous'],
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'unavailable', 'ambiguous'],
  ])('%#: classifies as %s / %s', (error, kind, retry) => {
    expect(classifyFailure(error)).toMatchObject({ kind, retry });
  });
});

describe('messages stay free of secrets', () => {
  it('redacts tokens, UUIDs and long base64 from Vault error strings', () => {
    const text = sanitizeVaultMessage(
      'token hvs' + '.CAESIFAKEFAKEFAKE1234 and s.abcdefghijklmnopqrstuvwx id 59d6d1ca-47bb-4e7e-a40b-8be3bc5a0ba8 blob dGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcw==',
    );
    expect(text).toBe('token [redacted] and [redacted] id [redacted] blob [redacted]');
  });

  it('names the path in a permission error, and nothing from the request', () => {
    const error = toOrderlyError(
      { kind: 'denied', retry: 'never', status: 403, vaultErrors: ['permission denied'] },
      { operation: 'kv read', path: 'secret/data/bots/b1/portal' },
      1,
    );
    expect(error.code).toBe('ORDERLY_E_VAULT_PERMISSION_DENIED');
    expect(error.message).toBe('Vault denied kv read on secret/data/bots/b1/portal');
    expect(error.details).toEqual({
      path: 'secret/data/bots/b1/portal',
      operation: 'kv read',
      attempts: 1,
      vaultStatus: 403,
      vaultErrors: ['permission denied'],
    });
  });
});
