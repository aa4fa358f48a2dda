import { generateKeyPairSync, sign } from 'node:crypto';
import { keyIdOf } from '../crypto/keys';
import { DsseEnvelope, envelopeKeyIds, IN_TOTO_PAYLOAD_TYPE, preAuthEncoding, signEnvelope, verifyEnvelope } from './dsse';
import { codeOf } from '../testing/errors';

const TYPE = 'application/vnd.orderly.test+json';
const payload = Buffer.from(JSON.stringify({ hello: 'fake world' }));

describe('preAuthEncoding', () => {
  it('matches the example of the DSSE spec', () => {
    expect(preAuthEncoding('http://example.com/HelloWorld', Buffer.from('hello world')).toString('utf8')).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });

  it('counts bytes, not characters, and keeps the body byte for byte', () => {
    const body = Buffer.from([0x00, 0xff, 0x20, 0x0a]);
    const pae = preAuthEncoding('tÿpe', body);
    expect(pae.equals(Buffer.concat([Buffer.from('DSSEv1 5 tÿpe 4 ', 'utf8'), body]))).toBe(true);
  });

  it('handles an empty body', () => {
    expect(preAuthEncoding('t', Buffer.alloc(0)).toString('utf8')).toBe('DSSEv1 1 t 0 ');
  });

  it('binds the split between type and body', () => {
    // Without lengths, ("a b", "c") and ("a", "b c") would encode the same.
    expect(preAuthEncoding('a b', Buffer.from('c')).equals(preAuthEncoding('a', Buffer.from('b c')))).toBe(false);
  });
});

describe('signEnvelope / verifyEnvelope', () => {
  const signer = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');

  it('round-trips and names the signing key', () => {
    const envelope = signEnvelope(TYPE, payload, signer.privateKey);
    expect(DsseEnvelope.safeParse(envelope).success).toBe(true);
    expect(envelope.payloadType).toBe(TYPE);
    expect(envelopeKeyIds(envelope)).toEqual([keyIdOf(signer.publicKey)]);
    expect(verifyEnvelope(envelope, signer.publicKey, TYPE).equals(payload)).toBe(true);
  });

  it('survives a JSON round trip (as it travels)', () => {
    const envelope = DsseEnvelope.parse(JSON.parse(JSON.stringify(signEnvelope(TYPE, payload, signer.privateKey))));
    expect(verifyEnvelope(envelope, signer.publicKey, TYPE).equals(payload)).toBe(true);
  });

  it('refuses a tampered payload', () => {
    const envelope = signEnvelope(TYPE, payload, signer.privateKey);
    const tampered = { ...envelope, payload: Buffer.from(JSON.stringify({ hello: 'evil world' })).toString('base64') };
    expect(codeOf(() => verifyEnvelope(tampered, signer.publicKey, TYPE))).toBe('ORDERLY_E_SIGNATURE_INVALID');
  });

  it('refuses a tampered payload type, even when the verifier expects the new type', () => {
    const envelope = signEnvelope(TYPE, payload, signer.privateKey);
    const tampered = { ...envelope, payloadType: IN_TOTO_PAYLOAD_TYPE };
    expect(codeOf(() => verifyEnvelope(tampered, signer.publicKey, IN_TOTO_PAYLOAD_TYPE))).toBe('ORDERLY_E_SIGNATURE_INVALID');
  });

  it('refuses a signature by another key', () => {
    const envelope = signEnvelope(TYPE, payload, other.privateKey);
    expect(codeOf(() => verifyEnvelope(envelope, signer.publicKey, TYPE))).toBe('ORDERLY_E_SIGNATURE_INVALID');
  });

  it("refuses another key's signature relabelled with the trusted key id", () => {
    const envelope = signEnvelope(TYPE, payload, other.privateKey);
    const relabelled = { ...envelope, signatures: [{ keyid: keyIdOf(signer.publicKey), sig: envelope.signatures[0]!.sig }] };
    expect(codeOf(() => verifyEnvelope(relabelled, signer.publicKey, TYPE))).toBe('ORDERLY_E_SIGNATURE_INVALID');
  });

  it('refuses a good signature under another key id', () => {
    const envelope = signEnvelope(TYPE, payload, signer.privateKey);
    const relabelled = { ...envelope, signatures: [{ keyid: keyIdOf(other.publicKey), sig: envelope.signatures[0]!.sig }] };
    expect(codeOf(() => verifyEnvelope(relabelled, signer.publicKey, TYPE))).toBe('ORDERLY_E_SIGNATURE_INVALID');
  });

  it('accepts when one of several signatures is by the trusted key', () => {
    const mine = signEnvelope(TYPE, payload, signer.privateKey);
    const theirs = signEnvelope(TYPE, payload, other.privateKey);
    const both = { ...mine, signatures: [...theirs.signatures, ...mine.signatures] };
    expect(verifyEnvelope(both, signer.publicKey, TYPE).equals(payload)).toBe(true);
  });

  it('refuses the wrong expected payload type', () => {
    const envelope = signEnvelope(TYPE, payload, signer.privateKey);
    expect(codeOf(() => verifyEnvelope(envelope, signer.publicKey, IN_TOTO_PAYLOAD_TYPE))).toBe('ORDERLY_E_SIGNATURE_INVALID');
  });

  it('refuses a signature over the bare payload instead of the PAE', () => {
    const envelope = signEnvelope(TYPE, payload, signer.privateKey);
    const bare = { ...envelope, signatures: [{ keyid: keyIdOf(signer.publicKey), sig: sign(null, payload, signer.privateKey).toString('base64') }] };
    expect(codeOf(() => verifyEnvelope(bare, signer.publicKey, TYPE))).toBe('ORDERLY_E_SIGNATURE_INVALID');
  });
});
