import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateBoxKeyPair, generateSigningKeyPair } from '@orderly/shared';
import { loadRunnerConfig, loadRunnerCredentials, RunnerConfigSchema } from './config';
import { startRunner } from './main';

const dir = mkdtempSync(join(tmpdir(), 'runner-config-'));
const write = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const pub = write('control-room.pub', generateSigningKeyPair().publicKeyPem + generateBoxKeyPair().publicKeyPem);
const token = write('runner.token', 'orderly_0123456789abcdefghij');
const signingKeyPem = generateSigningKeyPair().privateKeyPem;
writeFileSync(join(dir, 'runner.key'), signingKeyPem, { mode: 0o600 });
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
  for (const variable of ['ORDERLY_SEGMENT', 'ORDERLY_CONCURRENCY', 'ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE', 'ORDERLY_RUNNER_TOKEN_FILE'])
    expect(failure?.message).toContain(variable);
});

test('command-line options override the environment', () => {
  expect(loadRunnerConfig({ ORDERLY_SEGMENT: 'other' }, base).segment).toBe('other');
});

test('the key file must hold both control room keys, and the token file must be readable', () => {
  const config = loadRunnerConfig({}, base);
  expect(loadRunnerCredentials(config).token).toBe('orderly_0123456789abcdefghij');
  const signingOnly = write('signing-only.pub', generateSigningKeyPair().publicKeyPem);
  expect(codeOf(() => loadRunnerCredentials(loadRunnerConfig({}, { ...base, ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE: signingOnly })))?.code).toBe(
    'ORDERLY_E_KEY_INVALID',
  );
  const missing = codeOf(() => loadRunnerCredentials(loadRunnerConfig({}, { ...base, ORDERLY_RUNNER_TOKEN_FILE: join(dir, 'absent') })));
  expect(missing?.code).toBe('ORDERLY_E_CONFIG_INVALID');
  const short = codeOf(() => loadRunnerCredentials(loadRunnerConfig({}, { ...base, ORDERLY_RUNNER_TOKEN_FILE: write('short.token', 'abc') })));
  expect(short?.code).toBe('ORDERLY_E_CONFIG_INVALID');
  expect(short?.message).not.toContain('abc');
});

test('the signing key sits beside the token by default, and a key others can read, or a missing one, is refused', () => {
  const config = loadRunnerConfig({}, base);
  expect(config.signingKeyFile).toBe(join(dir, 'runner.key'));
  expect(loadRunnerCredentials(config).signingKey.asymmetricKeyType).toBe('ed25519');
  const loose = write('loose.key', signingKeyPem);
  chmodSync(loose, 0o644);
  const refused = codeOf(() => loadRunnerCredentials(loadRunnerConfig({}, { ...base, ORDERLY_RUNNER_SIGNING_KEY_FILE: loose })));
  expect(refused).toEqual({ code: 'ORDERLY_E_CONFIG_INVALID', message: expect.stringContaining('readable by others (mode 644)') });
  expect(refused?.message).not.toContain('PRIVATE KEY');
  const missing = codeOf(() => loadRunnerCredentials(loadRunnerConfig({}, { ...base, ORDERLY_RUNNER_SIGNING_KEY_FILE: join(dir, 'absent.key') })));
  expect(missing?.code).toBe('ORDERLY_E_CONFIG_INVALID');
  const notEd25519 = join(dir, 'box.key');
  writeFileSync(notEd25519, generateBoxKeyPair().privateKeyPem, { mode: 0o600 });
  expect(codeOf(() => loadRunnerCredentials(loadRunnerConfig({}, { ...base, ORDERLY_RUNNER_SIGNING_KEY_FILE: notEd25519 })))?.message).toContain(
    'not a PEM Ed25519 private key',
  );
});

test('ORDERLY_SANDBOX=none is refused for a production segment, the prod channel and production, and allowed for development', () => {
  for (const [extra, why] of [
    [{ ORDERLY_PROD_SEGMENTS: `other,${base.ORDERLY_SEGMENT}` }, `segment ${base.ORDERLY_SEGMENT} is a production segment`],
    [{ ORDERLY_RUNNER_CHANNEL: 'prod' }, 'prod channel'],
    [{ ORDERLY_ENV: 'production' }, 'ORDERLY_ENV=production'],
  ] as const) {
    const failure = codeOf(() => loadRunnerConfig({}, { ...base, ORDERLY_SANDBOX: 'none', ...extra }));
    expect(failure).toEqual({ code: 'ORDERLY_E_SANDBOX_REQUIRED', message: expect.stringContaining(why) });
    // The same environment with the sandbox on starts.
    expect(loadRunnerConfig({}, { ...base, ...extra }).sandbox.mode).toBe('bwrap');
  }
  // Another segment's being production does not concern this runner.
  expect(loadRunnerConfig({}, { ...base, ORDERLY_SANDBOX: 'none', ORDERLY_PROD_SEGMENTS: 'other' }).productionSegment).toBe(false);
  expect(loadRunnerConfig({}, { ...base, ORDERLY_SANDBOX: 'none' }).sandbox.mode).toBe('none');
  expect(loadRunnerConfig({}, base).sandbox.mode).toBe('bwrap');
  expect(codeOf(() => loadRunnerConfig({}, { ...base, ORDERLY_SANDBOX: 'chroot' }))?.code).toBe('ORDERLY_E_CONFIG_INVALID');
});

test('a runner of a production segment with ORDERLY_SANDBOX=none refuses to start, before it opens anything', async () => {
  // Built without the loader's check, as an embedding would: the start checks again.
  const config = RunnerConfigSchema.parse({ ...base, ORDERLY_SANDBOX: 'none', ORDERLY_PROD_SEGMENTS: 'demo', REDIS_URL: 'redis://127.0.0.1:1' });
  expect(config.productionSegment).toBe(true);
  const logged: string[] = [];
  const log = {
    info: (...a: unknown[]) => logged.push(JSON.stringify(a)),
    warn: () => undefined,
    error: () => undefined,
    debug: () => undefined,
    child: () => log,
  };
  await expect(startRunner(config, log as never)).rejects.toMatchObject({
    code: 'ORDERLY_E_SANDBOX_REQUIRED',
    message: expect.stringContaining('segment demo is a production segment (ORDERLY_PROD_SEGMENTS)'),
  });
  expect(logged).toEqual([]); // no sandbox, Redis or worker was started
});
