/**
 * The manifest's `hosts` allow-list, as one matcher shared by the browser's route filter and the
 * egress proxy. Patterns are `host`, `host:port`, `*.domain`, `*.domain:port`, `[v6]` and
 * `[v6]:port` (see HostPattern in shared/src/package/manifest.ts); a pattern without a port allows
 * every port. Names compare after the WHATWG URL parser's canonical form, so `0x7f.1`, `2130706433`
 * and `127.0.0.1` are one host, as are `[::1]` and `[0:0::1]`: a bot cannot pass the list by
 * spelling an address another way.
 */

export interface HostPatternParts {
  /** Canonical host: lower-case name, dotted IPv4, or bracketed canonical IPv6. */
  readonly host: string;
  /** True for `*.domain`: `host` is then the domain (without `*.`), matched by its subdomains only. */
  readonly wildcard: boolean;
  /** undefined: every port. */
  readonly port: number | undefined;
}

const NAME = /^[a-z0-9.-]+$/i;
const IPV6_LITERAL = /^\[[0-9a-f:.]+\]$/i;

/** The canonical host form of a name or literal (bracketed for IPv6), or undefined when it is not one. */
export function canonicalHost(host: string): string | undefined {
  if (host === '' || (!NAME.test(host) && !IPV6_LITERAL.test(host))) return undefined;
  try {
    const parsed = new URL(`http://${host}/`);
    return parsed.hostname === '' ? undefined : parsed.hostname;
  } catch {
    return undefined;
  }
}

/** Splits a manifest host pattern; undefined when it is not one. */
export function parseHostPattern(pattern: string): HostPatternParts | undefined {
  const match = /^(\*\.)?([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/i.exec(pattern);
  if (!match) return undefined;
  const [, star, rawHost = '', rawPort] = match;
  const port = rawPort === undefined ? undefined : Number(rawPort);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  if (star !== undefined && rawHost.startsWith('[')) return undefined;
  const host = canonicalHost(rawHost);
  if (host === undefined) return undefined;
  return { host, wildcard: star !== undefined, port };
}

/** True when the pattern allows `host` (canonical form) on `port`. */
export function patternMatches(pattern: HostPatternParts, host: string, port: number): boolean {
  if (pattern.port !== undefined && pattern.port !== port) return false;
  if (pattern.wildcard) return host.endsWith(`.${pattern.host}`) && host.length > pattern.host.length + 1;
  return host === pattern.host;
}

/** An allow-list parsed once, for the many checks a run makes. Unparseable patterns allow nothing. */
export class HostAllowList {
  private readonly patterns: readonly HostPatternParts[];

  constructor(hosts: readonly string[]) {
    this.patterns = hosts.map(parseHostPattern).filter((p): p is HostPatternParts => p !== undefined);
  }

  /** True when some pattern (exact or wildcard) allows `host` on `port`. */
  allows(host: string, port: number): boolean {
    const canonical = canonicalHost(host);
    return canonical !== undefined && this.patterns.some((p) => patternMatches(p, canonical, port));
  }

  /**
   * True when an exact pattern (a name or an IP literal, never a wildcard) names `host` on `port`.
   * Only such a listing lets a connection reach a loopback, private, link-local or metadata address:
   * `*.example.test` must not become a way into the runner's own network through a hostile DNS answer.
   */
  listsExactly(host: string, port: number): boolean {
    const canonical = canonicalHost(host);
    return canonical !== undefined && this.patterns.some((p) => !p.wildcard && patternMatches(p, canonical, port));
  }
}

/** The default port of a URL scheme the allow-list knows, or undefined for any other scheme. */
function defaultPort(protocol: string): number | undefined {
  if (protocol === 'http:' || protocol === 'ws:') return 80;
  if (protocol === 'https:' || protocol === 'wss:') return 443;
  return undefined;
}

/** True when `url` may be loaded under the manifest's host allow-list. */
export function isAllowedUrl(url: string, hosts: readonly string[]): boolean {
  if (/^(about|data|blob):/.test(url)) return true;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  const fallback = defaultPort(parsed.protocol);
  if (fallback === undefined) return false;
  const port = parsed.port === '' ? fallback : Number(parsed.port);
  return new HostAllowList(hosts).allows(parsed.hostname, port);
}
