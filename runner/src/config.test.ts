import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateBoxKeyPair, generateSigningKeyPair } from '@orderly/shared';
import { loadRunnerConfig, loadRunnerCredentials } from './config';

const dir = mkdtempSync(join(tmpdir(), 'runner-config-'));
const write = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const pub = write('control-room.pub', generateSigningKeyPair().publicKeyPem + generateBoxKeyPair().publicKeyPem);
const token = write('runner.token', 'orderly_0123456789abcdefghij');
const base = { ORDERLY_SEGMENT: 'demo', ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE: pub, ORDERLY_RUNNER_TOKEN_FILE: token };

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  }
  return undefined;
};

test('a runner without the control room public key refuses to start, naming the variable', () => {
  const { ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE: _omitted, ...rest } = base;
  const failure = codeOf(() => loadRunnerConfig({}, rest));
  expect(failure?.code).toBe('ORDERLY_E_CONFIG_INVALID');
  expect(failure?.message).toContain('ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE');
});

test('every invalid variable is listed at once', () => {
  const failure = codeOf(() => loadRunnerConfig({}, { ORDERLY_SEGMENT: 'Not A Segment', ORDERLY_CONCURRENCY: 'many' }));
  for (const variable of ['ORDERLY_SEGMENT', 'ORDERLY_CONCURRENCY', 'ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE', 'ORDERLY_RUNNER_TOKEN_FILE']) expect(failure?.message).toContain(variable);
});

test('command-line options override the environment', () => {
  expect(loadRunnerConfig({ ORDERLY_SEGMENT: 'other' }, base).segment).toBe('other');
});

test('the key file must hold both control room keys, and the token file must be readable', () => {
  const config = loadRunnerConfig({}, base);
  expect(loadRunnerCredentials(config).token).toBe('orderly_0123456789abcdefghij');
  const signingOnly = write('signing-only.pub', generateSigningKeyPair().publicKeyPem);
  expect(codeOf(() => loadRunnerCredentials(loadRunnerConfig({}, { ...base, ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE: signingOnly })))?.code).toBe('ORDERLY_E_KEY_INVALID');
  const missing = codeOf(() => loadRunnerCredentials(loadRunnerConfig({}, { ...base, ORDERLY_RUNNER_TOKEN_FILE: join(dir, 'absent') })));
  expect(missing?.code).toBe('ORDERLY_E_CONFIG_INVALID');
  const short = codeOf(() => loadRunnerCredentials(loadRunnerConfig({}, { ...base, ORDERLY_RUNNER_TOKEN_FILE: write('short.token', 'abc') })));
  expect(short?.code).toBe('ORDERLY_E_CONFIG_INVALID');
  expect(short?.message).not.toContain('abc');
});
