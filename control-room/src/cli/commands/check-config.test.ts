import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkProductionConfig, parseEnvFile } from './check-config';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'orderly-check-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('refuses the demo configuration, naming each reason', () => {
  // What scripts/demo.sh gives the control room, with the bootstrap tokens its first start writes;
  // its runner here also has the sandbox off (the demo's does not: check-config.int.test.ts).
  const dataDir = join(dir, 'control-room');
  mkdirSync(join(dataDir, 'secrets'), { recursive: true });
  writeFileSync(join(dataDir, 'secrets', 'admin.token'), 'synthetic-not-a-token');
  writeFileSync(join(dataDir, 'secrets', 'runner-demo.token'), 'synthetic-not-a-token');
  const demo = {
    ORDERLY_DATA_DIR: dataDir,
    ORDERLY_PORT: '7300',
    REDIS_URL: 'redis://127.0.0.1:6379',
    VAULT_ADDR: 'http://127.0.0.1:8200',
    VAULT_TOKEN_FILE: join(dir, 'vault.token'),
  };
  const runner = { name: 'demo', env: { ORDERLY_SEGMENT: 'demo', ORDERLY_CONTROL_ROOM_URL: 'http://127.0.0.1:7300', ORDERLY_SANDBOX: 'none' } };
  const findings = checkProductionConfig(demo, [runner]);
  const checks = findings.map((f) => f.check);
  for (const reason of ['env', 'plain-http', 'bootstrap-tokens', 'redis-default-user', 'redis-plain', 'database-embedded', 'vault-plain', 'sandbox-off'])
    expect(checks).toContain(reason);
  expect(findings.find((f) => f.check === 'bootstrap-tokens')?.message).toContain('admin.token, runner-demo.token');
  expect(findings.filter((f) => f.check === 'redis-default-user').map((f) => f.message)).toEqual([
    expect.stringMatching(/^REDIS_URL connects as Redis's default user/),
    expect.stringMatching(/^runner demo: REDIS_URL connects as Redis's default user/),
  ]);
});

test('passes a production configuration like images/control-room.env.example', () => {
  const env = {
    ORDERLY_ENV: 'production',
    ORDERLY_DATA_DIR: join(dir, 'empty'),
    ORDERLY_TLS_CERT_FILE: '/run/secrets/tls-cert',
    ORDERLY_TLS_KEY_FILE: '/run/secrets/tls-key',
    DATABASE_URL: 'postgres://orderly:synthetic@postgres:5432/orderly?sslmode=verify-full&sslrootcert=/run/secrets/private-ca',
    REDIS_URL: 'rediss://orderly-control-room:synthetic@redis:6379',
    VAULT_ADDR: 'https://vault:8200',
  };
  const runner = {
    name: 'dev',
    env: {
      ORDERLY_ENV: 'production',
      ORDERLY_SANDBOX: 'bwrap',
      REDIS_URL: 'rediss://orderly-runner-dev:synthetic@redis:6379',
      ORDERLY_CONTROL_ROOM_URL: 'https://control-room:7300',
    },
  };
  expect(checkProductionConfig(env, [runner])).toEqual([]);
  // One unsafe thing is enough to refuse.
  expect(checkProductionConfig({ ...env, REDIS_URL: 'rediss://default:synthetic@redis:6379' }).map((f) => f.check)).toEqual(['redis-default-user']);
});

test('reads env files as the .env.example templates write them', () => {
  expect(parseEnvFile('# comment\nA=1\n\nB="two words"\n  C=x=y\n')).toEqual({ A: '1', B: 'two words', C: 'x=y' });
});
