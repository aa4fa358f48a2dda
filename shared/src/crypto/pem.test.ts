import { generateKeyPairSync } from 'node:crypto';
import { keyIdOf } from './keys';
import { parseControlRoomPublicKeys } from './pem';
import { codeOf } from '../testing/errors';

const spki = (type: 'ed25519' | 'x25519') => {
  const pair = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('x25519');
  return { pair, pem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
};

describe('parseControlRoomPublicKeys', () => {
  const signing = spki('ed25519');
  const sealing = spki('x25519');

  it('reads the Ed25519 and the X25519 block, in either order, with text around them', () => {
    for (const text of [signing.pem + sealing.pem, `# control room keys\n${sealing.pem}\nsome comment\n${signing.pem}`]) {
      const keys = parseControlRoomPublicKeys(text);
      expect(keys.signing.asymmetricKeyType).toBe('ed25519');
      expect(keys.sealing.asymmetricKeyType).toBe('x25519');
      expect(keyIdOf(keys.signing)).toBe(keyIdOf(signing.pair.publicKey));
      expect(keys.sealing.export({ type: 'spki', format: 'pem' })).toBe(sealing.pem);
    }
  });

  it('reads CRLF line ends', () => {
    expect(parseControlRoomPublicKeys((signing.pem + sealing.pem).replace(/\n/g, '\r\n')).signing.asymmetricKeyType).toBe('ed25519');
  });

  it.each([
    ['only the signing block', () => signing.pem],
    ['only the sealing block', () => sealing.pem],
    ['two signing blocks', () => signing.pem + spki('ed25519').pem],
    ['nothing', () => ''],
    ['a garbage block in place of the sealing key', () => `${signing.pem}-----BEGIN PUBLIC KEY-----\nZmFrZQ==\n-----END PUBLIC KEY-----\n`],
    [
      'an EC key in place of the sealing key',
      () => signing.pem + generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    ],
    [
      'a private X25519 key in place of the public one',
      () => signing.pem + generateKeyPairSync('x25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    ],
  ])('refuses %s with ORDERLY_E_KEY_INVALID', (_what, text) => {
    expect(codeOf(() => parseControlRoomPublicKeys(text()))).toBe('ORDERLY_E_KEY_INVALID');
  });
});
