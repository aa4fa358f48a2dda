import { base32Decode, base32Encode, hotp, matchTotp, otpauthUri, totpAt, totpStep } from './totp';

// RFC 6238 appendix B: the SHA-1 seed is the ASCII string "12345678901234567890"; 8-digit values.
const RFC_SEED = Buffer.from('12345678901234567890', 'ascii');
const RFC_VECTORS: [number, string][] = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130'],
];

test.each(RFC_VECTORS)('RFC 6238 SHA-1 vector at T=%i', (seconds, expected) => {
  expect(totpAt(RFC_SEED, seconds * 1000, 8)).toBe(expected);
});

test('RFC 4226 HOTP vectors (6 digits)', () => {
  const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
  expect(expected.map((_, i) => hotp(RFC_SEED, BigInt(i)))).toEqual(expected);
});

test('base32 round-trips and matches RFC 4648 vectors', () => {
  expect(base32Encode(Buffer.from('foobar'))).toBe('MZXW6YTBOI');
  expect(base32Decode('MZXW6YTBOI').toString()).toBe('foobar');
  expect(base32Decode(base32Encode(RFC_SEED)).equals(RFC_SEED)).toBe(true);
  expect(() => base32Decode('not*base32')).toThrow();
});

test('a code matches within one step either side, and names its step', () => {
  const now = 1_700_000_000_000;
  const step = totpStep(now);
  expect(matchTotp(RFC_SEED, totpAt(RFC_SEED, now), now)).toBe(step);
  expect(matchTotp(RFC_SEED, totpAt(RFC_SEED, now - 30_000), now)).toBe(step - 1);
  expect(matchTotp(RFC_SEED, totpAt(RFC_SEED, now + 30_000), now)).toBe(step + 1);
  expect(matchTotp(RFC_SEED, totpAt(RFC_SEED, now - 60_000), now)).toBeUndefined();
  expect(matchTotp(RFC_SEED, totpAt(RFC_SEED, now + 60_000), now)).toBeUndefined();
  expect(matchTotp(RFC_SEED, '12345', now)).toBeUndefined();
  expect(matchTotp(RFC_SEED, 'abcdef', now)).toBeUndefined();
});

test('the otpauth URI carries the base32 secret, issuer and parameters', () => {
  const uri = new URL(otpauthUri(RFC_SEED, 'alice'));
  expect(uri.protocol).toBe('otpauth:');
  expect(uri.host).toBe('totp');
  expect(decodeURIComponent(uri.pathname)).toBe('/Orderly:alice');
  expect(uri.searchParams.get('secret')).toBe(base32Encode(RFC_SEED));
  expect(uri.searchParams.get('issuer')).toBe('Orderly');
  expect(uri.searchParams.get('digits')).toBe('6');
  expect(uri.searchParams.get('period')).toBe('30');
});
