import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { KeyId } from '../ids';
import { generateSigningKeyPair, keyIdOf, loadPrivateKey, loadPublicKey, publicKeyPem, sha256Hex, signBytes, verifyBytes } from './keys';
import { codeOf } from '../testing/errors';

/** Re-encodes a PEM with other line lengths and CRLF line ends: same key, other text. */
function rewrap(pem: string, width: number): string {
  const lines = pem.trim().split('\n');
  const body = lines.slice(1, -1).join('');
  const chunks = body.match(new RegExp(`.{1,${width}}`, 'g')) ?? [];
  return [lines[0], ...chunks, lines[lines.length - 1]].join('\r\n') + '\r\n\r\n';
}

describe('Ed25519 keys', () => {
  const pair = generateSigningKeyPair();

  it('generates a key pair whose id matches both halves', () => {
    expect(KeyId.safeParse(pair.keyId).success).toBe(true);
    expect(keyIdOf(loadPrivateKey(pair.privateKeyPem))).toBe(pair.keyId);
    expect(keyIdOf(loadPublicKey(pair.publicKeyPem))).toBe(pair.keyId);
    expect(publicKeyPem(loadPrivateKey(pair.privateKeyPem))).toBe(pair.publicKeyPem);
  });

  it('gives different ids to different keys', () => {
    expect(generateSigningKeyPair().keyId).not.toBe(pair.keyId);
  });

  it('keeps the key id across PEM re-encoding', () => {
    const rewrapped = rewrap(pair.publicKeyPem, 20);
    expect(rewrapped).not.toBe(pair.publicKeyPem);
    expect(keyIdOf(loadPublicKey(rewrapped))).toBe(pair.keyId);
    expect(keyIdOf(loadPrivateKey(rewrap(pair.privateKeyPem, 32)))).toBe(pair.keyId);
    const fromDer = createPublicKey({ key: loadPublicKey(pair.publicKeyPem).export({ type: 'spki', format: 'der' }), format: 'der', type: 'spki' });
    expect(keyIdOf(fromDer)).toBe(pair.keyId);
  });

  it('is the sha256 of the SPKI DER', () => {
    const der = loadPublicKey(pair.publicKeyPem).export({ type: 'spki', format: 'der' });
    expect(pair.keyId).toBe(sha256Hex(der));
  });

  it('signs and verifies, and refuses other data, other keys and garbage signatures', () => {
    const data = Buffer.from('fake data to sign');
    const sig = signBytes(loadPrivateKey(pair.privateKeyPem), data);
    const pub = loadPublicKey(pair.publicKeyPem);
    expect(verifyBytes(pub, data, sig)).toBe(true);
    expect(verifyBytes(pub, Buffer.from('fake data to sigN'), sig)).toBe(false);
    expect(verifyBytes(loadPublicKey(generateSigningKeyPair().publicKeyPem), data, sig)).toBe(false);
    expect(verifyBytes(pub, data, Buffer.from('short'))).toBe(false);
    expect(verifyBytes(pub, data, Buffer.alloc(0))).toBe(false);
  });

  describe('loadPrivateKey', () => {
    it.each([
      ['an RSA key', () => generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
      ['an EC key', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
      ['an X25519 key', () => generateKeyPairSync('x25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
      ['a public key', () => pair.publicKeyPem],
      ['garbage inside PEM armour', () => '-----BEGIN ' + 'PRIVATE KEY-----\nZmFrZSBrZXk=\n-----END PRIVATE KEY-----\n'],
      ['plain garbage', () => 'not a key at all'],
      ['an empty string', () => ''],
    ])('refuses %s with ORDERLY_E_KEY_INVALID', (_what, pem) => {
      expect(codeOf(() => loadPrivateKey(pem()))).toBe('ORDERLY_E_KEY_INVALID');
    });
  });

  describe('loadPublicKey', () => {
    it.each([
      ['an EC key', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString()],
      ['an X25519 key', () => generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'pem' }).toString()],
      ['garbage inside PEM armour', () => '-----BEGIN PUBLIC KEY-----\nZmFrZSBrZXk=\n-----END PUBLIC KEY-----\n'],
      ['an empty string', () => ''],
    ])('refuses %s with ORDERLY_E_KEY_INVALID', (_what, pem) => {
      expect(codeOf(() => loadPublicKey(pem()))).toBe('ORDERLY_E_KEY_INVALID');
    });
  });
});

describe('sha256Hex', () => {
  it('matches the FIPS 180-2 test vector', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(Buffer.from('abc'))).toBe(sha256Hex('abc'));
  });
});
