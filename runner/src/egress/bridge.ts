import { Server, Socket, connect, createServer } from 'node:net';

/**
 * Runs inside the sandbox, whose network namespace has only its own loopback: a TCP listener on
 * 127.0.0.1 that pipes every connection, byte for byte, to the egress proxy's Unix socket (bind-
 * mounted into the sandbox). Chromium and HTTP(S)_PROXY clients speak to a TCP proxy; the bridge
 * understands nothing of HTTP and decides nothing: the proxy outside checks every request.
 */
export async function bridgeLoopbackToSocket(socketPath: string): Promise<{ port: number; close(): Promise<void> }> {
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(socketPath);
    open.add(client);
    open.add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of open) socket.destroy();
        open.clear();
      });
      return closing;
    },
  };
}

/** The proxy URL of a bridge on `port`. */
export function bridgeProxyUrl(port: number): string {
  return `http://127.0.0.1:${port}`;
}

/**
 * Environment for libraries inside the sandbox that honour proxy variables. NO_PROXY is empty
 * on purpose: loopback inside the sandbox reaches nothing, so every destination, loopback too,
 * goes through the proxy (which lets loopback through only when the manifest lists it).
 */
export function proxyEnvironment(port: number): Record<string, string> {
  const url = bridgeProxyUrl(port);
  const env: Record<string, string> = {};
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY']) {
    env[name] = url;
    env[name.toLowerCase()] = url;
  }
  env.NO_PROXY = '';
  env.no_proxy = '';
  return env;
}

/**
 * Chromium flags sending every request through the bridge. `<-loopback>` removes Chromium's
 * implicit direct route for localhost, and WebRTC may not use UDP outside the proxy (there is no
 * route for it anyway; this keeps Chromium from trying).
 */
export function chromiumProxyArgs(port: number): string[] {
  return [`--proxy-server=${bridgeProxyUrl(port)}`, '--proxy-bypass-list=<-loopback>', '--force-webrtc-ip-handling-policy=disable_non_proxied_udp'];
}
