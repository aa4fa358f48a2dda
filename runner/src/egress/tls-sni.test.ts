import { readClientHelloSni } from './tls-sni';

/** A minimal, well-formed ClientHello record with the given extensions. */
function clientHello(extensions: Buffer[]): Buffer {
  const ext = Buffer.concat(extensions);
  const hello = Buffer.concat([
    Buffer.from([0x03, 0x03]), // version
    Buffer.alloc(32, 7), // random
    Buffer.from([0]), // session id
    Buffer.from([0, 2, 0x13, 0x01]), // one cipher suite
    Buffer.from([1, 0]), // null compression
    ...(extensions.length > 0 ? [Buffer.from([ext.length >> 8, ext.length & 255]), ext] : []),
  ]);
  const handshake = Buffer.concat([Buffer.from([1, 0, hello.length >> 8, hello.length & 255]), hello]);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x01, handshake.length >> 8, handshake.length & 255]), handshake]);
}

function serverName(name: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const list = Buffer.concat([Buffer.from([0, n.length >> 8, n.length & 255]), n]);
  const data = Buffer.concat([Buffer.from([list.length >> 8, list.length & 255]), list]);
  return Buffer.concat([Buffer.from([0, 0, data.length >> 8, data.length & 255]), data]);
}

const otherExtension = Buffer.from([0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]); // ec_point_formats

describe('readClientHelloSni', () => {
  it('reads the server name', () => {
    expect(readClientHelloSni(clientHello([otherExtension, serverName('portal.example.test')]))).toEqual({ kind: 'sni', name: 'portal.example.test' });
  });

  it('says no-sni for a ClientHello without server_name, with or without extensions', () => {
    expect(readClientHelloSni(clientHello([otherExtension]))).toEqual({ kind: 'no-sni' });
    expect(readClientHelloSni(clientHello([]))).toEqual({ kind: 'no-sni' });
  });

  it('asks for more bytes until the record is whole', () => {
    const whole = clientHello([serverName('portal.example.test')]);
    for (const cut of [0, 1, 4, 5, whole.length - 1]) expect(readClientHelloSni(whole.subarray(0, cut))).toEqual({ kind: 'need-more' });
  });

  it('lets other protocols through unread', () => {
    expect(readClientHelloSni(Buffer.from('GET / HTTP/1.1\r\n'))).toEqual({ kind: 'not-tls' });
    expect(readClientHelloSni(Buffer.from('SSH-2.0-fake\r\n'))).toEqual({ kind: 'not-tls' });
  });

  it.each([
    ['a record over 16 KiB', Buffer.from([0x16, 3, 1, 0x41, 0x00])],
    ['a handshake that is not a ClientHello', Buffer.from([0x16, 3, 1, 0, 4, 2, 0, 0, 0])],
    ['a ClientHello longer than its record', Buffer.from([0x16, 3, 1, 0, 4, 1, 0, 1, 0])],
  ])('calls %s malformed', (_what, bytes) => {
    expect(readClientHelloSni(bytes)).toEqual({ kind: 'malformed' });
  });

  it('calls an extension running past its block malformed', () => {
    const good = clientHello([serverName('portal.example.test')]);
    const bad = Buffer.from(good);
    // Inflate the server_name extension's length (just after the extensions-length field).
    const extStart = 5 + 4 + 2 + 32 + 1 + 4 + 2 + 2;
    bad.writeUInt16BE(0x7fff, extStart + 2);
    expect(readClientHelloSni(bad)).toEqual({ kind: 'malformed' });
  });
});
