import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { keyIdOf } from '../crypto/keys';
import { SegmentName } from '../ids';
import { signEnvelope } from '../signing/dsse';
import { JOB_PAYLOAD_TYPE, JobPayload, signJob, verifyJob } from './envelope';
import { refusal } from '../testing/errors';

const controlRoom = generateKeyPairSync('ed25519');
const intruder = generateKeyPairSync('ed25519');
const publisher = generateKeyPairSync('ed25519');
const demo = 'demo' as SegmentName;

const issuedAt = new Date('2030-01-01T10:00:00.000Z');
const notAfter = new Date('2030-01-01T11:00:00.000Z');
const during = new Date('2030-01-01T10:30:00.000Z');

function payload(overrides: Partial<Record<keyof JobPayload, unknown>> = {}): JobPayload {
  return JobPayload.parse({
    v: 1,
    runId: randomUUID(),
    jobId: `job-${'1'.repeat(32)}`,
    segment: 'demo',
    bot: { name: 'fake-bot', version: '1.0.0', digest: `sha256:${'ab'.repeat(32)}` },
    publisherKeyId: keyIdOf(publisher.publicKey),
    issuedAt: issuedAt.toISOString(),
    notAfter: notAfter.toISOString(),
    ...overrides,
  });
}

describe('signJob / verifyJob', () => {
  it('round-trips, also through JSON as the job travels through Redis', () => {
    const job = payload();
    const data = JSON.parse(JSON.stringify(signJob(job, controlRoom.privateKey))) as unknown;
    expect(verifyJob(data, controlRoom.publicKey, demo, during)).toEqual(job);
  });

  it.each([
    ['null', null],
    ['a string', 'run me'],
    ['an empty object', {}],
    ['the bare payload, pushed straight into Redis', payload()],
    ['an envelope with no signatures', { envelope: { payloadType: JOB_PAYLOAD_TYPE, payload: Buffer.from('{}').toString('base64'), signatures: [] } }],
  ])('refuses %s as forged', (_what, data) => {
    expect(refusal(() => verifyJob(data, controlRoom.publicKey, demo, during)).code).toBe('ORDERLY_E_JOB_FORGED');
  });

  it('refuses job data with an extra field next to the envelope', () => {
    const data = { ...signJob(payload(), controlRoom.privateKey), input: { memberId: 'FAKE-000' } };
    expect(refusal(() => verifyJob(data, controlRoom.publicKey, demo, during)).code).toBe('ORDERLY_E_JOB_FORGED');
  });

  it('refuses an envelope signed by another key', () => {
    const data = signJob(payload(), intruder.privateKey);
    expect(refusal(() => verifyJob(data, controlRoom.publicKey, demo, during)).code).toBe('ORDERLY_E_JOB_FORGED');
  });

  it('refuses a payload swapped after signing', () => {
    const data = signJob(payload(), controlRoom.privateKey);
    const swapped = { envelope: { ...data.envelope, payload: Buffer.from(JSON.stringify(payload({ jobId: `job-${'2'.repeat(32)}` }))).toString('base64') } };
    expect(refusal(() => verifyJob(swapped, controlRoom.publicKey, demo, during)).code).toBe('ORDERLY_E_JOB_FORGED');
  });

  it('refuses a control-room signature under another payload type', () => {
    const envelope = signEnvelope('application/vnd.in-toto+json', Buffer.from(JSON.stringify(payload())), controlRoom.privateKey);
    expect(refusal(() => verifyJob({ envelope }, controlRoom.publicKey, demo, during)).code).toBe('ORDERLY_E_JOB_FORGED');
  });

  it('refuses a signed payload with an extra field', () => {
    const withExtra = { ...payload(), input: { memberId: 'FAKE-000' } };
    const envelope = signEnvelope(JOB_PAYLOAD_TYPE, Buffer.from(JSON.stringify(withExtra)), controlRoom.privateKey);
    expect(refusal(() => verifyJob({ envelope }, controlRoom.publicKey, demo, during)).code).toBe('ORDERLY_E_JOB_FORGED');
  });

  it('refuses a signed payload of another version', () => {
    const envelope = signEnvelope(JOB_PAYLOAD_TYPE, Buffer.from(JSON.stringify({ ...payload(), v: 2 })), controlRoom.privateKey);
    expect(refusal(() => verifyJob({ envelope }, controlRoom.publicKey, demo, during)).code).toBe('ORDERLY_E_JOB_FORGED');
  });

  it('refuses a job for another segment and names the run', () => {
    const job = payload({ segment: 'billing' });
    const err = refusal(() => verifyJob(signJob(job, controlRoom.privateKey), controlRoom.publicKey, demo, during));
    expect(err.code).toBe('ORDERLY_E_JOB_WRONG_SEGMENT');
    expect(err.details.runId).toBe(job.runId);
  });

  it('refuses an expired job at and after notAfter, and accepts it just before', () => {
    const job = payload();
    const data = signJob(job, controlRoom.privateKey);
    expect(verifyJob(data, controlRoom.publicKey, demo, new Date(notAfter.getTime() - 1)).runId).toBe(job.runId);
    const atExpiry = refusal(() => verifyJob(data, controlRoom.publicKey, demo, notAfter));
    expect(atExpiry.code).toBe('ORDERLY_E_JOB_EXPIRED');
    expect(atExpiry.details.runId).toBe(job.runId);
    expect(refusal(() => verifyJob(data, controlRoom.publicKey, demo, new Date('2031-01-01T00:00:00Z'))).code).toBe('ORDERLY_E_JOB_EXPIRED');
  });
});
