import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { Server as HttpServer, createServer as createHttpServer } from 'node:http';
import { AddressInfo, Server, Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyAgent, WebSocket } from 'undici';
import { bridgeLoopbackToSocket, bridgeProxyUrl } from './bridge';
import { createEgressFetch } from './fetch';
import { EGRESS_REFUSED_CODE, EgressProxy, EgressRefusal, startEgressProxy } from './proxy';

// Local stand-ins: a "portal" (HTTP + WebSocket), a TCP echo service, and an "infrastructure"
// listener playing Redis. Names are resolved by a fake lookup that maps them to 127.0.0.1.

const openSockets = new WeakMap<Server | HttpServer, Set<Socket>>();

function listen<T extends Server | HttpServer>(server: T): Promise<number> {
  const sockets = new Set<Socket>();
  openSockets.set(server, sockets);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** Closes a server and every connection it still holds (upgraded sockets included). */
function close(server: Server | HttpServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const socket of openSockets.get(server) ?? []) socket.destroy();
  });
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** One unmasked text frame, server to client. */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
}

/** Sends raw bytes to the proxy socket and collects the answer until `done` says so or the peer closes. */
function exchange(socketPath: string, text: string, done: (sofar: string) => boolean = () => false): Promise<{ text: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let received = '';
    const finish = (): void => resolve({ text: received, socket });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (done(received)) finish();
    });
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', reject);
    socket.write(text);
  });
}

const headersDone = (s: string): boolean => s.includes('\r\n\r\n');

describe('egress proxy', () => {
  let dir: string;
  let socketPath: string;
  let proxy: EgressProxy;
  let refusals: EgressRefusal[];
  let lookup: jest.Mock;
  let portal: HttpServer;
  let portalPort: number;
  let portalHits: string[];
  let lastPortalHeaders: Record<string, unknown> = {};
  let echo: Server;
  let echoPort: number;
  let infra: Server;
  let infraPort: number;
  let infraConnections: number;
  let bridge: { port: number; close(): Promise<void> };

  beforeAll(async () => {
    portalHits = [];
    portal = createHttpServer((req, res) => {
      portalHits.push(`${req.headers.host ?? ''} ${req.url ?? ''}`);
      lastPortalHeaders = { ...req.headers };
      if (req.url === '/go-unlisted') {
        res.writeHead(302, { location: 'http://unlisted.example.test/landing?member=fake-0001' }).end();
      } else if (req.url === '/go-home') {
        res.writeHead(302, { location: '/home' }).end();
      } else {
        res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive', 'x-portal': 'fake' }).end(`portal says hello to ${req.url ?? ''}`);
      }
    });
    portal.on('upgrade', (req, socket: Socket) => {
      const accept = createHash('sha1')
        .update(`${String(req.headers['sec-websocket-key'])}${WS_GUID}`)
        .digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      socket.write(textFrame('hello from the fake portal'));
      socket.on('error', () => socket.destroy());
    });
    portalPort = await listen(portal);
    echo = createServer((s) => {
      s.on('error', () => s.destroy());
      s.pipe(s);
    });
    echoPort = await listen(echo);
    infraConnections = 0;
    infra = createServer((s) => {
      infraConnections += 1;
      s.end('+PONG\r\n');
    });
    infraPort = await listen(infra);
  });

  afterAll(async () => {
    await Promise.all([close(portal), close(echo), close(infra)]);
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orderly-egress-'));
    socketPath = join(dir, 'egress.sock');
    refusals = [];
    lookup = jest.fn((host: string) => {
      if (host.endsWith('.example.test') || host === 'localhost') return Promise.resolve([{ address: '127.0.0.1', family: 4 as const }]);
      if (host === 'intranet.corp.test') return Promise.resolve([{ address: '10.255.255.1', family: 4 as const }]);
      return Promise.reject(new Error('ENOTFOUND'));
    });
    proxy = await startEgressProxy({
      socketPath,
      infrastructure: [{ host: '127.0.0.1', port: infraPort }],
      onRefused: (r) => refusals.push(r),
      lookup,
      connectTimeoutMs: 2_000,
      maxTunnels: 4,
    });
    bridge = await bridgeLoopbackToSocket(socketPath);
  });

  afterEach(async () => {
    await bridge.close();
    await proxy.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('listens on a socket only its owner can use', async () => {
    expect((await stat(socketPath)).mode & 0o777).toBe(0o600);
  });

  it('refuses everything before a policy is loaded', async () => {
    const { text } = await exchange(socketPath, `GET http://127.0.0.1:${portalPort}/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 403 /);
    expect(text).toContain(EGRESS_REFUSED_CODE);
    expect(refusals).toEqual([{ host: '127.0.0.1', port: portalPort, reason: 'no-policy' }]);
    expect(portalHits).toEqual([]);
  });

  it('refuses an unlisted name without resolving it, and reports host and port only', async () => {
    proxy.setPolicy({ hosts: [`portal.example.test:${portalPort}`] });
    const plain = await exchange(
      socketPath,
      `GET http://unlisted.example.test/members/fake-0001?dob=1900-01-01 HTTP/1.1\r\nHost: unlisted.example.test\r\n\r\n`,
    );
    const tunnel = await exchange(socketPath, `CONNECT secret-in-a-label.unlisted.example.test:443 HTTP/1.1\r\n\r\n`);
    expect(plain.text).toMatch(/^HTTP\/1\.1 403 /);
    expect(tunnel.text).toMatch(/^HTTP\/1\.1 403 /);
    expect(tunnel.text).toContain(EGRESS_REFUSED_CODE);
    expect(lookup).not.toHaveBeenCalled();
    expect(refusals).toEqual([
      { host: 'unlisted.example.test', port: 80, reason: 'not-listed' },
      { host: 'secret-in-a-label.unlisted.example.test', port: 443, reason: 'not-listed' },
    ]);
    expect(JSON.stringify(refusals)).not.toMatch(/members|fake-0001|dob|1900/);
    expect(proxy.refusals()).toBe(2);
  });

  it('forwards an allowed absolute-form request with the Host it checked and without hop-by-hop headers', async () => {
    proxy.setPolicy({ hosts: [`portal.example.test:${portalPort}`] });
    portalHits.length = 0;
    const { text } = await exchange(
      socketPath,
      `GET http://portal.example.test:${portalPort}/login?fake=1 HTTP/1.1\r\nHost: fronted.elsewhere.test\r\nProxy-Authorization: Basic ZmFrZTpmYWtl\r\nConnection: close, X-Drop-Me\r\nX-Drop-Me: 1\r\n\r\n`,
    );
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toContain('portal says hello to /login?fake=1');
    expect(text.toLowerCase()).toContain('x-portal: fake');
    expect(portalHits).toEqual([`portal.example.test:${portalPort} /login?fake=1`]);
    expect(lastPortalHeaders).not.toHaveProperty('proxy-authorization');
    expect(lastPortalHeaders).not.toHaveProperty('x-drop-me');
    expect(lookup).toHaveBeenCalledTimes(1);
  });

  it('refuses a wildcard name that resolves inward, and allows an inward name the manifest lists exactly', async () => {
    proxy.setPolicy({ hosts: ['*.example.test', '*.corp.test'] });
    const wildcard = await exchange(socketPath, `GET http://portal.example.test:${portalPort}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
    const privateAddress = await exchange(socketPath, `CONNECT intranet.corp.test:443 HTTP/1.1\r\n\r\n`);
    expect(wildcard.text).toMatch(/^HTTP\/1\.1 403 /);
    expect(privateAddress.text).toMatch(/^HTTP\/1\.1 403 /);
    expect(refusals.map((r) => r.reason)).toEqual(['blocked-address', 'blocked-address']);

    proxy.setPolicy({ hosts: ['portal.example.test', 'localhost', '127.0.0.1'] });
    for (const host of ['portal.example.test', 'localhost', '127.0.0.1']) {
      const { text } = await exchange(socketPath, `GET http://${host}:${portalPort}/ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
    }
  });

  it('refuses the infrastructure even when the manifest lists it, under every loopback name', async () => {
    proxy.setPolicy({ hosts: ['127.0.0.1', 'localhost', '[::1]', '127.0.0.2', 'portal.example.test', '[::ffff:7f00:1]'] });
    for (const host of ['127.0.0.1', 'localhost', '[::1]', '127.0.0.2', 'portal.example.test', '[::ffff:127.0.0.1]', '2130706433']) {
      const { text } = await exchange(socketPath, `CONNECT ${host}:${infraPort} HTTP/1.1\r\n\r\n`);
      expect(text).toMatch(/^HTTP\/1\.1 403 /);
    }
    expect(infraConnections).toBe(0);
    expect(refusals.map((r) => r.reason)).toEqual(new Array(7).fill('infrastructure'));
  });

  it('tunnels CONNECT to a listed TCP service', async () => {
    proxy.setPolicy({ hosts: [`127.0.0.1:${echoPort}`] });
    const { text, socket } = await exchange(socketPath, `CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\n`, headersDone);
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    const echoed = await new Promise<string>((resolve) => {
      socket.removeAllListeners('data');
      socket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
      socket.write('fake ping');
    });
    expect(echoed).toBe('fake ping');
    socket.destroy();
  });

  describe('over TLS', () => {
    let keyDir: string;
    let https: HttpServer;
    let httpsPort: number;
    let handshakes: number;

    beforeAll(async () => {
      keyDir = await mkdtemp(join(tmpdir(), 'orderly-egress-tls-'));
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          join(keyDir, 'key.pem'),
          '-out',
          join(keyDir, 'cert.pem'),
          '-days',
          '1',
          '-subj',
          '/CN=portal.example.test',
        ],
        { stdio: 'ignore' },
      );
      https = createHttpsServer({ key: readFileSync(join(keyDir, 'key.pem')), cert: readFileSync(join(keyDir, 'cert.pem')) }, (_req, res) =>
        res.end('fake secure portal'),
      );
      handshakes = 0;
      https.on('secureConnection', () => (handshakes += 1));
      httpsPort = await listen(https);
    });

    afterAll(async () => {
      await close(https);
      await rm(keyDir, { recursive: true, force: true });
    });

    /** CONNECT, then TLS inside the tunnel with `servername`; resolves with the HTTP answer or 'closed'. */
    async function getThroughTunnel(connectHost: string, servername: string): Promise<string> {
      const { text, socket } = await exchange(socketPath, `CONNECT ${connectHost}:${httpsPort} HTTP/1.1\r\n\r\n`, headersDone);
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
      socket.removeAllListeners('data');
      socket.removeAllListeners('end');
      socket.removeAllListeners('close');
      return new Promise<string>((resolve) => {
        // The test's own throwaway certificate: verification is not what these tests are about.
        const tls = tlsConnect({ socket, servername, rejectUnauthorized: false }, () => {
          tls.write('GET / HTTP/1.1\r\nHost: portal.example.test\r\nConnection: close\r\n\r\n');
        });
        let received = '';
        tls.on('data', (chunk: Buffer) => (received += chunk.toString()));
        tls.on('close', () => resolve(received === '' ? 'closed' : received));
        tls.on('error', () => undefined);
      });
    }

    it('tunnels CONNECT to a listed HTTPS server (TLS end to end)', async () => {
      proxy.setPolicy({ hosts: [`portal.example.test:${httpsPort}`] });
      const body = await getThroughTunnel('portal.example.test', 'portal.example.test');
      expect(body).toMatch(/^HTTP\/1\.1 200 /);
      expect(body).toContain('fake secure portal');
      expect(refusals).toEqual([]);
    });

    it('closes a tunnel whose ClientHello asks for an unlisted name (no fronting through a listed host)', async () => {
      proxy.setPolicy({ hosts: [`portal.example.test:${httpsPort}`] });
      const before = handshakes;
      await expect(getThroughTunnel('portal.example.test', 'unlisted.example.test')).resolves.toBe('closed');
      expect(handshakes).toBe(before);
      expect(refusals).toEqual([{ host: 'unlisted.example.test', port: httpsPort, reason: 'tls-name-not-listed' }]);
    });
  });

  it('closes open tunnels when the policy changes', async () => {
    proxy.setPolicy({ hosts: [`127.0.0.1:${echoPort}`] });
    const { socket } = await exchange(socketPath, `CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\n\r\n`, headersDone);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    proxy.setPolicy(undefined);
    await closed;
    expect(socket.destroyed).toBe(true);
  });

  it('caps concurrent tunnels', async () => {
    proxy.setPolicy({ hosts: [`127.0.0.1:${echoPort}`] });
    const held = await Promise.all([1, 2, 3, 4].map(() => exchange(socketPath, `CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\n\r\n`, headersDone)));
    expect(held.every((h) => h.text.startsWith('HTTP/1.1 200'))).toBe(true);
    const fifth = await exchange(socketPath, `CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\n\r\n`);
    expect(fifth.text).toMatch(/^HTTP\/1\.1 503 /);
    expect(refusals).toEqual([{ host: '127.0.0.1', port: echoPort, reason: 'too-many-tunnels' }]);
    for (const h of held) h.socket.destroy();
  });

  it('answers malformed requests with 400 and keeps serving', async () => {
    proxy.setPolicy({ hosts: [`127.0.0.1:${portalPort}`] });
    for (const bad of [
      'CONNECT no-port HTTP/1.1\r\n\r\n',
      'CONNECT a/b:443 HTTP/1.1\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET https://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n\r\n',
      '\x00\x01garbage\r\n\r\n',
    ]) {
      const { text } = await exchange(socketPath, bad);
      expect(text).toMatch(/^HTTP\/1\.1 400 /);
    }
    expect(refusals).toEqual([]);
    const { text } = await exchange(socketPath, `GET http://127.0.0.1:${portalPort}/still-up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('answers 502 for a listed port where nothing listens, and keeps serving', async () => {
    const dead = createServer();
    const deadPort = await listen(dead);
    await close(dead);
    proxy.setPolicy({ hosts: ['127.0.0.1'] });
    const { text } = await exchange(socketPath, `CONNECT 127.0.0.1:${deadPort} HTTP/1.1\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 502 /);
    const again = await exchange(socketPath, `GET http://127.0.0.1:${portalPort}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(again.text).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('passes a WebSocket upgrade of an absolute-form request', async () => {
    proxy.setPolicy({ hosts: [`portal.example.test:${portalPort}`] });
    const key = Buffer.from('fake-key-0000000').toString('base64');
    const { text, socket } = await exchange(
      socketPath,
      `GET http://portal.example.test:${portalPort}/socket HTTP/1.1\r\nHost: portal.example.test:${portalPort}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      (s) => s.includes('hello from the fake portal'),
    );
    socket.destroy();
    expect(text).toMatch(/^HTTP\/1\.1 101 /);
    expect(text).toContain('hello from the fake portal');
  });

  it('refuses a WebSocket upgrade to an unlisted host', async () => {
    proxy.setPolicy({ hosts: [`portal.example.test:${portalPort}`] });
    const { text } = await exchange(
      socketPath,
      `GET http://unlisted.example.test/socket HTTP/1.1\r\nHost: unlisted.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: eA==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    expect(text).toMatch(/^HTTP\/1\.1 403 /);
    expect(refusals).toEqual([{ host: 'unlisted.example.test', port: 80, reason: 'not-listed' }]);
  });

  it('passes a WebSocket through CONNECT (undici WebSocket via the bridge) and refuses an unlisted one', async () => {
    proxy.setPolicy({ hosts: [`portal.example.test:${portalPort}`] });
    const dispatcher = new ProxyAgent(bridgeProxyUrl(bridge.port));
    try {
      const message = await new Promise<string>((resolve, reject) => {
        const ws = new WebSocket(`ws://portal.example.test:${portalPort}/socket`, { dispatcher });
        ws.addEventListener('message', (event) => {
          resolve(String(event.data));
          ws.close();
        });
        ws.addEventListener('error', () => reject(new Error('websocket failed')));
      });
      expect(message).toBe('hello from the fake portal');
      const outcome = await new Promise<string>((resolve) => {
        const ws = new WebSocket(`ws://unlisted.example.test:${portalPort}/socket`, { dispatcher });
        ws.addEventListener('open', () => resolve('open'));
        ws.addEventListener('error', () => resolve('error'));
      });
      expect(outcome).toBe('error');
      expect(refusals).toEqual([{ host: 'unlisted.example.test', port: portalPort, reason: 'not-listed' }]);
    } finally {
      await dispatcher.close();
    }
  });

  it('sends every redirect hop of ctx.fetch through the proxy: a redirect to an unlisted host is refused', async () => {
    proxy.setPolicy({ hosts: [`portal.example.test:${portalPort}`] });
    const egressFetch = createEgressFetch(bridgeProxyUrl(bridge.port));
    const home = await egressFetch(`http://portal.example.test:${portalPort}/go-home`);
    expect(home.status).toBe(200);
    expect(await home.text()).toBe('portal says hello to /home');

    await expect(egressFetch(`http://portal.example.test:${portalPort}/go-unlisted`)).rejects.toMatchObject({ code: 'ORDERLY_E_EGRESS_REFUSED' });
    expect(refusals).toEqual([{ host: 'unlisted.example.test', port: 80, reason: 'not-listed' }]);
    expect(lookup.mock.calls.map(([host]) => host as string)).not.toContain('unlisted.example.test');
  });

  it('accepts a global Request in ctx.fetch', async () => {
    proxy.setPolicy({ hosts: [`portal.example.test:${portalPort}`] });
    const egressFetch = createEgressFetch(bridgeProxyUrl(bridge.port));
    const response = await egressFetch(new Request(`http://portal.example.test:${portalPort}/from-request`, { method: 'POST', body: 'fake body' }));
    expect(await response.text()).toBe('portal says hello to /from-request');
  });

  it('refuses a policy with a host that is not a manifest pattern, and then refuses everything', async () => {
    proxy.setPolicy({ hosts: [`127.0.0.1:${portalPort}`] });
    expect(() => proxy.setPolicy({ hosts: [`127.0.0.1:${portalPort}`, 'http://portal.example.test/'] })).toThrow(
      expect.objectContaining({ code: 'ORDERLY_E_MANIFEST_INVALID' }),
    );
    const { text } = await exchange(socketPath, `GET http://127.0.0.1:${portalPort}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 403 /);
    expect(refusals).toEqual([{ host: '127.0.0.1', port: portalPort, reason: 'no-policy' }]);
  });

  it('gives the socket to the slot user when asked', async () => {
    // chown to another uid needs root (the runner that passes socketOwner has it); otherwise our own ids.
    const root = process.getuid?.() === 0;
    const owner = root ? { uid: 65534, gid: 65534 } : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    const owned = await startEgressProxy({ socketPath: join(dir, 'owned.sock'), socketOwner: owner, infrastructure: [], lookup });
    try {
      const info = await stat(join(dir, 'owned.sock'));
      expect([info.uid, info.gid, info.mode & 0o777]).toEqual([owner.uid, owner.gid, 0o600]);
    } finally {
      await owned.close();
    }
  });

  it('refuses to start when an infrastructure name does not resolve', async () => {
    await expect(
      startEgressProxy({ socketPath: join(dir, 'x.sock'), infrastructure: [{ host: 'vault.nowhere.test', port: 8200 }], lookup }),
    ).rejects.toMatchObject({ code: 'ORDERLY_E_CONFIG_INVALID' });
  });

  it('closes a tunnel that stays idle, and gives up on a lookup that never answers', async () => {
    const hanging = jest.fn((host: string) =>
      host === 'slow.example.test' ? new Promise<never>(() => undefined) : Promise.resolve([{ address: '127.0.0.1', family: 4 as const }]),
    );
    const quick = await startEgressProxy({
      socketPath: join(dir, 'quick.sock'),
      infrastructure: [],
      lookup: hanging,
      idleTimeoutMs: 300,
      connectTimeoutMs: 300,
    });
    try {
      quick.setPolicy({ hosts: [`127.0.0.1:${echoPort}`, 'slow.example.test'] });
      const { text, socket } = await exchange(join(dir, 'quick.sock'), `CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\n\r\n`, headersDone);
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
      const started = Date.now();
      await new Promise((resolve) => socket.once('close', resolve));
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      const slow = await exchange(join(dir, 'quick.sock'), `CONNECT slow.example.test:443 HTTP/1.1\r\n\r\n`);
      expect(slow.text).toMatch(/^HTTP\/1\.1 502 /);
    } finally {
      await quick.close();
    }
  });

  it('survives an onRefused observer that throws', async () => {
    const touchy = await startEgressProxy({
      socketPath: join(dir, 'touchy.sock'),
      infrastructure: [],
      lookup,
      onRefused: () => {
        throw new Error('observer failed');
      },
    });
    try {
      for (let i = 0; i < 2; i += 1) {
        const { text } = await exchange(join(dir, 'touchy.sock'), 'CONNECT unlisted.example.test:443 HTTP/1.1\r\n\r\n');
        expect(text).toMatch(/^HTTP\/1\.1 403 /);
      }
      expect(touchy.refusals()).toBe(2);
    } finally {
      await touchy.close();
    }
  });

  it('close() is idempotent and removes the socket', async () => {
    await Promise.all([proxy.close(), proxy.close()]);
    await expect(stat(socketPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
