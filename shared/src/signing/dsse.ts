import { createPublicKey, KeyObject } from 'node:crypto';
import { z } from 'zod';
import { keyIdOf, signBytes, verifyBytes } from '../crypto/keys';
import { OrderlyError } from '../errors';

/** A DSSE envelope (https://github.com/secure-systems-lab/dsse), JSON form. */
export const DsseEnvelope = z.object({
  payloadType: z.string().min(1).max(200),
  payload: z.base64().max(1_000_000),
  signatures: z
    .array(z.object({ keyid: z.string().max(200), sig: z.base64().max(1000) }))
    .min(1)
    .max(8),
});
export type DsseEnvelope = z.infer<typeof DsseEnvelope>;

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

/** DSSE pre-authentication encoding: what is actually signed, binding type and body. */
export function preAuthEncoding(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

export function signEnvelope(payloadType: string, payload: Buffer, privateKey: KeyObject): DsseEnvelope {
  const sig = signBytes(privateKey, preAuthEncoding(payloadType, payload));
  return { payloadType, payload: payload.toString('base64'), signatures: [{ keyid: keyIdOf(privateKey), sig: sig.toString('base64') }] };
}

/**
 * Signs wherever the private key lives: in this process, or in Vault Transit (which never hands
 * the key out). `publicKey` is what verifiers are configured with.
 */
export interface Signer {
  readonly publicKey: KeyObject;
  sign(data: Buffer): Promise<Buffer>;
}

export function localSigner(privateKey: KeyObject): Signer {
  return { publicKey: createPublicKey(privateKey), sign: async (data) => signBytes(privateKey, data) };
}

export async function signEnvelopeWith(signer: Signer, payloadType: string, payload: Buffer): Promise<DsseEnvelope> {
  const sig = await signer.sign(preAuthEncoding(payloadType, payload));
  return { payloadType, payload: payload.toString('base64'), signatures: [{ keyid: keyIdOf(signer.publicKey), sig: sig.toString('base64') }] };
}

/**
 * Verifies the envelope against one trusted public key and returns the payload bytes. A
 * signature by any other key, or none that verifies, is refused.
 */
export function verifyEnvelope(envelope: DsseEnvelope, publicKey: KeyObject, expectedPayloadType: string): Buffer {
  if (envelope.payloadType !== expectedPayloadType) {
    throw new OrderlyError('ORDERLY_E_SIGNATURE_INVALID', `envelope payload type is not ${expectedPayloadType}`);
  }
  const keyid = keyIdOf(publicKey);
  const payload = Buffer.from(envelope.payload, 'base64');
  const pae = preAuthEncoding(envelope.payloadType, payload);
  const ok = envelope.signatures.some((s) => s.keyid === keyid && verifyBytes(publicKey, pae, Buffer.from(s.sig, 'base64')));
  if (!ok) throw new OrderlyError('ORDERLY_E_SIGNATURE_INVALID', 'envelope is not signed by the expected key', { keyId: keyid });
  return payload;
}

/** Key ids named by the envelope's signatures (unverified: use to look a key up, then verify). */
export function envelopeKeyIds(envelope: DsseEnvelope): string[] {
  return envelope.signatures.map((s) => s.keyid);
}
