import { Stack, startStack } from '../../../test/harness';

/** The zero-setup default: embedded PGlite in the data directory, same migrations as PostgreSQL. */
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ database: 'pglite' });
}, 60_000);
afterAll(() => stack.close());

test('the control room runs on embedded PGlite: publish, create with an idempotency key, read back', async () => {
  expect((await stack.api('GET', '/readyz', undefined, '')).body).toEqual({ status: 'ready', database: 'ok', redis: 'ok' });
  const { digest } = await stack.publish();
  const input = { portalUrl: stack.portal.url, memberId: 'ZZT100200303', dateOfBirth: '1900-07-04' };
  const first = await stack.startRun({ bot: 'eligibility-check', input, idempotencyKey: 'pglite-1' });
  const again = await stack.startRun({ bot: 'eligibility-check', input, idempotencyKey: 'pglite-1' });
  expect(again.id).toBe(first.id);
  expect(first.digest).toBe(digest);
  expect((await stack.api('GET', `/v1/runs/${first.id}`)).body.status).toBe('waiting');
});
