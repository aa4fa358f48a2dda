import { createHmac } from 'node:crypto';
import { open, seal, SealedBox } from '@orderly/shared';

/**
 * Encryption of data at rest (run inputs and results hold PHI). The AAD binds each ciphertext to
 * its run and purpose, so a ciphertext copied onto another row does not decrypt there.
 */
export interface AtRestCipher {
  seal(value: unknown, aad: string): SealedBox;
  open(box: SealedBox, aad: string): unknown;
  /** Keyed hash for correlating sensitive values without storing them (or a plain hash of them). */
  mac(value: string): string;
}

export function localAtRestCipher(key: Buffer, keyId: string): AtRestCipher {
  return {
    seal: (value, aad) => seal(key, keyId, Buffer.from(JSON.stringify(value)), aad),
    open: (box, aad) => JSON.parse(open(key, box, aad).toString('utf8')) as unknown,
    mac: (value) => createHmac('sha256', key).update(value).digest('hex'),
  };
}

/** JSON with object keys sorted, so equal inputs give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
