import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BotName,
  BotVersion,
  createArchive,
  digestOf,
  DsseEnvelope,
  generateBoxKeyPair,
  generateSigningKeyPair,
  IN_TOTO_PAYLOAD_TYPE,
  JobPayload,
  keyIdOf,
  loadPrivateKey,
  packageStatement,
  releasePublicKeyBlock,
  releaseStatement,
  signEnvelope,
  signRelease,
} from '@orderly/shared';
import { loadRunnerConfig, loadRunnerCredentials } from '../config';
import { ControlRoomClient, PackageResponse } from '../control-room-client';
import { PackageCache } from './cache';

/**
 * The cache keeps verified bytes, never the permission to run them: every run asks the control
 * room for the release state again, so a revocation or an expiry takes effect at the next run.
 */
const dir = mkdtempSync(join(tmpdir(), 'runner-cache-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const publisher = generateSigningKeyPair();
const release = generateKeyPairSync('ed25519');
const manifest = { name: 'cached-bot', version: '1.0.0', entry: 'bot.js', segments: ['live'], input: { type: 'object', properties: {} } };
const archive = createArchive([
  { path: 'bot.json', data: Buffer.from(JSON.stringify(manifest)) },
  { path: 'bot.js', data: Buffer.from('module.exports = {}') },
]);
const digest = digestOf(archive);
const envelope = signEnvelope(
  IN_TOTO_PAYLOAD_TYPE,
  Buffer.from(JSON.stringify(packageStatement('cached-bot' as BotName, '1.0.0' as BotVersion, digest.slice(7)))),
  loadPrivateKey(publisher.privateKeyPem),
);
const job = {
  v: 1,
  runId: '00000000-0000-4000-8000-000000000001',
  jobId: `job-${'1'.repeat(32)}`,
  segment: 'live',
  bot: { name: 'cached-bot', version: '1.0.0', digest },
  publisherKeyId: publisher.keyId,
  issuedAt: new Date().toISOString(),
  notAfter: new Date(Date.now() + 60_000).toISOString(),
} as unknown as JobPayload;

const attest = (expiresInMs: number): DsseEnvelope =>
  signRelease(
    releaseStatement(digest, {
      name: 'cached-bot' as BotName,
      version: '1.0.0' as BotVersion,
      channel: 'prod',
      approver: 'user:approver',
      approvedAt: new Date(Date.now() - 1000).toISOString(),
      expiresAt: new Date(Date.now() + expiresInMs).toISOString(),
    }),
    release.privateKey,
  );

/** A control room whose release state the test changes between runs. */
function fakeControlRoom(state: { publisherKeyRevokedAt: string | null; attestations: DsseEnvelope[] }) {
  const calls = { fetchPackage: 0, packageRelease: 0 };
  const client = {
    fetchPackage: async (): Promise<PackageResponse> => {
      calls.fetchPackage++;
      return {
        archive: archive.toString('base64'),
        envelope,
        publisherKeyId: publisher.keyId as never,
        publisherPublicKeyPem: publisher.publicKeyPem,
        ...state,
      };
    },
    packageRelease: async () => {
      calls.packageRelease++;
      return { publisherKeyId: publisher.keyId as never, ...state };
    },
  } as unknown as ControlRoomClient;
  return { client, calls };
}

test('a prod cache runs a released package, then refuses the cached one once its key is revoked, without fetching the bytes again', async () => {
  const state = { publisherKeyRevokedAt: null as string | null, attestations: [attest(60_000)] };
  const { client, calls } = fakeControlRoom(state);
  const cache = new PackageCache(join(dir, 'a'), client, { channel: 'prod', releaseKey: release.publicKey });
  expect((await cache.get(job)).manifest.name).toBe('cached-bot');
  expect((await cache.get(job)).manifest.name).toBe('cached-bot');
  state.publisherKeyRevokedAt = new Date().toISOString();
  await expect(cache.get(job)).rejects.toMatchObject({ code: 'ORDERLY_E_KEY_REVOKED', details: { runId: job.runId } });
  expect(calls).toEqual({ fetchPackage: 1, packageRelease: 2 });
});

test('a prod cache refuses a cached package whose release was replaced by an expired one', async () => {
  const state = { publisherKeyRevokedAt: null as string | null, attestations: [attest(60_000)] };
  const { client } = fakeControlRoom(state);
  const cache = new PackageCache(join(dir, 'b'), client, { channel: 'prod', releaseKey: release.publicKey });
  await cache.get(job);
  state.attestations = [attest(-1)];
  await expect(cache.get(job)).rejects.toMatchObject({ code: 'ORDERLY_E_RELEASE_EXPIRED' });
  state.attestations = [];
  await expect(cache.get(job)).rejects.toMatchObject({ code: 'ORDERLY_E_RELEASE_MISSING' });
});

test('a dev cache runs publisher-signed packages without a release, but not after revocation', async () => {
  const state = { publisherKeyRevokedAt: null as string | null, attestations: [] as DsseEnvelope[] };
  const { client } = fakeControlRoom(state);
  const cache = new PackageCache(join(dir, 'c'), client, { channel: 'dev', releaseKey: undefined });
  expect((await cache.get(job)).digest).toBe(digest);
  state.publisherKeyRevokedAt = new Date().toISOString();
  await expect(cache.get(job)).rejects.toMatchObject({ code: 'ORDERLY_E_KEY_REVOKED' });
});

test('a prod-channel runner refuses to start with a control-room.pub that has no release key; a dev one starts', () => {
  const signing = generateSigningKeyPair().publicKeyPem + generateBoxKeyPair().publicKeyPem;
  const oldPub = join(dir, 'old.pub');
  const newPub = join(dir, 'new.pub');
  writeFileSync(oldPub, signing);
  writeFileSync(newPub, signing + releasePublicKeyBlock(release.privateKey));
  const token = join(dir, 'runner.token');
  writeFileSync(token, 'orderly_0123456789abcdefghij');
  writeFileSync(join(dir, 'runner.key'), generateSigningKeyPair().privateKeyPem, { mode: 0o600 });
  const env = (pub: string, channel: string) => ({
    ORDERLY_SEGMENT: 'live',
    ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE: pub,
    ORDERLY_RUNNER_TOKEN_FILE: token,
    ORDERLY_RUNNER_CHANNEL: channel,
  });
  expect(() => loadRunnerCredentials(loadRunnerConfig({}, env(oldPub, 'prod')))).toThrow(expect.objectContaining({ code: 'ORDERLY_E_CONFIG_INVALID' }));
  expect(loadRunnerCredentials(loadRunnerConfig({}, env(oldPub, 'dev'))).releaseKey).toBeUndefined();
  expect(keyIdOf(loadRunnerCredentials(loadRunnerConfig({}, env(newPub, 'prod'))).releaseKey!)).toBe(keyIdOf(release.publicKey));
  expect(() => loadRunnerConfig({}, env(newPub, 'staging'))).toThrow(expect.objectContaining({ code: 'ORDERLY_E_CONFIG_INVALID' }));
});
