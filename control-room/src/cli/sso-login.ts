import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { z } from 'zod';
import { OrderlyError } from '@orderly/shared';
import { CreatedTokenView } from '../identity/schemas';
import { ApiClient } from './api-client';
import { CliConfig } from './config';

/**
 * `orderly login --sso`: the authorization code flow with PKCE through a loopback redirect
 * (RFC 8252). The CLI listens on 127.0.0.1 on a random port and sends the person's browser to the
 * control room's `/v1/auth/sso/start` with that loopback URL and the S256 challenge of a verifier
 * only this process knows. The control room runs its own code flow with the provider (its
 * registered redirect URL, its client secret) and, signed in, redirects the browser to the
 * listener with a one-time code; the CLI redeems it with the verifier at `/v1/login/sso/token` for
 * the same kind of API token `orderly login` gets. Another local process that catches the code
 * cannot redeem it without the verifier; the provider needs no loopback client registered.
 */

/** How long the CLI waits for the browser to come back. */
export const SSO_LOGIN_TIMEOUT_MS = 5 * 60_000;
const CALLBACK_PATH = '/orderly-callback';

export interface SsoLoginRequest {
  name: string;
  expiresInDays: number;
  /** Shows the sign-in URL to the person (prints it, opens a browser). Tests drive the URL themselves. */
  openUrl: (url: string) => void | Promise<void>;
  timeoutMs?: number;
}

const page = (text: string) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Orderly</title></head><body><p>${text}</p></body></html>`;

/** Waits for one request on the listener carrying our state; answers the browser with a short page. */
function awaitCode(server: Server, state: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new OrderlyError('ORDERLY_E_BAD_REQUEST', `no sign-in came back within ${Math.round(timeoutMs / 1000)} seconds: run orderly login --sso again`)),
      timeoutMs,
    );
    server.on('request', (req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const code = url.searchParams.get('code');
      // A stray request (favicon, another page, a forged state) is answered and ignored.
      if (req.method !== 'GET' || url.pathname !== CALLBACK_PATH || url.searchParams.get('state') !== state || !code) {
        res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' }).end(page('Not an Orderly sign-in.'));
        return;
      }
      res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
        .end(page('Signed in to Orderly. You can close this tab and return to the terminal.'));
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Runs the loopback sign-in and answers the API token (not yet saved). */
export async function ssoLogin(config: CliConfig, request: SsoLoginRequest): Promise<z.infer<typeof CreatedTokenView>> {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(24).toString('base64url');
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  try {
    const { port } = server.address() as AddressInfo;
    const start = new URL('/v1/auth/sso/start', config.url);
    start.search = new URLSearchParams({ cli_redirect: `http://127.0.0.1:${port}${CALLBACK_PATH}`, cli_challenge: challenge, cli_state: state }).toString();
    const code = awaitCode(server, state, request.timeoutMs ?? SSO_LOGIN_TIMEOUT_MS);
    await request.openUrl(start.href);
    const client = new ApiClient({ url: config.url, token: undefined });
    return await client.request('POST', '/v1/login/sso/token', CreatedTokenView, {
      code: await code,
      codeVerifier: verifier,
      name: request.name,
      expiresInDays: request.expiresInDays,
    });
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Prints the URL on stderr and tries the platform's opener (a headless host just has the print). */
export function showUrl(url: string, browser: boolean): void {
  process.stderr.write(`Sign in at your identity provider in a browser:\n  ${url}\n`);
  if (!browser) return;
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // no opener: the printed URL is enough
  }
}
