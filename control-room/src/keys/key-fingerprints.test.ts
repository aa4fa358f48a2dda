import { createHash, randomBytes } from 'node:crypto';
import { generateBoxKeyPair, generateSigningKeyPair, loadBoxPrivateKey, loadPrivateKey } from '@orderly/shared';
import { KeyIdentifiers, keyFingerprints } from './key-fingerprints';

function identifiers(): KeyIdentifiers & { dataKey: Buffer } {
  const dataKey = randomBytes(32);
  return {
    dataKey,
    dataKeyId: `local:${createHash('sha256').update(dataKey).digest('hex').slice(0, 16)}`,
    transitKey: undefined,
    signingTransitKey: undefined,
    signerPublicKey: loadPrivateKey(generateSigningKeyPair().privateKeyPem),
    sealingKey: loadBoxPrivateKey(generateBoxKeyPair().privateKeyPem),
    releaseKey: loadPrivateKey(generateSigningKeyPair().privateKeyPem),
  };
}

test('each key has its own fingerprint; changing one key changes only its fingerprint', () => {
  const ids = identifiers();
  const base = keyFingerprints(ids);
  expect(Object.keys(base).sort()).toEqual(['at_rest', 'data_key', 'job_signer', 'release', 'report_sealing']);
  for (const value of Object.values(base)) expect(value).toMatch(/^[0-9a-f]{64}$/);
  expect(keyFingerprints({ ...ids })).toEqual(base);
  const otherRelease = keyFingerprints({ ...ids, releaseKey: identifiers().releaseKey });
  expect(Object.keys(base).filter((k) => base[k] !== otherRelease[k])).toEqual(['release']);
  const otherSealing = keyFingerprints({ ...ids, sealingKey: identifiers().sealingKey });
  expect(Object.keys(base).filter((k) => base[k] !== otherSealing[k])).toEqual(['report_sealing']);
});

test('keys in Vault Transit are fingerprinted by name (a rotation keeps the name), local keys by key id', () => {
  const ids = identifiers();
  const transit = keyFingerprints({ ...ids, transitKey: 'orderly-at-rest', signingTransitKey: 'orderly-signing' });
  // Another public key under the same Transit name (a rotated key) keeps the fingerprint.
  expect(
    keyFingerprints({ ...ids, transitKey: 'orderly-at-rest', signingTransitKey: 'orderly-signing', signerPublicKey: identifiers().signerPublicKey }),
  ).toEqual(transit);
  const renamed = keyFingerprints({ ...ids, transitKey: 'other-at-rest', signingTransitKey: 'orderly-signing' });
  expect(Object.keys(transit).filter((k) => transit[k] !== renamed[k])).toEqual(['at_rest']);
  expect(transit.job_signer).not.toBe(keyFingerprints(ids).job_signer);
});

test('no fingerprint is a hash of the data key itself', () => {
  const ids = identifiers();
  const plain = createHash('sha256').update(ids.dataKey).digest('hex');
  expect(Object.values(keyFingerprints(ids))).not.toContain(plain);
  expect(JSON.stringify(keyFingerprints(ids))).not.toContain(ids.dataKey.toString('hex'));
});
