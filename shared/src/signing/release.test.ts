import { generateKeyPairSync } from 'node:crypto';
import { generateBoxKeyPair } from '../crypto/box';
import { parseControlRoomPublicKeys } from '../crypto/pem';
import { keyIdOf } from '../crypto/keys';
import { BotName, BotVersion, PackageDigest } from '../ids';
import { codeOf } from '../testing/errors';
import { DsseEnvelope, signEnvelope, IN_TOTO_PAYLOAD_TYPE } from './dsse';
import { checkRelease, parseReleasePublicKey, ReleaseChannel, releasePublicKeyBlock, releaseStatement, signRelease } from './release';

const release = generateKeyPairSync('ed25519');
const attacker = generateKeyPairSync('ed25519');
const digest = `sha256:${'ab'.repeat(32)}` as PackageDigest;
const otherDigest = `sha256:${'cd'.repeat(32)}` as PackageDigest;
const NOW = new Date('2030-01-01T00:00:00.000Z');
const DAY = 24 * 3600 * 1000;

function attest(options: { digest?: PackageDigest; channel?: ReleaseChannel; expiresAt?: Date; key?: typeof release.privateKey } = {}): DsseEnvelope {
  const statement = releaseStatement(options.digest ?? digest, {
    name: 'eligibility-check' as BotName,
    version: '1.0.0' as BotVersion,
    channel: options.channel ?? 'prod',
    approver: 'user:approver',
    approvedAt: new Date(NOW.getTime() - DAY).toISOString(),
    expiresAt: (options.expiresAt ?? new Date(NOW.getTime() + DAY)).toISOString(),
  });
  return signRelease(statement, options.key ?? release.privateKey);
}

const check = (attestations: DsseEnvelope[]) => checkRelease(attestations, release.publicKey, digest, 'prod', NOW);

describe('checkRelease', () => {
  it('passes a valid, unexpired release of this digest to prod and returns its statement', () => {
    expect(check([attest()]).predicate).toMatchObject({ channel: 'prod', approver: 'user:approver' });
  });

  it.each([
    ['no attestation at all', [], 'ORDERLY_E_RELEASE_MISSING'],
    ['only a release to dev', [attest({ channel: 'dev' })], 'ORDERLY_E_RELEASE_MISSING'],
    ['a release of another digest', [attest({ digest: otherDigest })], 'ORDERLY_E_RELEASE_INVALID'],
    ['a release signed by another key', [attest({ key: attacker.privateKey })], 'ORDERLY_E_RELEASE_INVALID'],
    ['an expired release', [attest({ expiresAt: new Date(NOW.getTime() - 1) })], 'ORDERLY_E_RELEASE_EXPIRED'],
    [
      'an expired one beside a forged one',
      [attest({ expiresAt: new Date(NOW.getTime() - 1) }), attest({ key: attacker.privateKey })],
      'ORDERLY_E_RELEASE_EXPIRED',
    ],
  ])('refuses %s', (_what, attestations, code) => {
    expect(codeOf(() => check(attestations as DsseEnvelope[]))).toBe(code);
  });

  it('refuses a tampered statement (a later expiry) even though the signature is real', () => {
    const genuine = attest({ expiresAt: new Date(NOW.getTime() - 1) });
    const statement = JSON.parse(Buffer.from(genuine.payload, 'base64').toString('utf8'));
    statement.predicate.expiresAt = new Date(NOW.getTime() + 365 * DAY).toISOString();
    const tampered = { ...genuine, payload: Buffer.from(JSON.stringify(statement)).toString('base64') };
    expect(codeOf(() => check([tampered]))).toBe('ORDERLY_E_RELEASE_INVALID');
  });

  it('refuses a package statement (publisher-signed payload) relabelled as a release', () => {
    const other = signEnvelope(
      IN_TOTO_PAYLOAD_TYPE,
      Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [], predicateType: 'x', predicate: {} })),
      release.privateKey,
    );
    expect(codeOf(() => check([other]))).toBe('ORDERLY_E_RELEASE_INVALID');
  });

  it('passes when one good release is among bad ones', () => {
    expect(check([attest({ key: attacker.privateKey }), attest({ expiresAt: new Date(NOW.getTime() - 1) }), attest()]).predicate.channel).toBe('prod');
  });
});

describe('the release key in control-room.pub', () => {
  const signing = generateKeyPairSync('ed25519');
  const pem = (k: typeof signing.publicKey) => k.export({ type: 'spki', format: 'pem' }).toString();
  const oldFile = pem(signing.publicKey) + generateBoxKeyPair().publicKeyPem;
  const newFile = oldFile + releasePublicKeyBlock(release.privateKey);

  it('is found under its own label, and the job-signing key is still the signing key', () => {
    expect(keyIdOf(parseReleasePublicKey(newFile)!)).toBe(keyIdOf(release.publicKey));
    expect(keyIdOf(parseControlRoomPublicKeys(newFile).signing)).toBe(keyIdOf(signing.publicKey));
  });

  it('is absent (undefined) in a file written before it existed, which still parses', () => {
    expect(parseReleasePublicKey(oldFile)).toBeUndefined();
    expect(keyIdOf(parseControlRoomPublicKeys(oldFile).signing)).toBe(keyIdOf(signing.publicKey));
  });

  it('refuses a damaged release block with a key error', () => {
    const damaged = newFile.replace(/(ORDERLY RELEASE PUBLIC KEY-----\n)[A-Za-z0-9+/]{8}/, '$1AAAAAAAA');
    expect(codeOf(() => parseReleasePublicKey(damaged))).toBe('ORDERLY_E_KEY_INVALID');
  });
});
