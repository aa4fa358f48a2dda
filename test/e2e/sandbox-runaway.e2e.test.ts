import { join } from 'node:path';
import { REPO, Stack, startStack } from '../harness';

/**
 * Runaway and channel-breaking bots (issue 10) on a runner with small CPU and /tmp limits: each
 * ends with its own code, the runner keeps serving, and the next run on it succeeds. Limits are
 * met by what the bot does, not by wall-clock races: the bot's timeout (180 s) is far beyond
 * what 10 s of CPU time takes even on a loaded machine.
 */
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ runner: false });
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'hostile-runaway'));
  await stack.startRunner({ env: { ORDERLY_SANDBOX_CPU_SECONDS: '10', ORDERLY_SANDBOX_TMP_MB: '64', ORDERLY_SANDBOX_FILE_MB: '32' } });
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

async function run(mode: string) {
  const created = await stack.startRun({ bot: 'hostile-runaway', input: { mode } });
  return stack.waitForRun(created.id, undefined, 240_000);
}

test.each([
  ['cpu', 'ORDERLY_E_SANDBOX_LIMIT', { limit: 'cpu' }],
  ['tmp-fill', 'ORDERLY_E_SANDBOX_LIMIT', { limit: 'tmp-space' }],
  ['channel-garbage', 'ORDERLY_E_SANDBOX_CHANNEL', {}],
  ['channel-oversized', 'ORDERLY_E_SANDBOX_CHANNEL', {}],
])(
  'a bot in mode %s ends with %s, not retried; the runner survives and the next run succeeds',
  async (mode, code, details) => {
    const failed = await run(mode);
    expect({ status: failed.status, code: failed.error?.code, retryable: failed.error?.retryable }).toEqual({
      status: 'dead_lettered',
      code,
      retryable: false,
    });
    expect(failed.error?.details).toMatchObject(details);
    if (code === 'ORDERLY_E_SANDBOX_CHANNEL')
      expect(failed.error?.message).toMatch(/does not take \((a frame that is not JSON|a frame of .+ bytes is over the channel's)/);
    const next = await run('ok');
    expect({ status: next.status, result: next.result }).toEqual({ status: 'succeeded', result: { ok: true } });
  },
  300_000,
);
