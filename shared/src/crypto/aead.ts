import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { OrderlyError } from '../errors';

/**
 * AES-256-GCM sealed box. `aad` binds the ciphertext to its context (a run id, say) so a
 * ciphertext copied onto another record fails to open instead of decrypting there.
 */
export const SealedBox = z.object({
  v: z.literal(1),
  alg: z.literal('A256GCM'),
  kid: z.string().min(1).max(200),
  iv: z.base64(),
  ct: z.base64(),
  tag: z.base64(),
});
export type SealedBox = z.infer<typeof SealedBox>;

export function seal(key: Buffer, kid: string, plaintext: Buffer, aad: string): SealedBox {
  if (key.length !== 32) throw new OrderlyError('ORDERLY_E_KEY_INVALID', 'AES-256-GCM needs a 32-byte key');
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { v: 1, alg: 'A256GCM', kid, iv: iv.toString('base64'), ct: ct.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
}

export function open(key: Buffer, box: SealedBox, aad: string): Buffer {
  try {
    // A fixed tag length: otherwise Node accepts a tag truncated to as little as 4 bytes.
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(box.iv, 'base64'), { authTagLength: 16 });
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(Buffer.from(box.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(box.ct, 'base64')), decipher.final()]);
  } catch {
    // Never echo ciphertext or key material: the reason is enough.
    throw new OrderlyError('ORDERLY_E_SIGNATURE_INVALID', 'sealed data failed authentication (wrong key, context or tampered)', { kid: box.kid });
  }
}
