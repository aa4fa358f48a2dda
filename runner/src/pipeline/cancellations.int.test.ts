import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { cancelChannel, CANCEL_PAYLOAD_TYPE, createLogger, localSigner, RunId, SegmentName, signCancel, signEnvelope } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { RunCancellations } from './cancellations';

/**
 * Cancels over real Redis: only a message the control room signed, for a run of this runner's
 * segment, and not expired, aborts a bot. Anyone who can publish on Redis can send the others.
 */
const controlRoom = generateKeyPairSync('ed25519');
const attacker = generateKeyPairSync('ed25519');
const prefix = `test-cancel-${randomBytes(4).toString('hex')}`;
const demo = 'demo' as SegmentName;
let redis: Redis;
let publisher: Redis;
let cancellations: RunCancellations;
const lines: string[] = [];
const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString('utf8')), done()) });

beforeAll(async () => {
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  publisher = new Redis(TEST_REDIS_URL);
  cancellations = await RunCancellations.start({
    connection: redis,
    prefix,
    log: createLogger({ level: 'debug', name: 'runner' }, sink),
    controlRoomSigningKey: controlRoom.publicKey,
    segment: demo,
  });
});
afterAll(async () => {
  await cancellations?.close();
  publisher?.disconnect();
  redis?.disconnect();
});

const publish = (message: unknown, channel = cancelChannel(prefix, demo)) =>
  publisher.publish(channel, typeof message === 'string' ? message : JSON.stringify(message));
const ignoredCount = () => lines.filter((l) => l.includes('cancel message ignored')).length;

test('unsigned, forged, tampered, other-segment and expired cancels abort nothing; the signed one for this segment aborts its run', async () => {
  const victim = randomUUID() as RunId;
  const aborted: string[] = [];
  cancellations.attach(victim, () => aborted.push(victim));
  const genuine = await signCancel(localSigner(controlRoom.privateKey), victim, demo);
  const payload = (over: object) =>
    Buffer.from(
      JSON.stringify({
        v: 1,
        runId: victim,
        segment: 'demo',
        issuedAt: new Date().toISOString(),
        notAfter: new Date(Date.now() + 60_000).toISOString(),
        ...over,
      }),
    );
  const tamperedPayload = JSON.parse(Buffer.from(genuine.envelope.payload, 'base64').toString('utf8')) as { runId: string };
  tamperedPayload.runId = randomUUID();

  await publish({ v: 1, runId: victim }); // the old, unsigned format
  await publish('not json');
  await publish({ v: 1, envelope: signEnvelope(CANCEL_PAYLOAD_TYPE, payload({}), attacker.privateKey) });
  await publish({ v: 1, envelope: { ...genuine.envelope, payload: Buffer.from(JSON.stringify(tamperedPayload)).toString('base64') } });
  await publish(await signCancel(localSigner(controlRoom.privateKey), victim, 'other' as SegmentName));
  await publish(await signCancel(localSigner(controlRoom.privateKey), victim, demo, new Date(Date.now() - 10 * 60_000)));
  await publish({ v: 1, envelope: signEnvelope('application/vnd.orderly.job.v1+json', payload({}), controlRoom.privateKey) });
  await waitFor(async () => (ignoredCount() >= 7 ? true : undefined), 10_000, 'seven ignored cancels');
  expect(aborted).toEqual([]);
  expect(cancellations.wasCancelled(victim)).toBe(false);
  expect(lines.filter((l) => l.includes('cancel message ignored')).every((l) => l.includes('ORDERLY_E_CANCEL_REFUSED'))).toBe(true);

  await publish(genuine);
  await waitFor(async () => (aborted.length ? true : undefined), 10_000, 'the genuine cancel');
  expect(aborted).toEqual([victim]);
  expect(cancellations.wasCancelled(victim)).toBe(true);
});

test("a runner hears only its own segment's cancel channel: a genuine cancel on another segment's channel or on the old shared one aborts nothing", async () => {
  const victim = randomUUID() as RunId;
  const marker = randomUUID() as RunId;
  const aborted: string[] = [];
  cancellations.attach(victim, () => aborted.push(victim));
  cancellations.attach(marker, () => aborted.push(marker));
  const genuine = await signCancel(localSigner(controlRoom.privateKey), victim, demo);
  expect(cancelChannel(prefix, demo)).toBe(`${prefix}:orderly.cancel.demo`);
  await publish(genuine, cancelChannel(prefix, 'other' as SegmentName));
  await publish(genuine, `${prefix}:orderly.cancel`);
  // Published after the two above on the same connection, so delivered after them.
  await publish(await signCancel(localSigner(controlRoom.privateKey), marker, demo));
  await waitFor(async () => (aborted.includes(marker) ? true : undefined), 10_000, 'the marker cancel');
  expect(aborted).toEqual([marker]);
  expect(cancellations.wasCancelled(victim)).toBe(false);
});
