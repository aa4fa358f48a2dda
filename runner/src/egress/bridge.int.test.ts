import { mkdtemp, rm } from 'node:fs/promises';
import { Server, Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bridgeLoopbackToSocket } from './bridge';

describe('bridgeLoopbackToSocket', () => {
  let dir: string;
  let unixServer: Server;
  let peers: Socket[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orderly-bridge-'));
    peers = [];
    // A stand-in for the proxy: answers each chunk upper-cased, so both directions are seen.
    unixServer = createServer((s) => {
      peers.push(s);
      s.on('error', () => s.destroy());
      s.on('data', (chunk: Buffer) => s.write(chunk.toString().toUpperCase()));
    });
    await new Promise<void>((resolve) => unixServer.listen(join(dir, 'proxy.sock'), () => resolve()));
  });

  afterEach(async () => {
    for (const p of peers) p.destroy();
    await new Promise((resolve) => unixServer.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('listens on loopback and pipes bytes both ways to the socket, one connection per connection', async () => {
    const bridge = await bridgeLoopbackToSocket(join(dir, 'proxy.sock'));
    try {
      expect(bridge.port).toBeGreaterThan(0);
      const talk = (text: string): Promise<string> =>
        new Promise((resolve, reject) => {
          const client = connect(bridge.port, '127.0.0.1', () => client.write(text));
          client.once('data', (chunk: Buffer) => {
            resolve(chunk.toString());
            client.destroy();
          });
          client.on('error', reject);
        });
      await expect(talk('fake hello')).resolves.toBe('FAKE HELLO');
      await expect(talk('second')).resolves.toBe('SECOND');
      expect(peers).toHaveLength(2);
    } finally {
      await bridge.close();
    }
  });

  it('close() ends open connections and is idempotent', async () => {
    const bridge = await bridgeLoopbackToSocket(join(dir, 'proxy.sock'));
    const client = connect(bridge.port, '127.0.0.1');
    await new Promise((resolve) => client.once('connect', resolve));
    client.write('x');
    await new Promise((resolve) => client.once('data', resolve));
    const closed = new Promise((resolve) => client.once('close', resolve));
    await Promise.all([bridge.close(), bridge.close()]);
    await closed;
    await expect(new Promise((resolve, reject) => connect(bridge.port, '127.0.0.1').once('connect', resolve).once('error', reject))).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });

  it('closes the TCP side when the socket behind it is gone', async () => {
    const bridge = await bridgeLoopbackToSocket(join(dir, 'missing.sock'));
    try {
      const client = connect(bridge.port, '127.0.0.1');
      client.on('error', () => undefined);
      await new Promise((resolve) => client.once('close', resolve));
      expect(client.destroyed).toBe(true);
    } finally {
      await bridge.close();
    }
  });
});
