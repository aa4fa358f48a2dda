// `orderly control-room check-config` as a user runs it (issue 17): the real CLI, given the
// environment scripts/demo.sh gives the control room and its runner, and the bootstrap tokens the
// control room's first start writes, refuses it for production and names each reason.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SegmentName } from '@orderly/shared';
import { loadOrCreateSecrets } from '../../keys/secrets';

const root = join(__dirname, '../../../..');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'orderly-check-config-cli-'));
  loadOrCreateSecrets(join(dir, 'control-room', 'secrets'), [SegmentName.parse('demo')]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function checkConfig(runnerEnv: string): { status: number | null; lines: string[] } {
  const runnerFile = join(dir, 'runner-demo.env');
  writeFileSync(runnerFile, runnerEnv);
  // scripts/demo.sh's exports for the control room (its own Redis's control-room user, the dev Vault), nothing else.
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    ORDERLY_DATA_DIR: join(dir, 'control-room'),
    ORDERLY_PORT: '7300',
    ORDERLY_URL: 'http://127.0.0.1:7300',
    REDIS_URL: 'redis://orderly-control-room:synthetic-demo-password@127.0.0.1:7302',
    ORDERLY_LOG_LEVEL: 'info',
    VAULT_ADDR: 'http://127.0.0.1:8200',
    VAULT_TOKEN_FILE: join(dir, 'vault.token'),
  };
  const r = spawnSync(process.execPath, [join(root, 'control-room/bin/orderly.js'), 'control-room', 'check-config', '--runner-env', runnerFile], {
    env,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: r.status, lines: r.stdout.trim().split('\n') };
}

const reasons = (lines: string[]) =>
  lines
    .map((l) => /^unsafe for production \[([a-z-]+)\]: (runner \S+: )?/.exec(l))
    .filter(Boolean)
    .map((m) => `${m?.[2] ? 'runner:' : ''}${m?.[1]}`);

test("refuses the demo's configuration for production, one line per reason, and exits 1", () => {
  // The demo runner's environment (scripts/demo.sh), with its segment's own Redis user.
  const { status, lines } = checkConfig(
    'ORDERLY_SEGMENT=demo\nORDERLY_CONTROL_ROOM_URL=http://127.0.0.1:7300\nORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE=secrets/control-room.pub\nORDERLY_RUNNER_TOKEN_FILE=secrets/runner-demo.token\nREDIS_URL=redis://orderly-runner-demo:synthetic-demo-password@127.0.0.1:7302\n',
  );
  expect(status).toBe(1);
  expect(reasons(lines).sort()).toEqual(
    [
      'env',
      'plain-http',
      'bootstrap-tokens',
      'redis-plain',
      'database-embedded',
      'vault-plain',
      'runner:env',
      'runner:redis-plain',
      'runner:plain-http',
    ].sort(),
  );
  expect(lines).toContainEqual(expect.stringContaining('(admin.token, runner-demo.token)'));
  expect(lines[lines.length - 1]).toBe('check-config: 9 problem(s); not fit for production');
});

test('names the sandbox being off for a runner with ORDERLY_SANDBOX=none', () => {
  const { status, lines } = checkConfig(
    'ORDERLY_ENV=production\nORDERLY_SANDBOX=none\nORDERLY_CONTROL_ROOM_URL=https://control-room:7300\nREDIS_URL=rediss://orderly-runner-demo:synthetic@redis:6379\n',
  );
  expect(status).toBe(1);
  expect(reasons(lines).filter((r) => r.startsWith('runner:'))).toEqual(['runner:sandbox-off']);
});
