import { createHash, generateKeyPairSync, KeyObject } from 'node:crypto';
import { BotName, BotVersion } from '../ids';
import { DsseEnvelope, IN_TOTO_PAYLOAD_TYPE, signEnvelope } from '../signing/dsse';
import { packageStatement } from '../signing/statement';
import { digestOf, openPackage, verifyPackageEnvelope } from './bot-package';
import { createArchive, PackageFile } from './tar';
import { codeOf } from '../testing/errors';

const manifestJson = {
  name: 'fake-bot',
  version: '0.1.0',
  entry: 'src/index.js',
  segments: ['demo'],
  input: { type: 'object', properties: { memberId: { type: 'string' } } },
};

function pkg(overrides: { manifest?: unknown; files?: PackageFile[] } = {}): Buffer {
  const manifest = overrides.manifest === undefined ? manifestJson : overrides.manifest;
  const files = overrides.files ?? [{ path: 'src/index.js', data: Buffer.from('module.exports = async () => ({ ok: true });\n') }];
  return createArchive([{ path: 'bot.json', data: Buffer.from(JSON.stringify(manifest)) }, ...files]);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function envelopeFor(archive: Buffer, key: KeyObject, name = 'fake-bot', version = '0.1.0'): DsseEnvelope {
  const statement = packageStatement(name as BotName, version as BotVersion, sha256(archive));
  return signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), key);
}

describe('openPackage', () => {
  it('opens a package with bot.json and its entry file', () => {
    const archive = pkg();
    const opened = openPackage(archive);
    expect(opened.digest).toBe(`sha256:${sha256(archive)}`);
    expect(opened.digest).toBe(digestOf(archive));
    expect(opened.manifest.name).toBe('fake-bot');
    expect(opened.files.map((f) => f.path).sort()).toEqual(['bot.json', 'src/index.js']);
  });

  it('refuses a package without bot.json', () => {
    const archive = createArchive([{ path: 'src/index.js', data: Buffer.from('x') }]);
    expect(codeOf(() => openPackage(archive))).toBe('ORDERLY_E_MANIFEST_INVALID');
  });

  it('refuses a bot.json that is not at the root', () => {
    const archive = createArchive([
      { path: 'nested/bot.json', data: Buffer.from(JSON.stringify(manifestJson)) },
      { path: 'src/index.js', data: Buffer.from('x') },
    ]);
    expect(codeOf(() => openPackage(archive))).toBe('ORDERLY_E_MANIFEST_INVALID');
  });

  it('refuses a package without its entry file', () => {
    expect(codeOf(() => openPackage(pkg({ files: [{ path: 'src/other.js', data: Buffer.from('x') }] })))).toBe('ORDERLY_E_MANIFEST_INVALID');
  });

  it('refuses an invalid bot.json', () => {
    expect(codeOf(() => openPackage(pkg({ manifest: { ...manifestJson, version: 'next' } })))).toBe('ORDERLY_E_MANIFEST_INVALID');
  });

  it('passes archive errors through with their codes', () => {
    expect(codeOf(() => openPackage(Buffer.from('not a package')))).toBe('ORDERLY_E_PACKAGE_INVALID');
    expect(codeOf(() => openPackage(pkg(), { maxArchiveBytes: 10, maxUnpackedBytes: 1e6, maxEntries: 10 }))).toBe('ORDERLY_E_PACKAGE_TOO_LARGE');
  });
});

describe('verifyPackageEnvelope', () => {
  const publisher = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');
  const archive = pkg();
  const opened = openPackage(archive);

  it('accepts the publisher key and a statement over these bytes', () => {
    const statement = verifyPackageEnvelope(envelopeFor(archive, publisher.privateKey), publisher.publicKey, opened.digest, opened.manifest);
    expect(statement.subject[0]!.digest.sha256).toBe(sha256(archive));
    expect(statement.predicate).toEqual({ name: 'fake-bot', version: '0.1.0' });
  });

  it('refuses an envelope signed by another key', () => {
    const envelope = envelopeFor(archive, other.privateKey);
    expect(codeOf(() => verifyPackageEnvelope(envelope, publisher.publicKey, opened.digest, opened.manifest))).toBe('ORDERLY_E_SIGNATURE_INVALID');
  });

  it('refuses a valid statement for other bytes', () => {
    const otherArchive = pkg({ files: [{ path: 'src/index.js', data: Buffer.from('module.exports = async () => ({ ok: false });\n') }] });
    const envelope = envelopeFor(otherArchive, publisher.privateKey);
    expect(codeOf(() => verifyPackageEnvelope(envelope, publisher.publicKey, opened.digest, opened.manifest))).toBe('ORDERLY_E_PACKAGE_DIGEST_MISMATCH');
  });

  it.each([
    ['another name', 'other-bot', '0.1.0'],
    ['another version', 'fake-bot', '0.1.1'],
  ])('refuses a statement with %s than bot.json', (_what, name, version) => {
    const envelope = envelopeFor(archive, publisher.privateKey, name, version);
    expect(codeOf(() => verifyPackageEnvelope(envelope, publisher.publicKey, opened.digest, opened.manifest))).toBe('ORDERLY_E_SIGNATURE_INVALID');
  });

  it('refuses a signed payload that is not a package statement', () => {
    const envelope = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify({ hello: 'world' })), publisher.privateKey);
    expect(codeOf(() => verifyPackageEnvelope(envelope, publisher.publicKey, opened.digest, opened.manifest))).toBe('ORDERLY_E_SIGNATURE_INVALID');
  });

  it('refuses a statement signed under another payload type', () => {
    const statement = packageStatement('fake-bot' as BotName, '0.1.0' as BotVersion, sha256(archive));
    const envelope = signEnvelope('application/json', Buffer.from(JSON.stringify(statement)), publisher.privateKey);
    expect(codeOf(() => verifyPackageEnvelope(envelope, publisher.publicKey, opened.digest, opened.manifest))).toBe('ORDERLY_E_SIGNATURE_INVALID');
  });
});
