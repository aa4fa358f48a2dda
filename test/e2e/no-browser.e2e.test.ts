import { join } from 'node:path';
import { REPO, Stack, startStack } from '../harness';

/** A bot that declares `browser: false` runs without a browser context; touching `ctx.page` says why it fails. */
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ runner: true, vault: false });
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'no-browser'));
});
afterAll(() => stack?.close());

test('an API-only bot runs, and its page is refused with a clear message', async () => {
  const ok = await stack.waitForRun((await stack.startRun({ bot: 'no-browser', input: {} })).id);
  expect(ok).toMatchObject({ status: 'succeeded', result: { ran: true } });

  const touched = await stack.waitForRun((await stack.startRun({ bot: 'no-browser', input: { touchPage: true } })).id);
  expect(touched.status).toBe('dead_lettered');
  expect(touched.error?.message).toContain('"browser": false');
}, 90_000);
