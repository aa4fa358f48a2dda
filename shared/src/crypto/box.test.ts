import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { OrderlyError } from '../errors';
import { generateBoxKeyPair, loadBoxPrivateKey, openSealed, PublicSealedBox, sealTo } from './box';
import { refusal } from '../testing/errors';

const FAKE_REPORT = 'FAKEPHI report body: member ZZ000000';
const plaintext = Buffer.from(FAKE_REPORT);
const aad = 'report:00000000-0000-4000-8000-000000000001:1';

function expectSafeRefusal(err: OrderlyError, code = 'ORDERLY_E_SIGNATURE_INVALID'): void {
  expect(err.code).toBe(code);
  expect([err.message, JSON.stringify(err.toJSON())].join('\n')).not.toContain('FAKEPHI');
}

describe('sealTo / openSealed', () => {
  const recipientPems = generateBoxKeyPair();
  const recipient = loadBoxPrivateKey(recipientPems.privateKeyPem);
  const recipientPublic = createPublicKey(recipientPems.publicKeyPem);
  const stranger = loadBoxPrivateKey(generateBoxKeyPair().privateKeyPem);

  it('round-trips, also through JSON and the schema', () => {
    const sealed = PublicSealedBox.parse(JSON.parse(JSON.stringify(sealTo(recipientPublic, plaintext, aad))));
    expect(JSON.stringify(sealed)).not.toContain('FAKEPHI');
    expect(openSealed(recipient, sealed, aad).equals(plaintext)).toBe(true);
  });

  it('uses a fresh ephemeral key per box', () => {
    expect(sealTo(recipientPublic, plaintext, aad).epk).not.toBe(sealTo(recipientPublic, plaintext, aad).epk);
  });

  it('refuses to open with another recipient key', () => {
    const sealed = sealTo(recipientPublic, plaintext, aad);
    expectSafeRefusal(refusal(() => openSealed(stranger, sealed, aad)));
  });

  it('refuses another AAD', () => {
    const sealed = sealTo(recipientPublic, plaintext, aad);
    expectSafeRefusal(refusal(() => openSealed(recipient, sealed, 'report:other:1')));
  });

  it('refuses a box whose ephemeral key was swapped for another X25519 key', () => {
    const sealed = sealTo(recipientPublic, plaintext, aad);
    const swapped = { ...sealed, epk: sealTo(recipientPublic, plaintext, aad).epk };
    expectSafeRefusal(refusal(() => openSealed(recipient, swapped, aad)));
  });

  it('refuses a malformed ephemeral key', () => {
    const sealed = sealTo(recipientPublic, plaintext, aad);
    expectSafeRefusal(refusal(() => openSealed(recipient, { ...sealed, epk: Buffer.from('not a key').toString('base64') }, aad)));
  });

  it('refuses an ephemeral key of another type with a coded error', () => {
    const sealed = sealTo(recipientPublic, plaintext, aad);
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    expectSafeRefusal(refusal(() => openSealed(recipient, { ...sealed, epk: ed }, aad)));
  });

  it('refuses to seal to a key that is not X25519', () => {
    expect(refusal(() => sealTo(generateKeyPairSync('ed25519').publicKey, plaintext, aad)).code).toBe('ORDERLY_E_KEY_INVALID');
  });
});

describe('loadBoxPrivateKey', () => {
  it('loads an X25519 private key', () => {
    const pems = generateBoxKeyPair();
    const key = loadBoxPrivateKey(pems.privateKeyPem);
    expect(key.asymmetricKeyType).toBe('x25519');
    expect(createPublicKey(key).export({ type: 'spki', format: 'pem' })).toBe(pems.publicKeyPem);
  });

  it.each([
    ['an Ed25519 key', () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
    ['an EC key', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
    ['a public key', () => generateBoxKeyPair().publicKeyPem],
    ['garbage', () => '-----BEGIN ' + 'PRIVATE KEY-----\nZmFrZQ==\n-----END PRIVATE KEY-----\n'],
    ['an empty string', () => ''],
  ])('refuses %s', (_what, pem) => {
    expect(refusal(() => loadBoxPrivateKey(pem())).code).toBe('ORDERLY_E_KEY_INVALID');
  });

  it('is not fooled by createPrivateKey accepting the PEM', () => {
    // Sanity check of the fixture above: the Ed25519 PEM is a valid private key, just the wrong type.
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(createPrivateKey(pem).asymmetricKeyType).toBe('ed25519');
    expect(refusal(() => loadBoxPrivateKey(pem)).code).toBe('ORDERLY_E_KEY_INVALID');
  });
});
