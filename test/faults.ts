import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo, createServer as createTcpServer, connect, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from '@orderly/shared/testing';

/** Tools for fault tests: a Redis of the test's own, a TCP link that can be cut, a side-effect ledger. */

async function freePort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** SIGKILLs a child process (a crash, not a close) and waits for its exit; one already gone is left alone. */
async function killHard(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGKILL');
  await exited;
}
export interface OwnRedis {
  url: string;
  /** SIGKILL: no shutdown save; only what the append-only file already holds survives. */
  kill(): Promise<void>;
  /** Starts redis-server again on the same port and data directory. */
  start(): Promise<void>;
  /** Whether redis-server is running (not killed by the test). */
  readonly running: boolean;
  /** How many client connections it holds now, not counting the one that asks. */
  clients(): Promise<number>;
  close(): Promise<void>;
}

/**
 * A redis-server of the test's own, configured as production must be: append-only file, fsync on
 * every write (or every second, `everysec`, the setting the README documents as the production
 * floor), no RDB snapshots (so a restart recovers from the AOF alone).
 */
export async function startOwnRedis(options: { appendfsync?: 'always' | 'everysec' } = {}): Promise<OwnRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'orderly-redis-'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const start = async () => {
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        options.appendfsync ?? 'always',
        '--save',
        '',
        '--protected-mode',
        'no',
      ],
      { stdio: 'ignore' },
    );
    child = proc;
    await waitFor(
      async () => {
        const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        probe.on('error', () => undefined);
        try {
          await probe.connect();
          return (await probe.ping()) === 'PONG' ? true : undefined;
        } catch {
          return undefined;
        } finally {
          probe.disconnect();
        }
      },
      10_000,
      'redis-server to accept connections',
    );
  };
  const kill = async () => {
    const proc = child;
    child = undefined;
    await killHard(proc);
  };
  await start();
  return {
    url,
    kill,
    start,
    get running() {
      return child !== undefined;
    },
    async clients() {
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        const list = (await probe.call('CLIENT', 'LIST')) as string;
        return list.split('\n').filter(Boolean).length - 1;
      } finally {
        probe.disconnect();
      }
    },
    async close() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CuttableLink {
  /** host:port that forwards to the target while the link is up. */
  address: string;
  /** Drops every open connection and refuses new ones until `restore`. */
  cut(): void;
  /**
   * A partition that drops packets rather than refusing: open connections and new ones stay
   * open, but nothing gets through either way, so a caller without a timeout of its own hangs.
   * `restore` then drops the stalled connections (they outlived the partition).
   */
  stall(): void;
  restore(): void;
  close(): Promise<void>;
}

/**
 * A `mapDatabaseUrl` for `startStack`: the control room reaches PostgreSQL through a link the test
 * can cut, handed to `onLink` once it is up.
 */
export function throughCuttableLink(onLink: (link: CuttableLink) => void): (url: string) => Promise<string> {
  return async (url) => {
    const proxied = new URL(url);
    const link = await startCuttableLink({ host: proxied.hostname, port: Number(proxied.port || 5432) });
    onLink(link);
    proxied.host = link.address;
    return proxied.toString();
  };
}

/** A TCP forwarder to `target` (host:port) that a test can cut, as a network partition would. */
export async function startCuttableLink(target: { host: string; port: number }): Promise<CuttableLink> {
  let state: 'up' | 'cut' | 'stalled' = 'up';
  const sockets = new Set<Socket>();
  const pairs = new Set<[Socket, Socket]>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  };
  const dropAll = () => {
    for (const socket of sockets) socket.destroy();
  };
  const server = createTcpServer((client) => {
    if (state === 'cut') {
      client.destroy();
      return;
    }
    track(client);
    if (state === 'stalled') return; // accepted, never answered
    const upstream = connect(target.port, target.host);
    track(upstream);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream).pipe(client);
    client.on('close', () => (upstream.destroy(), pairs.delete(pair)));
    upstream.on('close', () => (client.destroy(), pairs.delete(pair)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    cut() {
      state = 'cut';
      dropAll();
    },
    stall() {
      state = 'stalled';
      // Bytes in flight either way are read and thrown away: nothing reaches the other side.
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.on('data', () => undefined);
        upstream.on('data', () => undefined);
      }
    },
    restore() {
      if (state === 'stalled') dropAll();
      state = 'up';
    },
    close() {
      state = 'cut';
      dropAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export interface Ledger {
  url: string;
  /** How many times each key was recorded. */
  counts(): Record<string, number>;
  /**
   * Holds the answer to the next `/record` of `key`: the side effect is recorded when the request
   * arrives, then the answer waits for `release()`. So a test can strike in the window after a
   * side effect and before the bot knows it happened (and so before its step is completed), every
   * time, instead of hoping a random moment falls into it. `arrived` resolves once it is held.
   *
   * Never a hang: `arrived` rejects if the request has not come within `timeoutMs` (45 s unless
   * set), and an answer held that long without `release()` is answered 503, so the bot fails
   * (and the test with it) instead of the suite waiting for Jest's timeout.
   *
   * `disconnected` resolves once the connection that carried the held request closes (the bot's
   * browser went away: the bot ended and its browser context was closed, or its host was killed).
   */
  holdNext(key: string, path?: '/record' | '/after', timeoutMs?: number): { arrived: Promise<void>; release(): void; disconnected: Promise<void> };
  close(): Promise<void>;
}

/**
 * A target system with a side effect: `GET /record?key=K` records K once more; `GET /count?key=K`
 * answers how many times K was recorded (a bot's `onUncertain.verify` asks it); `GET /after?key=K`
 * records nothing (the ledger bot visits it after its step, a moment a test can hold too).
 */
export const LEDGER_HOLD_TIMEOUT_MS = 45_000;

export async function startLedger(): Promise<Ledger> {
  const counts: Record<string, number> = {};
  const holds = new Map<string, { arrived: () => void; disconnected: () => void; released: Promise<'released' | 'timed out'> }>(); // by `${path} ${key}`
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://ledger');
    const key = url.searchParams.get('key');
    const answer = (body: string) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(body);
    };
    if (url.pathname === '/count' && key) return answer(`<p id="count">${counts[key] ?? 0}</p>`);
    if ((url.pathname === '/record' || url.pathname === '/after') && key) {
      if (url.pathname === '/record') counts[key] = (counts[key] ?? 0) + 1;
      const hold = holds.get(`${url.pathname} ${key}`);
      if (hold) {
        holds.delete(`${url.pathname} ${key}`);
        hold.arrived();
        if (req.socket.destroyed) hold.disconnected();
        else req.socket.once('close', hold.disconnected);
        void hold.released.then((how) => {
          if (how === 'released') return answer('<p id="recorded">ok</p>');
          res.writeHead(503, { 'content-type': 'text/html' });
          res.end(`<p id="error">ledger hold of ${url.pathname} ${key} never released</p>`);
        });
        return;
      }
    }
    answer('<p id="recorded">ok</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    holdNext(key, path = '/record', timeoutMs = LEDGER_HOLD_TIMEOUT_MS) {
      const id = `${path} ${key}`;
      let arrived!: () => void;
      let notArrived!: (err: Error) => void;
      let settle!: (how: 'released' | 'timed out') => void;
      const arrivedP = new Promise<void>((resolve, reject) => ((arrived = resolve), (notArrived = reject)));
      arrivedP.catch(() => undefined); // a test that failed before awaiting it gets no unhandled rejection
      const released = new Promise<'released' | 'timed out'>((resolve) => (settle = resolve));
      let disconnected!: () => void;
      const disconnectedP = new Promise<void>((resolve) => (disconnected = resolve));
      const timer = setTimeout(() => {
        if (holds.get(id)?.released === released) {
          holds.delete(id);
          notArrived(new Error(`ledger hold of ${id}: no request came within ${timeoutMs} ms (the bot never reached the window)`));
        }
        settle('timed out');
      }, timeoutMs);
      timer.unref();
      holds.set(id, {
        arrived: () => {
          clearTimeout(timer);
          arrived();
          setTimeout(() => settle('timed out'), timeoutMs).unref();
        },
        disconnected: () => disconnected(),
        released,
      });
      return {
        arrived: arrivedP,
        disconnected: disconnectedP,
        release: () => {
          clearTimeout(timer);
          settle('released');
        },
      };
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface ControlRoomProcess {
  url: string;
  /** SIGKILL: a crash, not a graceful close (no drain, no cleanup, open transactions cut). */
  kill(): Promise<void>;
  /** Starts `orderly control-room serve` again with the same environment and port. */
  start(): Promise<void>;
  close(): Promise<void>;
  /** The running process's id (undefined while stopped). */
  pid(): number | undefined;
}

/**
 * The control room as a child process (`orderly control-room serve`, from dist), on a fixed free
 * port so that a restart keeps its URL, so a test can SIGKILL it as a crash would.
 */
export async function startControlRoomProcess(bin: string, env: Record<string, string | undefined>): Promise<ControlRoomProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const start = async () => {
    const proc = spawn(bin, ['control-room', 'serve'], {
      env: { PATH: process.env.PATH, HOME: env.ORDERLY_DATA_DIR, ORDERLY_LOG_LEVEL: 'warn', ...env, ORDERLY_PORT: String(port), ORDERLY_HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let stderr = '';
    proc.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      proc.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (out.includes('control room listening on')) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`control room process exited (${code}) before listening: ${stderr}`)));
    });
  };
  const kill = async () => {
    const proc = child;
    child = undefined;
    await killHard(proc);
  };
  await start();
  return {
    url,
    kill,
    start,
    pid: () => child?.pid,
    async close() {
      const proc = child;
      child = undefined;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
