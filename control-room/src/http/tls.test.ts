import { ControlRoomConfigSchema, loadControlRoomConfig } from '../config';

/** Transport settings: production never serves plain HTTP unless TLS is terminated in front. */
const refusal = (env: Record<string, string>) => {
  try {
    loadControlRoomConfig(env);
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  }
  return undefined;
};

test('production refuses plain HTTP, naming what to set', () => {
  const failure = refusal({ ORDERLY_ENV: 'production' });
  expect(failure?.code).toBe('ORDERLY_E_CONFIG_INVALID');
  expect(failure?.message).toContain('ORDERLY_ENV');
  expect(failure?.message).toContain('ORDERLY_TLS_TERMINATED');
});

test('production on plain HTTP is allowed when TLS is terminated in front, or with a certificate', () => {
  expect(loadControlRoomConfig({ ORDERLY_ENV: 'production', ORDERLY_TLS_TERMINATED: 'true' })).toMatchObject({
    production: true,
    tls: undefined,
    tlsTerminated: true,
  });
  const withTls = loadControlRoomConfig({ ORDERLY_ENV: 'production', ORDERLY_TLS_CERT_FILE: 'server.crt', ORDERLY_TLS_KEY_FILE: 'server.key' });
  expect(withTls.tls).toMatchObject({
    certFile: expect.stringMatching(/server\.crt$/),
    keyFile: expect.stringMatching(/server\.key$/),
    clientCaFile: undefined,
  });
});

test('development allows plain HTTP (with a warning at start)', () => {
  expect(ControlRoomConfigSchema.parse({})).toMatchObject({ production: false, tls: undefined, tlsTerminated: false });
});

test.each([
  ['a certificate without its key', { ORDERLY_TLS_CERT_FILE: 'server.crt' }, 'ORDERLY_TLS_KEY_FILE'],
  ['a client CA without a server certificate', { ORDERLY_TLS_CLIENT_CA_FILE: 'ca.crt' }, 'ORDERLY_TLS_CLIENT_CA_FILE'],
  ['an unknown environment', { ORDERLY_ENV: 'staging' }, 'ORDERLY_ENV'],
  ['a terminated flag that is not a boolean', { ORDERLY_TLS_TERMINATED: 'yes' }, 'ORDERLY_TLS_TERMINATED'],
])('refuses %s', (_what, env, variable) => {
  const failure = refusal(env);
  expect(failure?.code).toBe('ORDERLY_E_CONFIG_INVALID');
  expect(failure?.message).toContain(variable);
});
