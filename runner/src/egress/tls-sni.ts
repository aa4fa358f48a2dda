/**
 * Reads the server name (SNI) from the first bytes a client sends through a CONNECT tunnel. The
 * proxy cannot look inside TLS, but it can see which name the client asks the far end for: a bot
 * must not CONNECT to a listed host and then ask a shared front end (a CDN) for an unlisted one.
 */
export type SniVerdict =
  /** Not enough bytes yet to decide. */
  | { readonly kind: 'need-more' }
  /** The stream does not start with a TLS handshake record: some other protocol, nothing to check. */
  | { readonly kind: 'not-tls' }
  /** A ClientHello without a server_name extension (e.g. a connection by IP address). */
  | { readonly kind: 'no-sni' }
  | { readonly kind: 'sni'; readonly name: string }
  /** A handshake record that is not a ClientHello this reader can walk: refused, never passed unread. */
  | { readonly kind: 'malformed' };

const HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const SERVER_NAME = 0x0000;
/** A TLS record holds at most 2^14 bytes of plaintext; a ClientHello is sent unencrypted. */
const MAX_RECORD = 16_384;

export function readClientHelloSni(buffer: Buffer): SniVerdict {
  if (buffer.length === 0) return { kind: 'need-more' };
  if (buffer[0] !== HANDSHAKE) return { kind: 'not-tls' };
  if (buffer.length < 5) return { kind: 'need-more' };
  const recordLength = buffer.readUInt16BE(3);
  if (recordLength > MAX_RECORD || recordLength < 4) return { kind: 'malformed' };
  if (buffer.length < 5 + recordLength) return { kind: 'need-more' };
  const body = buffer.subarray(5, 5 + recordLength);
  if (body[0] !== CLIENT_HELLO) return { kind: 'malformed' };
  const helloLength = body.readUIntBE(1, 3);
  // A ClientHello split over several records is legal but unheard of from real clients.
  if (helloLength + 4 > body.length) return { kind: 'malformed' };
  const end = 4 + helloLength;
  let p = 4 + 2 + 32; // version, random
  const need = (n: number): boolean => p + n <= end;
  if (!need(1)) return { kind: 'malformed' };
  p += 1 + (body[p] ?? 0); // session id
  if (!need(2)) return { kind: 'malformed' };
  p += 2 + body.readUInt16BE(p); // cipher suites
  if (!need(1)) return { kind: 'malformed' };
  p += 1 + (body[p] ?? 0); // compression methods
  if (p === end) return { kind: 'no-sni' };
  if (!need(2)) return { kind: 'malformed' };
  const extensionsEnd = p + 2 + body.readUInt16BE(p);
  p += 2;
  if (extensionsEnd > end) return { kind: 'malformed' };
  while (p + 4 <= extensionsEnd) {
    const type = body.readUInt16BE(p);
    const length = body.readUInt16BE(p + 2);
    p += 4;
    if (p + length > extensionsEnd) return { kind: 'malformed' };
    if (type === SERVER_NAME) {
      // server_name_list: length(2), then entries of type(1) length(2) name; host_name is type 0.
      if (length < 5 || body[p + 2] !== 0) return { kind: 'malformed' };
      const nameLength = body.readUInt16BE(p + 3);
      if (5 + nameLength > length) return { kind: 'malformed' };
      return { kind: 'sni', name: body.subarray(p + 5, p + 5 + nameLength).toString('latin1') };
    }
    p += length;
  }
  return p === extensionsEnd ? { kind: 'no-sni' } : { kind: 'malformed' };
}
