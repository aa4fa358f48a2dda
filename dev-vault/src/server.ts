import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { BlockList, createServer as createNetServer, isIPv4, isIPv6, type AddressInfo, type Socket } from 'node:net';
import { z } from 'zod';
import { OrderlyError } from '@orderly/shared';
import { DevVaultCore, errorAnswer, type HttpAnswer } from './core';
import type { Operation, VaultRequest } from './types';
import { newTokenId, newUuid, parseDurationSeconds } from './util';

export interface DevVaultOptions {
  /** Default 8200 like `vault server -dev`; 0 picks a free port. */
  port?: number;
  /** Loopback only: 127.0.0.0/8, ::1 or localhost (default 127.0.0.1). */
  host?: string;
  /** Default: a fresh random `hvs.` token. */
  rootToken?: string;
  /** Clock in epoch milliseconds; tests move it to expire tokens without sleeping. */
  now?: () => number;
}

export interface DevVault {
  /** `http://127.0.0.1:<port>` (or `http://[::1]:<port>`), what VAULT_ADDR should be. */
  address: string;
  rootToken: string;
  /** Base64 of the single unseal key (sys/unseal accepts it base64 or hex). */
  unsealKey: string;
  /** Idempotent: stops listening and drops open connections. */
  close(): Promise<void>;
  seal(): void;
  unseal(): void;
}

/** Every request body is a JSON object; its fields are parsed per endpoint (util.ts field readers). */
const RequestBody = z.record(z.string(), z.unknown());

/** Vault's default max_request_size. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/**
 * The address to bind, or an error for anything but loopback: the dev Vault keeps secrets in
 * memory behind a printed root token, so it must never be reachable from another machine.
 * `localhost` is bound as 127.0.0.1 rather than resolved, so a hosts-file entry cannot widen it.
 */
export function loopbackBindAddress(host: string): string {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return '127.0.0.1';
  if (isIPv4(h) && loopback.check(h, 'ipv4')) return h;
  if (isIPv6(h) && !h.includes('.') && loopback.check(h, 'ipv6')) return '::1';
  throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `the dev Vault binds only to loopback (127.0.0.0/8, ::1 or localhost); refusing to bind "${host}"`, {
    host,
  });
}

function isLoopbackAddress(address: string): boolean {
  return (isIPv4(address) && loopback.check(address, 'ipv4')) || (isIPv6(address) && loopback.check(address, 'ipv6'));
}

/** Starts the in-memory Vault; resolves once it is listening. Prints and logs nothing. */
export async function startDevVault(options: DevVaultOptions = {}): Promise<DevVault> {
  const bindAddress = loopbackBindAddress(options.host ?? '127.0.0.1');
  const rootToken = options.rootToken ?? newTokenId('service');
  if (rootToken.trim() === '') throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', 'the dev Vault root token must not be empty');
  const unsealKey = randomBytes(32);
  const core = new DevVaultCore(options.now ?? Date.now, rootToken, unsealKey);

  /*
   * Node's HTTP parser rejects the LIST method Vault clients send. The first bytes of every
   * connection are read here: a leading "LIST " becomes "GET " and the socket is marked, and
   * every answer closes its connection, so each connection carries exactly one request and the
   * mark can never apply to a later one.
   */
  const listSockets = new WeakMap<Socket, { used: boolean }>();
  const sockets = new Set<Socket>();
  const http = createHttpServer((req, res) => {
    void serve(core, req, res, listSockets);
  });
  const net = createNetServer({ pauseOnConnect: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let head = Buffer.alloc(0);
    const onReadable = (): void => {
      for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) head = Buffer.concat([head, chunk]);
      if (head.length < 5 && !socket.readableEnded) return;
      socket.off('readable', onReadable);
      socket.off('end', onReadable);
      if (head.subarray(0, 5).toString('latin1') === 'LIST ') {
        listSockets.set(socket, { used: false });
        head = Buffer.concat([Buffer.from('GET ', 'latin1'), head.subarray(5)]);
      }
      if (head.length > 0) socket.unshift(head);
      http.emit('connection', socket);
    };
    socket.on('readable', onReadable);
    socket.on('end', onReadable);
  });

  await new Promise<void>((resolve, reject) => {
    net.once('error', reject);
    net.listen(options.port ?? 8200, bindAddress, () => {
      net.off('error', reject);
      resolve();
    });
  });
  const bound = net.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      net.close(() => resolve());
      for (const socket of sockets) socket.destroy();
      http.closeAllConnections();
    });
    return closing;
  };
  if (!isLoopbackAddress(bound.address)) {
    await close();
    throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', 'the dev Vault ended up on a non-loopback address and shut down', { host: bound.address });
  }
  const hostPart = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    address: `http://${hostPart}:${bound.port}`,
    rootToken,
    unsealKey: unsealKey.toString('base64'),
    close,
    seal: () => {
      core.sealed = true;
    },
    unseal: () => {
      core.sealed = false;
    },
  };
}

function readBody(req: IncomingMessage): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        resolve('too-large');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, answer: HttpAnswer): void {
  res.statusCode = answer.status;
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Connection', 'close');
  if (answer.body === undefined) {
    res.end();
    return;
  }
  res.setHeader('Content-Type', 'application/json');
  res.end(answer.body);
}

async function serve(core: DevVaultCore, req: IncomingMessage, res: ServerResponse, listSockets: WeakMap<Socket, { used: boolean }>): Promise<void> {
  try {
    const mark = listSockets.get(req.socket);
    const isList = mark !== undefined && !mark.used;
    if (mark) mark.used = true;
    const parsed = await parseRequest(req, isList);
    send(res, 'status' in parsed ? parsed : core.handle(parsed));
  } catch {
    if (!res.headersSent) send(res, errorAnswer(500, ['internal error']));
  }
}

async function parseRequest(req: IncomingMessage, isList: boolean): Promise<VaultRequest | HttpAnswer> {
  const url = new URL(req.url ?? '/', 'http://dev-vault.invalid');
  if (!url.pathname.startsWith('/v1/')) return errorAnswer(404, []);
  let segments: string[];
  try {
    segments = url.pathname
      .slice(4)
      .split('/')
      .map((s) => decodeURIComponent(s));
  } catch {
    return errorAnswer(400, ['invalid path encoding']);
  }
  // Dot segments could walk around an ACL rule; Vault never routes them either.
  if (segments.some((s) => s === '.' || s === '..')) return errorAnswer(404, []);
  let path = segments.join('/');

  const method = isList ? 'LIST' : (req.method ?? 'GET').toUpperCase();
  const listParam = url.searchParams.get('list');
  let operation: Operation;
  switch (method) {
    case 'GET':
    case 'HEAD':
      operation = listParam === 'true' || listParam === '1' ? 'list' : 'read';
      break;
    case 'LIST':
      operation = 'list';
      break;
    case 'POST':
    case 'PUT':
      operation = 'create';
      break;
    case 'DELETE':
      operation = 'delete';
      break;
    case 'PATCH':
      operation = 'patch';
      break;
    default:
      return errorAnswer(405, ['unsupported operation']);
  }
  // Vault lists directories: a LIST path always ends in a slash.
  if (operation === 'list' && !path.endsWith('/')) path += '/';

  let body: Record<string, unknown> = {};
  if (method === 'POST' || method === 'PUT' || method === 'PATCH' || method === 'DELETE') {
    const raw = await readBody(req);
    if (raw === 'too-large') return errorAnswer(413, ['http: request body too large']);
    const text = raw.toString('utf8').trim();
    if (text !== '') {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return errorAnswer(400, ['failed to parse JSON input: invalid JSON']);
      }
      const parsed = RequestBody.safeParse(value);
      if (!parsed.success) return errorAnswer(400, ['failed to parse JSON input: expected a JSON object']);
      body = parsed.data;
    }
  } else {
    req.resume();
  }

  const header = (name: string): string | undefined => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const authorization = header('authorization');
  const token = header('x-vault-token') ?? (authorization?.startsWith('Bearer ') === true ? authorization.slice(7).trim() : undefined);
  const wrapHeader = header('x-vault-wrap-ttl');
  let wrapTtlSeconds: number | undefined;
  if (wrapHeader !== undefined && wrapHeader !== '') {
    wrapTtlSeconds = parseDurationSeconds(wrapHeader);
    if (wrapTtlSeconds === undefined) return errorAnswer(400, ['error parsing wrap TTL']);
  }
  return {
    path,
    operation,
    query: url.searchParams,
    body,
    token,
    remoteAddress: req.socket.remoteAddress ?? '',
    wrapTtlSeconds,
    requestId: newUuid(),
    isHead: method === 'HEAD',
  };
}
