import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

/**
 * A real OpenID Connect provider (panva's oidc-provider) on a loopback port, for the single
 * sign-on tests: test accounts in a map (their groups, `amr`, and whether the provider disabled
 * them), a login form and a consent form a test drives over plain HTTP, one confidential client.
 * Refresh tokens are issued (offline_access), so the control room's leaver check can ask.
 */

type OidcProvider = InstanceType<(typeof import('oidc-provider', { with: { 'resolution-mode': 'import' } }))['default']>;

export interface TestAccount {
  username: string;
  groups: string[];
  amr: string[];
  /** Disabled at the provider: its sign-in, refresh and userinfo find no account. */
  disabled?: boolean;
}

export interface TestIdp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  accounts: Map<string, TestAccount>;
  close(): Promise<void>;
}

const readBody = (req: IncomingMessage) =>
  new Promise<URLSearchParams>((resolve, reject) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    req.on('end', () => resolve(new URLSearchParams(text)));
    req.on('error', reject);
  });

export async function startTestIdp(redirectUrl: string, clientId = 'orderly-console'): Promise<TestIdp> {
  const { default: Provider } = await import('oidc-provider');
  const accounts = new Map<string, TestAccount>();
  const clientSecret = randomBytes(24).toString('base64url');
  // Made once the port (and so the issuer) is known; the server's handler reads it at each request.
  const made: { provider?: OidcProvider } = {};

  async function interaction(req: IncomingMessage, res: ServerResponse, idp: OidcProvider): Promise<void> {
    const [, , uid, action] = (req.url ?? '').split('?')[0]!.split('/');
    if (req.method === 'GET') {
      const details = await idp.interactionDetails(req, res);
      res.setHeader('content-type', 'text/html');
      res.end(
        details.prompt.name === 'login'
          ? `<form method="post" action="/interaction/${uid}/login"><input name="login"><button>Sign in</button></form>`
          : `<form method="post" action="/interaction/${uid}/confirm"><button>Allow</button></form>`,
      );
      return;
    }
    const form = await readBody(req);
    if (action === 'login') {
      const id = form.get('login') ?? '';
      const account = accounts.get(id);
      if (!account || account.disabled) throw new Error(`no test account ${id}`);
      await idp.interactionFinished(req, res, { login: { accountId: id, amr: account.amr } }, { mergeWithLastSubmission: false });
      return;
    }
    const details = await idp.interactionDetails(req, res);
    const grant = new idp.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
    const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    await idp.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  }

  const server: Server = createServer((req, res) => {
    const idp = made.provider!;
    const handle = req.url?.startsWith('/interaction/') ? interaction(req, res, idp) : Promise.resolve(idp.callback()(req, res));
    handle.catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  made.provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUrl],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    pkce: { required: () => true },
    claims: { acr: null, auth_time: null, sid: null, openid: ['sub', 'amr'], profile: ['preferred_username', 'groups'], email: ['email'] },
    conformIdTokenClaims: false,
    findAccount: async (_ctx, id) => {
      const account = accounts.get(id);
      return account && !account.disabled
        ? { accountId: id, claims: async () => ({ sub: id, preferred_username: account.username, groups: account.groups }) }
        : undefined;
    },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    jwks: {
      keys: [{ ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid: 'idp-key-1', alg: 'RS256', use: 'sig' }],
    },
    features: { devInteractions: { enabled: false } },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600, RefreshToken: 3600 },
  });
  return { issuer, clientId, clientSecret, accounts, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** Cookies by origin (paths ignored: sending more cookies than a browser would changes nothing here). */
export class Jar {
  private readonly cookies = new Map<string, Map<string, string>>();
  header(url: URL): string {
    return [...(this.cookies.get(url.origin) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  get(url: URL, name: string): string | undefined {
    return this.cookies.get(url.origin)?.get(name);
  }
  store(url: URL, response: Response): void {
    const jar = this.cookies.get(url.origin) ?? new Map<string, string>();
    this.cookies.set(url.origin, jar);
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at).trim();
      const value = pair!.slice(at + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]!) < Date.now()));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  }
}

/**
 * A browser over plain HTTP: from `start`, follows redirects (keeping cookies), fills the
 * provider's login form with `login` and submits its consent form, until a page that is neither;
 * answers that last response (its URL, status and text) and the jar. `stopAt`: a redirect
 * target not to follow (answered as the URL, with the redirect's status).
 */
export async function browse(
  start: string,
  login: string,
  options: { jar?: Jar; stopAt?: (url: URL) => boolean } = {},
): Promise<{ url: URL; status: number; text: string; jar: Jar }> {
  const jar = options.jar ?? new Jar();
  let url = new URL(start);
  let form: URLSearchParams | undefined;
  for (let hop = 0; hop < 25; hop++) {
    const response = await fetch(url, {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: { cookie: jar.header(url), accept: 'text/html', ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(form ? { body: form.toString() } : {}),
    });
    jar.store(url, response);
    form = undefined;
    const location = response.headers.get('location');
    if (location) {
      url = new URL(location, url);
      if (options.stopAt?.(url)) return { url, status: response.status, text: '', jar };
      continue;
    }
    const text = await response.text();
    const action = /<form method="post" action="([^"]+)"/.exec(text)?.[1];
    if (response.status !== 200 || !action) return { url, status: response.status, text, jar };
    url = new URL(action, url);
    form = text.includes('name="login"') ? new URLSearchParams({ login }) : new URLSearchParams();
  }
  throw new Error('too many redirects');
}
