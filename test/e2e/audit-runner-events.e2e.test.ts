import { Queue } from 'bullmq';
import { runQueueName } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { Stack, startStack } from '../harness';

/**
 * Runner events reach the audit log (issue 6): the claim, the credential lease and the result of a
 * real run with real Chromium and the dev Vault, and a forged job a runner refused. The events
 * carry ids and codes only: no input, and the idempotency key and token accessor as keyed hashes.
 */
let stack: Stack;
const MEMBER = { memberId: 'ZZT100200301', dateOfBirth: '1900-01-15' };

beforeAll(async () => {
  stack = await startStack({ runner: true });
  await stack.publish();
}, 60_000);
afterAll(() => stack?.close());

const events = async () =>
  (await stack.api('GET', '/v1/audit/events?limit=5000')).body.events as {
    action: string;
    actor: string;
    target: string;
    outcome: string;
    details: Record<string, unknown>;
  }[];

test('a run leaves claim, lease and result events, and a refused job leaves job.refused; none holds PHI or raw keys', async () => {
  const key = 'audit-run-ZZT100200301';
  const run = await stack.startRun({ bot: 'eligibility-check', input: { portalUrl: stack.portal.url, ...MEMBER }, idempotencyKey: key });
  expect((await stack.waitForRun(run.id)).status).toBe('succeeded');
  const forRun = await waitFor(async () => {
    const list = (await events()).filter((e) => e.target === run.id);
    return list.some((e) => e.action === 'run.result') ? list : undefined;
  });
  expect(forRun.map((e) => [e.action, e.outcome])).toEqual([
    ['run.claim', 'success'],
    ['credential.lease', 'success'],
    ['run.result', 'success'],
  ]);
  expect(forRun[0]!.actor).toBe('runner:demo');
  expect(forRun[1]!.details.accessor).toMatch(/^hmac:[0-9a-f]{32}$/);
  expect(forRun[2]!.details).toMatchObject({ attempt: 1, status: 'succeeded', applied: true });

  const queue = new Queue(runQueueName('demo' as never), { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
  try {
    await queue.add('run', { runId: 'anything', input: MEMBER }, { jobId: 'audit-forged-ZZT100200301' });
  } finally {
    await queue.close();
  }
  const refused = await waitFor(async () => (await events()).find((e) => e.action === 'job.refused'));
  expect(refused).toMatchObject({ outcome: 'failure', details: { code: 'ORDERLY_E_JOB_FORGED', signed: false } });
  expect(refused.details.jobId).toMatch(/^hmac:/);

  const text = JSON.stringify(await events());
  for (const secret of [MEMBER.memberId, MEMBER.dateOfBirth, key, 'audit-forged']) expect(text).not.toContain(secret);
  expect((await stack.api('GET', '/v1/audit/events', undefined, '')).status).toBe(401);
}, 90_000);
