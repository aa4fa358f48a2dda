import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { login, logout } from '../../control-room/src/cli/commands/login';
import { loadCliConfig, loginTokenPath } from '../../control-room/src/cli/config';
import { createUser, Stack, startStack } from '../harness';

/**
 * `orderly login` / `orderly logout` against a control room on embedded PGlite: the token lands in
 * the user's config directory with mode 0600, is found by later commands, and logout revokes it.
 */
let stack: Stack;
let home: string;
beforeAll(async () => {
  stack = await startStack({ database: 'pglite', vault: false });
  home = mkdtempSync(join(tmpdir(), 'orderly-cli-home-'));
}, 120_000);
afterAll(async () => {
  await stack?.close();
  rmSync(home, { recursive: true, force: true });
});

test('login writes a 0600 token file that later commands use; logout revokes it and deletes the file', async () => {
  const user = await createUser(stack, 'cli-user', ['developer', 'operator']);
  const env = { XDG_CONFIG_HOME: join(home, 'config'), ORDERLY_DATA_DIR: join(home, 'no-control-room') };
  const path = loginTokenPath(env);
  expect(path).toBe(join(home, 'config', 'orderly', 'token'));
  // A file left with wider permissions is tightened.
  mkdirSync(join(home, 'config', 'orderly'), { recursive: true });
  writeFileSync(path, 'stale\n', { mode: 0o644 });

  const config = { url: stack.controlRoom.url, token: undefined };
  const wrong = await login(
    config,
    { username: user.username, password: 'not the password', code: await user.nextCode(), name: 'cli', expiresInDays: 7 },
    path,
  ).catch((e: unknown) => e);
  expect(wrong).toMatchObject({ code: 'ORDERLY_E_SIGN_IN_FAILED' });
  expect(readFileSync(path, 'utf8')).toBe('stale\n');

  const saved = await login(config, { username: user.username, password: user.password, code: await user.nextCode(), name: 'cli', expiresInDays: 7 }, path);
  expect(saved.scopes.sort()).toEqual(['developer', 'operator']);
  expect(statSync(path).mode & 0o777).toBe(0o600);
  expect(statSync(join(home, 'config', 'orderly')).mode & 0o077).toBe(0);
  const token = readFileSync(path, 'utf8').trim();
  expect(token).toMatch(/^orderly_at_/);

  // Resolution order: --token, ORDERLY_TOKEN, ORDERLY_TOKEN_FILE, then the login file.
  expect(loadCliConfig({}, env).token).toBe(token);
  expect(loadCliConfig({}, { ...env, ORDERLY_TOKEN: 'from-env-0123456789' }).token).toBe('from-env-0123456789');
  expect(loadCliConfig({ token: 'from-flag-0123456789' }, { ...env, ORDERLY_TOKEN: 'from-env-0123456789' }).token).toBe('from-flag-0123456789');
  expect(loadCliConfig({}, { ...env, ORDERLY_TOKEN_FILE: join(home, 'missing') }).token).toBeUndefined();

  const me = await stack.api('GET', '/v1/me', undefined, token);
  expect(me.body).toMatchObject({ actor: 'user:cli-user', kind: 'user' });

  await expect(logout({ url: stack.controlRoom.url, token }, path)).resolves.toEqual({ revoked: true });
  expect(() => statSync(path)).toThrow();
  expect((await stack.api('GET', '/v1/me', undefined, token)).status).toBe(401);
  // The token `createUser` got is a different one and still works.
  expect((await stack.api('GET', '/v1/me', undefined, user.token)).status).toBe(200);
}, 120_000);
