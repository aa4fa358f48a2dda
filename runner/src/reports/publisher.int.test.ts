import { generateKeyPairSync } from 'node:crypto';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import { Report, reportSignedBy, reportsQueueName, SegmentName } from '@orderly/shared';
import { TEST_REDIS_URL, testRedisPrefix } from '@orderly/shared/testing';
import { ReportPublisher } from './publisher';

/**
 * The attempt's counts (redaction drops, sandbox denials) travel in clear on the signed final
 * report, only when not zero, and the report still parses and verifies as the control room reads it.
 */
const segment = SegmentName.parse('demo');
const prefix = testRedisPrefix();
let redis: Redis;
let queue: Queue;
let publisher: ReportPublisher;
const signing = generateKeyPairSync('ed25519');
const sealing = generateKeyPairSync('x25519');

beforeAll(() => {
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  publisher = new ReportPublisher(redis, prefix, sealing.publicKey, 'fake-runner', signing.privateKey, segment);
  queue = new Queue(reportsQueueName(segment), { connection: redis, prefix });
});
afterAll(async () => {
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  await publisher.close();
  redis.disconnect();
});

async function published(runId: string): Promise<Report> {
  const job = await queue.getJob(`${runId}.1.finished`);
  expect(job).toBeDefined();
  return Report.parse(job!.data);
}

test('non-zero counts are on the report, covered by its signature; zero counts are left out', async () => {
  const counted = randomUUID();
  await publisher.finished(counted, 1, { ok: true, result: 1 }, true, 10, [], 'fence-1', { redactionDrops: 2, sandboxDenials: 0 });
  const report = await published(counted);
  expect(report).toMatchObject({ kind: 'finished', redactionDrops: 2 });
  expect(report).not.toHaveProperty('sandboxDenials');
  expect(reportSignedBy(report, signing.publicKey)).toBe(true);
  // Changed in transit (Redis is not trusted): the signature no longer holds.
  expect(reportSignedBy({ ...report, redactionDrops: 0 } as Report, signing.publicKey)).toBe(false);

  const quiet = randomUUID();
  await publisher.finished(
    quiet,
    1,
    { ok: false, error: { code: 'ORDERLY_E_BOT_FAILED', message: 'x', retryable: true, details: {} } },
    false,
    10,
    [],
    'fence-2',
    {
      redactionDrops: 0,
      sandboxDenials: 0,
    },
  );
  const plain = await published(quiet);
  expect(plain).not.toHaveProperty('redactionDrops');
  expect(plain).not.toHaveProperty('sandboxDenials');
  expect(reportSignedBy(plain, signing.publicKey)).toBe(true);
});
