import { chmod, chown, lstat, unlink } from 'node:fs/promises';
import { lookup as dnsLookup } from 'node:dns/promises';
import { IncomingMessage, Server, ServerResponse, createServer, request as httpRequest } from 'node:http';
import { Socket, connect as netConnect } from 'node:net';
import { Duplex } from 'node:stream';
import { OrderlyError } from '@orderly/shared';
import { normalizeAddress } from './address-class';
import { HostAllowList, canonicalHost, parseHostPattern } from './allow-list';
import { EgressLookup, EgressRefusalReason, InfrastructureAddress, decide } from './decide';
import { readClientHelloSni } from './tls-sni';

export type { EgressLookup, EgressRefusalReason } from './decide';

/** The stable code a refused sandbox sees in the 403 body (and the runner logs). */
export const EGRESS_REFUSED_CODE = 'ORDERLY_E_EGRESS_REFUSED';

export interface EgressRefusal {
  readonly host: string;
  readonly port: number;
  readonly reason: EgressRefusalReason;
}

export interface EgressProxyOptions {
  /** Where the proxy listens; the sandbox's only way out. Put it in a directory only the runner and the slot can enter. */
  socketPath: string;
  /** The slot's uid/gid: the socket is chowned to them (mode 0600), so only that slot can connect. */
  socketOwner?: { uid: number; gid: number };
  /** Redis, control room, Vault, ...: refused whatever the manifest says (compared by resolved IP and port). */
  infrastructure: Array<{ host: string; port: number }>;
  /** Called once per refused connection with host and port only (never a path or query). */
  onRefused?: (refusal: EgressRefusal) => void;
  /** DNS for the proxy; the system resolver by default. Tests pass one to see what is resolved. */
  lookup?: EgressLookup;
  /** Per address tried; also bounds the lookup. Default 10 s. */
  connectTimeoutMs?: number;
  /** A tunnel or request with no bytes either way for this long is closed. Default 120 s. */
  idleTimeoutMs?: number;
  /** Open upstream connections (tunnels, WebSockets, forwarded requests) at once. Default 64. */
  maxTunnels?: number;
}

export interface EgressPolicy {
  readonly hosts: readonly string[];
}

export interface EgressProxy {
  /**
   * Loads a run's manifest hosts; undefined refuses everything. Open tunnels of the previous policy
   * are closed. Throws ORDERLY_E_MANIFEST_INVALID for a host that is not a manifest pattern, and
   * then refuses everything.
   */
  setPolicy(policy: EgressPolicy | undefined): void;
  /** Connections refused since start (every reason, including the tunnel cap). */
  refusals(): number;
  /** Stops listening, closes every connection and removes the socket file. Idempotent. */
  close(): Promise<void>;
}

// RFC 9110 7.6.1 hop-by-hop fields, plus the non-standard Proxy-Connection clients still send.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

const AUTHORITY = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+):(\d{1,5})$/i;

function defaultLookup(host: string): Promise<Array<{ address: string; family: 4 | 6 }>> {
  return dnsLookup(host, { all: true, verbatim: true }).then((list) => list.map((r) => ({ address: r.address, family: r.family === 6 ? 6 : 4 })));
}

/** The end-to-end header pairs of a message: hop-by-hop fields and those its Connection header names are dropped. */
function endToEndHeaders(rawHeaders: readonly string[], drop: readonly string[] = []): string[] {
  const named = new Set(HOP_BY_HOP);
  for (const extra of drop) named.add(extra);
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === 'connection') {
      for (const token of (rawHeaders[i + 1] ?? '').split(',')) named.add(token.trim().toLowerCase());
    }
  }
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? '';
    if (!named.has(name.toLowerCase())) out.push(name, rawHeaders[i + 1] ?? '');
  }
  return out;
}

function refusalBody(host: string, port: number, reason: string): string {
  return `${EGRESS_REFUSED_CODE}: egress to ${host}:${port} is not allowed (${reason})\n`;
}

function rawResponse(status: number, text: string, body: string): string {
  return `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

function hostForHeader(host: string, port: number, defaultPort: number): string {
  return port === defaultPort ? host : `${host}:${port}`;
}

/** Connects to the first of `addresses` that answers within the timeout (each an IP: nothing is resolved here). */
function connectFirst(addresses: readonly string[], port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let index = 0;
    const attempt = (): void => {
      const address = addresses[index++];
      if (address === undefined) {
        reject(new Error('no address answered'));
        return;
      }
      const socket = netConnect({ host: address, port });
      const timer = setTimeout(() => socket.destroy(new Error('connect timeout')), timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(socket);
      });
      socket.once('error', () => {
        clearTimeout(timer);
        socket.destroy();
        attempt();
      });
    };
    attempt();
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error('lookup failed'));
      },
    );
  });
}

async function removeStaleSocket(path: string): Promise<void> {
  try {
    const stat = await lstat(path);
    if (!stat.isSocket()) throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `the egress proxy socket path exists and is not a socket: ${path}`);
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

async function resolveInfrastructure(endpoints: ReadonlyArray<{ host: string; port: number }>, lookup: EgressLookup): Promise<InfrastructureAddress[]> {
  const out: InfrastructureAddress[] = [];
  for (const endpoint of endpoints) {
    const canonical = canonicalHost(endpoint.host.startsWith('[') || !endpoint.host.includes(':') ? endpoint.host : `[${endpoint.host}]`);
    if (canonical === undefined)
      throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `an infrastructure endpoint for the egress proxy is not a host name or IP: ${endpoint.host}`);
    const literal = normalizeAddress(canonical);
    if (literal) {
      out.push({ name: undefined, address: literal, port: endpoint.port });
      continue;
    }
    // Fail closed: an infrastructure name we cannot resolve is one we could not refuse.
    let resolved: Array<{ address: string }>;
    try {
      resolved = await lookup(canonical);
    } catch (cause) {
      throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `the egress proxy cannot resolve the infrastructure host ${canonical}`, {}, { cause });
    }
    for (const r of resolved) {
      const n = normalizeAddress(r.address);
      if (n) out.push({ name: canonical, address: n, port: endpoint.port });
    }
    // `localhost` means this machine whatever a resolver says; loopback addresses count as one (decide.ts).
    if (canonical === 'localhost' || canonical.endsWith('.localhost'))
      out.push({ name: canonical, address: { family: 4, value: 0x7f000001 }, port: endpoint.port });
  }
  return out;
}

/** Starts one sandbox's egress proxy on a Unix socket; no policy is loaded until setPolicy. */
export async function startEgressProxy(options: EgressProxyOptions): Promise<EgressProxy> {
  const lookup = options.lookup ?? defaultLookup;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
  const maxTunnels = options.maxTunnels ?? 64;
  const infrastructure = await resolveInfrastructure(options.infrastructure, lookup);

  let allowList: HostAllowList | undefined;
  let epoch = 0;
  let refused = 0;
  let closed = false;
  const clients = new Set<Socket>();
  /** Upstream connections of the current policy, closed when it changes. */
  const upstreams = new Set<Duplex>();
  let pending = 0;

  const refuse = (host: string, port: number, reason: EgressRefusalReason): void => {
    refused += 1;
    try {
      options.onRefused?.({ host, port, reason });
    } catch {
      // A failing observer must not take the proxy down with it.
    }
  };

  /** Runs the decision and connects; answers the refusal itself and returns undefined when there is no connection. */
  const open = async (host: string, port: number, answer: (status: number, text: string, body: string) => void): Promise<Socket | undefined> => {
    if (upstreams.size + pending >= maxTunnels) {
      refuse(host, port, 'too-many-tunnels');
      answer(503, 'Service Unavailable', refusalBody(host, port, 'too-many-tunnels'));
      return undefined;
    }
    pending += 1;
    const started = epoch;
    try {
      let decision;
      try {
        decision = await decide(host, port, allowList, infrastructure, (name) => withTimeout(lookup(name), connectTimeoutMs));
      } catch {
        decision = { allowed: false as const, reason: 'unresolvable' as const };
      }
      if (!decision.allowed) {
        if (decision.reason === 'unresolvable') {
          answer(502, 'Bad Gateway', `egress to ${host}:${port} failed: the name does not resolve\n`);
          return undefined;
        }
        refuse(host, port, decision.reason);
        answer(403, 'Forbidden', refusalBody(host, port, decision.reason));
        return undefined;
      }
      let socket: Socket;
      try {
        socket = await connectFirst(decision.addresses, port, connectTimeoutMs);
      } catch {
        answer(502, 'Bad Gateway', `egress to ${host}:${port} failed: no address answered\n`);
        return undefined;
      }
      if (closed || started !== epoch) {
        // The policy changed while we were connecting: this connection belongs to no run.
        socket.destroy();
        answer(503, 'Service Unavailable', `egress to ${host}:${port} was cancelled: the run's policy changed\n`);
        return undefined;
      }
      upstreams.add(socket);
      socket.once('close', () => upstreams.delete(socket));
      socket.on('error', () => socket.destroy());
      socket.setTimeout(idleTimeoutMs, () => socket.destroy());
      return socket;
    } finally {
      pending -= 1;
    }
  };

  /** Either side closing or failing ends both. */
  const endTogether = (client: Duplex, upstream: Socket): void => {
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  };

  const splice = (client: Duplex, upstream: Socket): void => {
    endTogether(client, upstream);
    client.pipe(upstream);
    upstream.pipe(client);
  };

  const onConnect = (req: IncomingMessage, client: Duplex, head: Buffer): void => {
    client.on('error', () => client.destroy());
    const match = AUTHORITY.exec(req.url ?? '');
    const port = Number(match?.[2]);
    const host = match ? canonicalHost(match[1] ?? '') : undefined;
    if (!match || host === undefined || !(port >= 1 && port <= 65535)) {
      client.end(rawResponse(400, 'Bad Request', 'CONNECT needs host:port\n'));
      return;
    }
    void open(host, port, (status, text, body) => client.end(rawResponse(status, text, body)))
      .then((upstream) => {
        if (!upstream) return;
        if (client.destroyed) {
          upstream.destroy();
          return;
        }
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        checkServerName(client, upstream, host, port, head, allowList);
      })
      .catch(() => client.destroy());
  };

  /**
   * Holds the tunnel's first client bytes until the TLS server name (if any) is known: a ClientHello
   * asking for a name the manifest does not list (or one that cannot be read) closes the tunnel
   * before a byte of the client's reaches the far end. Non-TLS streams pass unchanged.
   */
  const checkServerName = (client: Duplex, upstream: Socket, host: string, port: number, head: Buffer, list: HostAllowList | undefined): void => {
    let buffered = head;
    const decideOn = (): boolean => {
      const verdict = readClientHelloSni(buffered);
      if (verdict.kind === 'need-more') return false;
      client.off('data', onData);
      const name = verdict.kind === 'sni' ? canonicalHost(verdict.name) : undefined;
      const refusedName = verdict.kind === 'malformed' || (verdict.kind === 'sni' && (name === undefined || list === undefined || !list.allows(name, port)));
      if (refusedName) {
        refuse(verdict.kind === 'sni' && name !== undefined ? name : host, port, 'tls-name-not-listed');
        client.destroy();
        upstream.destroy();
        return true;
      }
      upstream.write(buffered);
      client.pipe(upstream);
      return true;
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      decideOn();
    };
    endTogether(client, upstream);
    // The far end may speak first (SMTP, a server banner): its bytes reach the client at once.
    upstream.pipe(client);
    if (buffered.length > 0 && decideOn()) return;
    client.on('data', onData);
  };

  /** Parses an absolute-form http:// target; undefined for anything else (origin-form, https://, bad names). */
  const target = (req: IncomingMessage): { host: string; port: number; path: string } | undefined => {
    const raw = req.url ?? '';
    if (!/^http:\/\//i.test(raw)) return undefined;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return undefined;
    }
    const host = canonicalHost(url.hostname);
    if (host === undefined) return undefined;
    const port = url.port === '' ? 80 : Number(url.port);
    if (!(port >= 1 && port <= 65535)) return undefined;
    return { host, port, path: `${url.pathname}${url.search}` };
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const where = target(req);
    if (!where) {
      res
        .writeHead(400, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' })
        .end('this is a forward proxy: send absolute-form http:// requests or CONNECT host:port\n');
      return;
    }
    const answer = (status: number, text: string, body: string): void => {
      // The client's connection to the proxy is closed after a refusal: nothing it queued behind is served.
      if (!res.headersSent) res.writeHead(status, text, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end(body);
    };
    void open(where.host, where.port, answer)
      .then((upstream) => {
        if (!upstream) return;
        // Host is rewritten from the checked URL: a different Host header would let a bot reach an
        // unlisted site behind a listed one's shared front end (domain fronting).
        const headers = [...endToEndHeaders(req.rawHeaders, ['host']), 'Host', hostForHeader(where.host, where.port, 80)];
        const forward = httpRequest({ method: req.method, path: where.path, headers, createConnection: () => upstream });
        let response: IncomingMessage | undefined;
        forward.on('response', (upstreamRes) => {
          response = upstreamRes;
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, endToEndHeaders(upstreamRes.rawHeaders));
          upstreamRes.pipe(res);
          upstreamRes.on('error', () => res.destroy());
        });
        forward.on('error', () => {
          upstream.destroy();
          if (!res.headersSent) answer(502, 'Bad Gateway', `egress to ${where.host}:${where.port} failed\n`);
          else res.destroy();
        });
        // A response cut short upstream is cut short for the client too, never passed off as whole.
        upstream.on('close', () => {
          if (response !== undefined && !response.complete) res.destroy();
        });
        res.on('close', () => upstream.destroy());
        req.pipe(forward);
      })
      .catch(() => res.destroy());
  };

  const onUpgrade = (req: IncomingMessage, client: Duplex, head: Buffer): void => {
    client.on('error', () => client.destroy());
    const where = target(req);
    if (!where || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      client.end(rawResponse(400, 'Bad Request', 'only WebSocket upgrades of absolute-form http:// requests are proxied\n'));
      return;
    }
    void open(where.host, where.port, (status, text, body) => client.end(rawResponse(status, text, body)))
      .then((upstream) => {
        if (!upstream) return;
        if (client.destroyed) {
          upstream.destroy();
          return;
        }
        const kept = endToEndHeaders(req.rawHeaders, ['host']);
        const lines = [
          `${req.method ?? 'GET'} ${where.path} HTTP/1.1`,
          `Host: ${hostForHeader(where.host, where.port, 80)}`,
          'Connection: Upgrade',
          'Upgrade: websocket',
        ];
        for (let i = 0; i + 1 < kept.length; i += 2) lines.push(`${kept[i]}: ${kept[i + 1]}`);
        upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (head.length > 0) upstream.write(head);
        splice(client, upstream);
      })
      .catch(() => client.destroy());
  };

  const server: Server = createServer({ requestTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 5_000 });
  server.on('connection', (socket: Socket) => {
    clients.add(socket);
    socket.once('close', () => clients.delete(socket));
    socket.on('error', () => socket.destroy());
  });
  server.on('request', onRequest);
  server.on('connect', onConnect);
  server.on('upgrade', onUpgrade);
  server.on('clientError', (_error, socket: Duplex) => {
    if (socket.writable) socket.end(rawResponse(400, 'Bad Request', 'malformed request\n'));
    else socket.destroy();
  });
  server.timeout = idleTimeoutMs;

  await removeStaleSocket(options.socketPath);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => undefined);
  try {
    await chmod(options.socketPath, 0o600);
    if (options.socketOwner) await chown(options.socketPath, options.socketOwner.uid, options.socketOwner.gid);
  } catch (error) {
    server.close();
    await unlink(options.socketPath).catch(() => undefined);
    throw new OrderlyError(
      'ORDERLY_E_CONFIG_INVALID',
      `the egress proxy socket ${options.socketPath} could not be restricted to its sandbox`,
      {},
      { cause: error },
    );
  }

  const dropUpstreams = (): void => {
    for (const upstream of upstreams) upstream.destroy();
    upstreams.clear();
  };

  let closing: Promise<void> | undefined;
  return {
    setPolicy(policy) {
      // Whatever comes next, nothing opened under the previous policy stays open.
      allowList = undefined;
      epoch += 1;
      dropUpstreams();
      if (policy === undefined) return;
      const invalid = policy.hosts.filter((h) => parseHostPattern(h) === undefined);
      // Fail closed: a bad list leaves the proxy refusing everything, never on the previous run's list.
      if (invalid.length > 0)
        throw new OrderlyError('ORDERLY_E_MANIFEST_INVALID', 'the egress policy has hosts that are not host, host:port or *.domain patterns', {
          count: invalid.length,
        });
      allowList = new HostAllowList(policy.hosts);
    },
    refusals: () => refused,
    close() {
      closing ??= (async () => {
        closed = true;
        allowList = undefined;
        epoch += 1;
        dropUpstreams();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const client of clients) client.destroy();
        await stopped;
        await unlink(options.socketPath).catch(() => undefined);
      })();
      return closing;
    },
  };
}
