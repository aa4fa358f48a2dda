import { ProxyAgent, fetch as undiciFetch, Request as UndiciRequest } from 'undici';

/**
 * The SDK's `ctx.fetch` inside the sandbox: every request, and every redirect hop, is sent through
 * the egress proxy (undici's ProxyAgent tunnels each origin with CONNECT), so a redirect to an
 * unlisted host is checked and refused like a direct request. undici's own fetch is used, not the
 * global one: Node 20's bundled undici does not accept a dispatcher from the undici package.
 */
export function createEgressFetch(proxyUrl: string): typeof fetch {
  const dispatcher = new ProxyAgent(proxyUrl);
  const egressFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    // A global Request comes from another copy of undici; rebuild it so this fetch reads it as one.
    const target = typeof input === 'string' || input instanceof URL ? input : toUndiciRequest(input);
    return (undiciFetch(target, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher }) as unknown as Promise<Response>).catch((error: unknown) => {
      throw refusedByProxy(error) ? new EgressRefusedError(error) : error;
    });
  };
  return egressFetch as typeof fetch;
}

function toUndiciRequest(request: Request): UndiciRequest {
  const headers: Array<[string, string]> = [];
  request.headers.forEach((value, name) => headers.push([name, value]));
  const init: ConstructorParameters<typeof UndiciRequest>[1] & { duplex?: 'half' } = {
    method: request.method,
    headers,
    redirect: request.redirect,
    signal: request.signal,
  };
  if (request.body !== null) {
    init.body = request.body as unknown as NonNullable<typeof init.body>;
    init.duplex = 'half';
  }
  return new UndiciRequest(request.url, init);
}

/**
 * What ctx.fetch throws when the egress proxy refused a connection the request needed (its host, or
 * a redirect's): `code` is the stable ORDERLY_E_EGRESS_REFUSED. The message names no URL, since a
 * path or query may carry PHI.
 */
export class EgressRefusedError extends Error {
  readonly code = 'ORDERLY_E_EGRESS_REFUSED';

  constructor(cause: unknown) {
    super("the run's egress proxy refused a connection this request needed (a host, or a redirect's host, not in the manifest's hosts)", { cause });
    this.name = 'EgressRefusedError';
  }
}

/** True when undici reports that the proxy answered CONNECT with 403 (anywhere in the cause chain). */
function refusedByProxy(error: unknown): boolean {
  // Duck-typed: the chain holds a DOMException, and errors from another realm fail instanceof.
  let e: unknown = error;
  for (let depth = 0; typeof e === 'object' && e !== null && depth < 5; depth += 1) {
    const { message, cause } = e as { message?: unknown; cause?: unknown };
    if (typeof message === 'string' && /Proxy response \(403\)/.test(message)) return true;
    e = cause;
  }
  return false;
}
