import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, KeyObject } from 'node:crypto';
import { z } from 'zod';
import { OrderlyError } from '../errors';
import { open, seal, SealedBox } from './aead';

/**
 * Public-key sealed boxes (X25519 + HKDF-SHA256 + AES-256-GCM, one ephemeral key per box):
 * runners seal report bodies (results, log lines, errors) to the control room, so Redis, which
 * carries the reports, never holds them in clear.
 */
export const PublicSealedBox = z.object({ epk: z.base64().max(100), box: SealedBox });
export type PublicSealedBox = z.infer<typeof PublicSealedBox>;

export function generateBoxKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function deriveKey(shared: Buffer, epk: Buffer, recipient: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([epk, recipient]), 'orderly sealed box v1', 32));
}

function raw(pub: KeyObject): Buffer {
  return pub.export({ type: 'spki', format: 'der' });
}

export function sealTo(recipient: KeyObject, plaintext: Buffer, aad: string): PublicSealedBox {
  if (recipient.asymmetricKeyType !== 'x25519') throw new OrderlyError('ORDERLY_E_KEY_INVALID', 'sealing needs an X25519 public key');
  const eph = generateKeyPairSync('x25519');
  const epk = raw(eph.publicKey);
  const key = deriveKey(diffieHellman({ privateKey: eph.privateKey, publicKey: recipient }), epk, raw(recipient));
  return { epk: epk.toString('base64'), box: seal(key, 'x25519', plaintext, aad) };
}

export function openSealed(recipientPrivate: KeyObject, sealed: PublicSealedBox, aad: string): Buffer {
  let epkKey: KeyObject;
  try {
    epkKey = createPublicKey({ key: Buffer.from(sealed.epk, 'base64'), format: 'der', type: 'spki' });
  } catch {
    throw new OrderlyError('ORDERLY_E_SIGNATURE_INVALID', 'sealed box has a malformed ephemeral key');
  }
  // Another key type would make diffieHellman throw an uncoded error on attacker-chosen input.
  if (epkKey.asymmetricKeyType !== 'x25519') throw new OrderlyError('ORDERLY_E_SIGNATURE_INVALID', 'sealed box has a malformed ephemeral key');
  const recipientPublic = createPublicKey(recipientPrivate);
  const key = deriveKey(diffieHellman({ privateKey: recipientPrivate, publicKey: epkKey }), raw(epkKey), raw(recipientPublic));
  return open(key, sealed.box, aad);
}

export function loadBoxPrivateKey(pem: string): KeyObject {
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType === 'x25519') return key;
  } catch {
    /* fall through to the coded error */
  }
  throw new OrderlyError('ORDERLY_E_KEY_INVALID', 'not a PEM-encoded X25519 private key');
}
