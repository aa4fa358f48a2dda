import { checkTrySecrets } from './try';

test('the secrets of a try are exactly the credentials the manifest declares', () => {
  expect(() => checkTrySecrets(['api_key'], { api_key: 'fake-key-0123456789' })).not.toThrow();
  expect(() => checkTrySecrets([], {})).not.toThrow();
  expect(() => checkTrySecrets(['api_key'], {})).toThrow(
    expect.objectContaining({ code: 'ORDERLY_E_TRY_SECRETS_INVALID', details: { missing: ['api_key'], undeclared: [] } }),
  );
  expect(() => checkTrySecrets([], { extra: 'fake-value-0123456789' })).toThrow(
    expect.objectContaining({ code: 'ORDERLY_E_TRY_SECRETS_INVALID', details: { missing: [], undeclared: ['extra'] } }),
  );
});
