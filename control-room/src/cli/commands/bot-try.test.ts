import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultTryOut, readTrySecrets } from './bot-try';

let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'orderly-try-secrets-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
}

test('a secrets file with exactly the declared credentials is read', async () => {
  const path = file('ok.json', JSON.stringify({ portal_user: 'svc-fake', portal_password: 'fake-password-0123456789' }));
  await expect(readTrySecrets(path, ['portal_user', 'portal_password'])).resolves.toEqual({
    portal_user: 'svc-fake',
    portal_password: 'fake-password-0123456789',
  });
});

test.each([
  ['not JSON', '{', 'is not a readable JSON file'],
  ['an array', '["a"]', 'must hold one JSON object'],
  ['a non-string value', '{"portal_user": 1, "portal_password": "x"}', 'must hold one JSON object'],
  ['a missing credential', '{"portal_user": "svc-fake"}', 'lacks portal_password'],
  ['an undeclared credential', '{"portal_user": "a", "portal_password": "b", "other": "c"}', 'names other, not declared'],
])('a secrets file with %s is refused with ORDERLY_E_TRY_SECRETS_INVALID, naming no value', async (_what, text, message) => {
  const err = await readTrySecrets(file('bad.json', text), ['portal_user', 'portal_password']).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ORDERLY_E_TRY_SECRETS_INVALID', message: expect.stringContaining(message) });
  expect((err as Error).message).not.toMatch(/svc-fake|"b"|"c"/);
});

test('a missing secrets file is refused; without one, a bot with no credentials needs none and one with credentials is prompted', async () => {
  await expect(readTrySecrets(join(dir, 'absent.json'), [])).rejects.toMatchObject({ code: 'ORDERLY_E_TRY_SECRETS_INVALID' });
  await expect(readTrySecrets(undefined, [])).resolves.toEqual({});
  const isTTY = process.stdin.isTTY;
  try {
    Object.defineProperty(process.stdin, 'isTTY', { value: true, configurable: true });
    const asked: string[] = [];
    const secrets = await readTrySecrets(undefined, ['api_key'], async (prompt) => (asked.push(prompt), 'typed-fake-key-0123456789'));
    expect({ secrets, asked }).toEqual({ secrets: { api_key: 'typed-fake-key-0123456789' }, asked: ['api_key (not echoed): '] });
    Object.defineProperty(process.stdin, 'isTTY', { value: false, configurable: true });
    await expect(readTrySecrets(undefined, ['api_key'], async () => 'never')).rejects.toMatchObject({ code: 'ORDERLY_E_TRY_SECRETS_INVALID' });
  } finally {
    Object.defineProperty(process.stdin, 'isTTY', { value: isTTY, configurable: true });
  }
});

test('the default out directory is .orderly-try/<timestamp>, a file name without colons', () => {
  expect(defaultTryOut(new Date('2026-12-03T14:15:22.123Z'))).toBe(join('.orderly-try', '2026-12-03T14-15-22-123Z'));
});
