import { randomBytes } from 'node:crypto';
import { OrderlyError } from '../errors';
import { open, seal, SealedBox } from './aead';
import { refusal } from '../testing/errors';

const FAKE_PHI = 'FAKEPHI member ZZ000000 born 1888-01-01';
const plaintext = Buffer.from(FAKE_PHI);
const aad = 'run:00000000-0000-4000-8000-000000000001';

/** The refusal is coded and says nothing about the plaintext, key or ciphertext. */
function expectSafeRefusal(err: OrderlyError, key: Buffer, box: SealedBox): void {
  expect(err.code).toBe('ORDERLY_E_SIGNATURE_INVALID');
  const said = [err.message, JSON.stringify(err.toJSON()), err.stack ?? ''].join('\n');
  expect(said).not.toContain(FAKE_PHI);
  expect(said).not.toContain('FAKEPHI');
  expect(said).not.toContain(key.toString('base64'));
  expect(said).not.toContain(key.toString('hex'));
  expect(said).not.toContain(box.ct);
}

function flipBit(b64: string, byte = 0, bit = 0): string {
  const buf = Buffer.from(b64, 'base64');
  buf[byte] = buf[byte]! ^ (1 << bit);
  return buf.toString('base64');
}

describe('seal / open', () => {
  const key = randomBytes(32);

  it('round-trips, also through JSON and the schema', () => {
    const box = SealedBox.parse(JSON.parse(JSON.stringify(seal(key, 'k1', plaintext, aad))));
    expect(box).toMatchObject({ v: 1, alg: 'A256GCM', kid: 'k1' });
    expect(open(key, box, aad).equals(plaintext)).toBe(true);
  });

  it('round-trips empty plaintext', () => {
    expect(open(key, seal(key, 'k1', Buffer.alloc(0), aad), aad).length).toBe(0);
  });

  it('does not hold the plaintext in the box, and uses a fresh IV each time', () => {
    const a = seal(key, 'k1', plaintext, aad);
    const b = seal(key, 'k1', plaintext, aad);
    expect(JSON.stringify(a)).not.toContain('FAKEPHI');
    expect(Buffer.from(a.ct, 'base64').toString('latin1')).not.toContain('FAKEPHI');
    expect(a.iv).not.toBe(b.iv);
    expect(a.ct).not.toBe(b.ct);
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(refusal(() => seal(randomBytes(16), 'k1', plaintext, aad)).code).toBe('ORDERLY_E_KEY_INVALID');
  });

  it('refuses the wrong AAD (a box copied onto another record)', () => {
    const box = seal(key, 'k1', plaintext, aad);
    expectSafeRefusal(
      refusal(() => open(key, box, 'run:00000000-0000-4000-8000-000000000002')),
      key,
      box,
    );
  });

  it('refuses the wrong key', () => {
    const box = seal(key, 'k1', plaintext, aad);
    const wrong = randomBytes(32);
    expectSafeRefusal(
      refusal(() => open(wrong, box, aad)),
      wrong,
      box,
    );
  });

  it('refuses a key of the wrong length with a coded error', () => {
    const box = seal(key, 'k1', plaintext, aad);
    const short = randomBytes(8);
    expectSafeRefusal(
      refusal(() => open(short, box, aad)),
      short,
      box,
    );
  });

  it.each([
    ['the first bit of the ciphertext', (b: SealedBox) => ({ ...b, ct: flipBit(b.ct) })],
    ['the last bit of the ciphertext', (b: SealedBox) => ({ ...b, ct: flipBit(b.ct, Buffer.from(b.ct, 'base64').length - 1, 7) })],
    ['a bit of the tag', (b: SealedBox) => ({ ...b, tag: flipBit(b.tag, 15, 3) })],
    ['a bit of the IV', (b: SealedBox) => ({ ...b, iv: flipBit(b.iv, 5, 1) })],
  ])('refuses a box with %s flipped', (_what, tamper) => {
    const box = seal(key, 'k1', plaintext, aad);
    expectSafeRefusal(
      refusal(() => open(key, tamper(box), aad)),
      key,
      box,
    );
  });

  it.each([4, 8, 12, 15, 0])('refuses a tag truncated to %i bytes', (length) => {
    const box = seal(key, 'k1', plaintext, aad);
    const truncated = { ...box, tag: Buffer.from(box.tag, 'base64').subarray(0, length).toString('base64') };
    expectSafeRefusal(
      refusal(() => open(key, truncated, aad)),
      key,
      box,
    );
  });

  it('refuses a truncated ciphertext', () => {
    const box = seal(key, 'k1', plaintext, aad);
    const cut = { ...box, ct: Buffer.from(box.ct, 'base64').subarray(0, 10).toString('base64') };
    expectSafeRefusal(
      refusal(() => open(key, cut, aad)),
      key,
      box,
    );
  });
});
