import { networkInterfaces } from 'node:os';
import { AddressClass, NormalizedAddress, addressKey, classifyAddress, classifyNormalized, normalizeAddress } from './address-class';
import { HostAllowList, canonicalHost } from './allow-list';

/** Why the proxy refused a connection; logged and counted on the run (never with a path or query). */
export type EgressRefusalReason =
  /** No run's policy is loaded (a pre-warmed sandbox, or between runs): everything is refused. */
  | 'no-policy'
  /** The manifest's `hosts` do not allow this host and port; the name was never resolved. */
  | 'not-listed'
  /** The name resolves only to loopback, private, link-local, metadata or other non-public addresses the manifest does not name exactly. */
  | 'blocked-address'
  /** The destination is the runner's own infrastructure (Redis, control room, Vault): refused whatever the manifest says. */
  | 'infrastructure'
  /** A tunnel to a listed host whose TLS ClientHello asks for an unlisted name (SNI), or cannot be read. */
  | 'tls-name-not-listed'
  /** The sandbox already holds the maximum number of open connections. */
  | 'too-many-tunnels';

export type EgressLookup = (host: string) => Promise<Array<{ address: string; family: 4 | 6 }>>;

/** One infrastructure endpoint, resolved once at proxy start. */
export interface InfrastructureAddress {
  readonly name: string | undefined;
  readonly address: NormalizedAddress;
  readonly port: number;
}

export type Decision =
  | { readonly allowed: true; readonly addresses: readonly string[] }
  | { readonly allowed: false; readonly reason: EgressRefusalReason }
  /** A listed name that does not resolve: not a refusal, the destination does not exist. */
  | { readonly allowed: false; readonly reason: 'unresolvable' };

const LOCAL_CLASSES: ReadonlySet<AddressClass> = new Set(['loopback', 'unspecified']);

/** The addresses of this machine's own interfaces, normalized (an unspecified infrastructure bind listens on each). */
function ownInterfaceKeys(): Set<string> {
  const keys = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) {
      const n = normalizeAddress(entry.address);
      if (n) keys.add(addressKey(n));
    }
  }
  return keys;
}

/**
 * True when a connection to `address:port` would reach an infrastructure endpoint. Every loopback
 * address (127/8, ::1, mapped forms) and 0.0.0.0 reach the same local listeners, so they count as one;
 * an endpoint bound to the unspecified address listens on every local address.
 */
export function isInfrastructure(address: NormalizedAddress, port: number, infrastructure: readonly InfrastructureAddress[]): boolean {
  const key = addressKey(address);
  const targetClass = classifyNormalized(address);
  const targetIsLocal = LOCAL_CLASSES.has(targetClass);
  let ownKeys: Set<string> | undefined;
  return infrastructure.some((endpoint) => {
    if (endpoint.port !== port) return false;
    if (addressKey(endpoint.address) === key) return true;
    const endpointClass = classifyNormalized(endpoint.address);
    if (endpointClass === 'loopback' && targetIsLocal) return true;
    if (endpointClass === 'unspecified') {
      if (targetIsLocal || targetClass !== 'public') return true;
      ownKeys ??= ownInterfaceKeys();
      return ownKeys.has(key);
    }
    return false;
  });
}

/**
 * Decides one connection. The allow-list is checked on the name BEFORE any lookup, so an unlisted
 * name is never resolved (no DNS exfiltration). A listed name is resolved once; only the addresses
 * that pass are returned, and the caller connects to those IPs (no second resolution, no rebinding).
 */
export async function decide(
  host: string,
  port: number,
  allowList: HostAllowList | undefined,
  infrastructure: readonly InfrastructureAddress[],
  lookup: EgressLookup,
): Promise<Decision> {
  if (allowList === undefined) return { allowed: false, reason: 'no-policy' };
  const canonical = canonicalHost(host);
  if (canonical === undefined || !allowList.allows(canonical, port)) return { allowed: false, reason: 'not-listed' };
  if (infrastructure.some((e) => e.name !== undefined && e.name === canonical && e.port === port)) return { allowed: false, reason: 'infrastructure' };

  const literal = normalizeAddress(canonical);
  let candidates: string[];
  if (literal) {
    candidates = [canonical.startsWith('[') ? canonical.slice(1, -1) : canonical];
  } else {
    try {
      candidates = (await lookup(canonical)).map((r) => r.address);
    } catch {
      return { allowed: false, reason: 'unresolvable' };
    }
    if (candidates.length === 0) return { allowed: false, reason: 'unresolvable' };
  }

  const exact = allowList.listsExactly(canonical, port);
  const permitted: string[] = [];
  let sawInfrastructure = false;
  for (const candidate of candidates) {
    const normalized = normalizeAddress(candidate);
    if (!normalized) continue;
    if (isInfrastructure(normalized, port, infrastructure)) {
      sawInfrastructure = true;
      continue;
    }
    const cls = classifyAddress(candidate);
    if (cls === 'invalid') continue;
    if (cls !== 'public' && !exact) continue;
    permitted.push(candidate);
  }
  if (permitted.length > 0) return { allowed: true, addresses: permitted };
  return { allowed: false, reason: sawInfrastructure ? 'infrastructure' : 'blocked-address' };
}
