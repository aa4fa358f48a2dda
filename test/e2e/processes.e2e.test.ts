import { ChildProcess, spawn } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ELIGIBILITY_BOT, PORTAL_CREDENTIALS, REPO, runnerProcessEnv, setCredential, Stack, startStack } from '../harness';

/**
 * The binaries as a user runs them: `orderly` (CLI) and `orderly runner …`, which commander
 * hands to the runner package's own `orderly-runner` binary.
 */
let stack: Stack;
let env: Record<string, string>;

beforeAll(async () => {
  stack = await startStack();
  env = { ...runnerProcessEnv(stack, 'process-runner'), ORDERLY_URL: stack.controlRoom.url, ORDERLY_TOKEN: stack.adminToken };
}, 60_000);
afterAll(() => stack.close());

function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(join(BIN, 'orderly'), args, { env: { ...env, ...extraEnv }, cwd: stack.dataDir });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function startRunnerProcess(extraEnv: Record<string, string> = {}): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(join(BIN, 'orderly'), ['runner', 'start', '--segment', 'demo'], { env: { ...env, ...extraEnv }, cwd: stack.dataDir });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return { child, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))), stderr: () => stderr };
}

test('every command has --help', async () => {
  for (const args of [
    [],
    ['keys'],
    ['keys', 'generate'],
    ['keys', 'register'],
    ['bot'],
    ['bot', 'init'],
    ['bot', 'pack'],
    ['bot', 'publish'],
    ['run'],
    ['run', 'start'],
    ['run', 'show'],
    ['control-room', 'serve'],
  ]) {
    const res = await cli([...args, '--help']);
    expect({ args, code: res.code, usage: res.stdout.includes('Usage:') }).toEqual({ args, code: 0, usage: true });
  }
  const runnerHelp = await cli(['runner', 'start', '--help']);
  expect(runnerHelp.stdout).toContain('--segment');
});

test('a publisher key is written 0600 and never overwritten', async () => {
  const first = await cli(['keys', 'generate', '--out', 'publisher.key', '--json']);
  expect(first.code).toBe(0);
  expect(JSON.parse(first.stdout).keyId).toMatch(/^[0-9a-f]{64}$/);
  expect(statSync(join(stack.dataDir, 'publisher.key')).mode & 0o777).toBe(0o600);
  const again = await cli(['keys', 'generate', '--out', 'publisher.key']);
  expect(again.code).toBe(1);
  expect(again.stderr.trim().split('\n')).toHaveLength(1);
  expect(again.stderr).toMatch(/^orderly: ORDERLY_E_KEY_CONFLICT: /);
});

test('pack is deterministic, publish uploads, and a run started with --wait succeeds through a runner process', async () => {
  // Every key has a holder: without one the CLI refuses before sending anything.
  const unowned = await cli(['keys', 'register', '--name', 'cli-publisher', '--public-key', 'publisher.key.pub']);
  expect([unowned.code, unowned.stderr]).toEqual([1, expect.stringMatching(/^orderly: ORDERLY_E_KEY_HOLDER_REQUIRED: /)]);
  for (const args of [
    ['users', 'create', 'cli-dev', '--role', 'developer'],
    ['teams', 'create', 'cli-team'],
    ['teams', 'add', 'cli-team', '--user', 'cli-dev'],
    ['keys', 'register', '--name', 'cli-publisher', '--public-key', 'publisher.key.pub', '--owner-user', 'cli-dev'],
  ])
    expect({ args, code: (await cli(args)).code }).toEqual({ args, code: 0 });
  const packA = JSON.parse((await cli(['bot', 'pack', ELIGIBILITY_BOT, '--key', 'publisher.key', '--out', 'a', '--json'])).stdout);
  const packB = JSON.parse((await cli(['bot', 'pack', ELIGIBILITY_BOT, '--key', 'publisher.key', '--out', 'b', '--json'])).stdout);
  expect(packA.digest).toBe(packB.digest);
  const published = await cli(['bot', 'publish', 'a/eligibility-check-1.0.0.tgz', '--json']);
  expect(JSON.parse(published.stdout).digest).toBe(packA.digest);
  await setCredential(stack.vault!, 'eligibility-check', 'portal_user', PORTAL_CREDENTIALS.username);
  await setCredential(stack.vault!, 'eligibility-check', 'portal_password', PORTAL_CREDENTIALS.password);

  const runner = startRunnerProcess();
  try {
    const input = join(stack.dataDir, 'input.json');
    writeFileSync(input, JSON.stringify({ portalUrl: stack.portal.url, memberId: 'ZZT100200303', dateOfBirth: '1900-07-04' }));
    const run = await cli([
      'run',
      'start',
      'eligibility-check',
      '--input',
      input,
      '--wait',
      '--timeout',
      '60',
      '--json',
      '--idempotency-key',
      'cli-run-1',
      '--reason',
      'e2e test, synthetic member',
    ]);
    expect(run.code).toBe(0);
    const view = JSON.parse(run.stdout);
    expect(view).toMatchObject({ status: 'succeeded', result: { coverage: 'Active' }, idempotencyKey: 'cli-run-1' });
    // The result and the log are PHI reads: refused without a reason, shown with one.
    const noReason = await cli(['run', 'show', view.id, '--logs']);
    expect(noReason.stderr).toMatch(/^orderly: ORDERLY_E_REASON_REQUIRED: /);
    const shown = await cli(['run', 'show', view.id, '--logs', '--reason', 'e2e test, synthetic member']);
    expect(shown.stdout).toContain('status   succeeded');
    expect(shown.stdout).toContain('result   {"');
    expect(shown.stdout).toContain('eligibility checked');
  } finally {
    runner.child.kill('SIGTERM');
    expect(await runner.exited).toBe(0);
  }
});

test('SIGTERM lets the active run finish, then the runner exits 0', async () => {
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'slow'));
  const runner = startRunnerProcess();
  const run = await stack.startRun({ bot: 'slow', input: { ms: 2500 } });
  await stack.waitForRun(run.id, (r) => r.status === 'active', 30_000);
  await new Promise((r) => setTimeout(r, 300));
  runner.child.kill('SIGTERM');
  expect(await runner.exited).toBe(0);
  const ended = await stack.waitForRun(run.id);
  expect(ended).toMatchObject({ status: 'succeeded', result: { sleptMs: 2500 }, attempts: 1 });
}, 100_000);

test('a runner started without the control room public key exits non-zero with one line naming it', async () => {
  const runner = startRunnerProcess({ ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE: '' });
  expect(await runner.exited).toBe(1);
  const lines = runner.stderr().trim().split('\n');
  expect(lines[0]).toMatch(/^orderly-runner: ORDERLY_E_CONFIG_INVALID: invalid configuration/);
  expect(runner.stderr()).toContain('ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE');
});

test('CLI errors are one line with a stable code and a non-zero exit', async () => {
  const unknown = await cli(['run', 'start', 'no-such-bot']);
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toMatch(/^orderly: ORDERLY_E_BOT_UNKNOWN: [^\n]+\n$/);
  const down = await cli(['run', 'show', '00000000-0000-4000-8000-000000000000'], { ORDERLY_URL: 'http://127.0.0.1:9' });
  expect(down.stderr).toMatch(/^orderly: ORDERLY_E_CONTROL_ROOM_UNAVAILABLE: /);
  const forbidden = await cli(['run', 'show', '00000000-0000-4000-8000-000000000000'], { ORDERLY_TOKEN: 'orderly_wrong_token_0123456789' });
  expect(forbidden.stderr).toMatch(/^orderly: ORDERLY_E_UNAUTHENTICATED: /);
});
