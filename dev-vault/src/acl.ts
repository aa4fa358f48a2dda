import type { Operation } from './types';

/**
 * ACL policies: a parser for the HCL subset Orderly writes (`path "glob" { capabilities = [...] }`)
 * and Vault's rule-selection semantics. Anything else in a policy (allowed_parameters,
 * min_wrapping_ttl, ...) is refused at write time: silently ignoring a restriction would make
 * the dev Vault grant more than the real one would.
 */

export const CAPABILITIES = ['create', 'read', 'update', 'delete', 'list', 'sudo', 'deny', 'patch', 'subscribe'] as const;
export type Capability = (typeof CAPABILITIES)[number];

export interface PathRule {
  /** The path as written, including a trailing `*` when it is a glob. */
  path: string;
  capabilities: Capability[];
}

export class PolicyParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyParseError';
  }
}

type Token =
  | { kind: 'string'; value: string; line: number }
  | { kind: 'ident'; value: string; line: number }
  | { kind: 'punct'; value: '{' | '}' | '[' | ']' | '=' | ','; line: number };

const UNSUPPORTED_ATTRIBUTES = new Set([
  'allowed_parameters',
  'denied_parameters',
  'required_parameters',
  'min_wrapping_ttl',
  'max_wrapping_ttl',
  'policy',
  'control_group',
  'mfa_methods',
  'subscribe_event_types',
]);

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  while (i < source.length) {
    const c = source[i] ?? '';
    if (c === '\n') {
      line += 1;
      i += 1;
      continue;
    }
    if (/\s/.test(c)) {
      i += 1;
      continue;
    }
    if (c === '#' || (c === '/' && source[i + 1] === '/')) {
      while (i < source.length && source[i] !== '\n') i += 1;
      continue;
    }
    if (c === '/' && source[i + 1] === '*') {
      const end = source.indexOf('*/', i + 2);
      if (end < 0) throw new PolicyParseError(`line ${line}: unterminated comment`);
      line += source.slice(i, end).split('\n').length - 1;
      i = end + 2;
      continue;
    }
    if (c === '"') {
      let value = '';
      i += 1;
      for (;;) {
        const d = source[i];
        if (d === undefined || d === '\n') throw new PolicyParseError(`line ${line}: unterminated string`);
        if (d === '"') {
          i += 1;
          break;
        }
        if (d === '\\') {
          const e = source[i + 1];
          const map: Record<string, string> = { '"': '"', '\\': '\\', n: '\n', t: '\t', '/': '/' };
          const mapped = e === undefined ? undefined : map[e];
          if (mapped === undefined) throw new PolicyParseError(`line ${line}: unsupported escape in string`);
          value += mapped;
          i += 2;
          continue;
        }
        value += d;
        i += 1;
      }
      tokens.push({ kind: 'string', value, line });
      continue;
    }
    if (c === '{' || c === '}' || c === '[' || c === ']' || c === '=' || c === ',') {
      tokens.push({ kind: 'punct', value: c, line });
      i += 1;
      continue;
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(source.slice(i));
    if (ident) {
      tokens.push({ kind: 'ident', value: ident[0], line });
      i += ident[0].length;
      continue;
    }
    throw new PolicyParseError(`line ${line}: unexpected character ${JSON.stringify(c)}`);
  }
  return tokens;
}

/** Parses the policy text; throws PolicyParseError with a line number on anything unsupported. */
export function parsePolicy(source: string): PathRule[] {
  const tokens = tokenize(source);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const next = (what: string): Token => {
    const t = tokens[pos];
    if (t === undefined) throw new PolicyParseError(`unexpected end of policy, expected ${what}`);
    pos += 1;
    return t;
  };
  const expectPunct = (value: string): void => {
    const t = next(`"${value}"`);
    if (t.kind !== 'punct' || t.value !== value) throw new PolicyParseError(`line ${t.line}: expected "${value}"`);
  };

  const merged = new Map<string, Set<Capability>>();
  while (peek() !== undefined) {
    const keyword = next('"path"');
    if (keyword.kind !== 'ident' || keyword.value !== 'path') {
      throw new PolicyParseError(`line ${keyword.line}: only path "..." { capabilities = [...] } stanzas are supported`);
    }
    const pathToken = next('a quoted path');
    if (pathToken.kind !== 'string') throw new PolicyParseError(`line ${pathToken.line}: expected a quoted path`);
    const path = pathToken.value.replace(/^\/+/, '');
    expectPunct('{');
    let capabilities: Capability[] | undefined;
    for (;;) {
      const t = next('an attribute or "}"');
      if (t.kind === 'punct' && t.value === '}') break;
      if (t.kind !== 'ident') throw new PolicyParseError(`line ${t.line}: expected an attribute name`);
      if (UNSUPPORTED_ATTRIBUTES.has(t.value)) {
        throw new PolicyParseError(`line ${t.line}: the dev Vault does not support "${t.value}" in policies`);
      }
      if (t.value !== 'capabilities') throw new PolicyParseError(`line ${t.line}: unknown attribute "${t.value}"`);
      expectPunct('=');
      expectPunct('[');
      const list: Capability[] = [];
      for (;;) {
        const item = next('a capability or "]"');
        if (item.kind === 'punct' && item.value === ']') break;
        if (item.kind !== 'string') throw new PolicyParseError(`line ${item.line}: capabilities must be quoted strings`);
        if (!(CAPABILITIES as readonly string[]).includes(item.value)) {
          throw new PolicyParseError(`path "${path}": invalid capability "${item.value}"`);
        }
        list.push(item.value as Capability);
        const sep = peek();
        if (sep?.kind === 'punct' && sep.value === ',') pos += 1;
      }
      capabilities = list;
    }
    if (capabilities === undefined) throw new PolicyParseError(`path "${path}": missing capabilities`);
    const set = merged.get(path) ?? new Set<Capability>();
    for (const cap of capabilities) set.add(cap);
    merged.set(path, set);
  }
  return [...merged].map(([path, caps]) => ({ path, capabilities: [...caps] }));
}

interface CompiledRule {
  path: string;
  caps: Set<Capability>;
  isPrefix: boolean;
  /** Position of the first `+` or `*`; later means more specific (Vault's rule 1). */
  firstWildcard: number;
  wildcards: number;
  parts: string[];
}

/** Vault's priority order: true when `a` is less specific than `b` (acl.go, "Priority"). */
function lowerPriority(a: CompiledRule, b: CompiledRule): boolean {
  if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard < b.firstWildcard;
  if (a.isPrefix !== b.isPrefix) return a.isPrefix;
  if (a.wildcards !== b.wildcards) return a.wildcards > b.wildcards;
  if (a.path.length !== b.path.length) return a.path.length < b.path.length;
  return a.path < b.path;
}

function segmentMatch(rule: CompiledRule, path: string): boolean {
  const pathParts = path.split('/');
  if (rule.parts.length > pathParts.length) return false;
  if (rule.parts.length < pathParts.length && !rule.isPrefix) return false;
  return rule.parts.every((part, i) => {
    const actual = pathParts[i] ?? '';
    if (part === '+') return true;
    if (i === rule.parts.length - 1 && rule.isPrefix) return actual.startsWith(part);
    return part === actual;
  });
}

/**
 * The effective ACL of a token: the union of its policies' rules, merged per path string (deny
 * in any of them wins for that path), then the single most specific matching rule decides.
 */
export class Acl {
  private readonly exact = new Map<string, Set<Capability>>();
  private readonly nonExact: CompiledRule[] = [];

  constructor(
    policies: readonly (readonly PathRule[])[],
    private readonly root = false,
  ) {
    const merged = new Map<string, Set<Capability>>();
    for (const rules of policies) {
      for (const rule of rules) {
        const set = merged.get(rule.path) ?? new Set<Capability>();
        for (const cap of rule.capabilities) set.add(cap);
        merged.set(rule.path, set);
      }
    }
    for (const [path, caps] of merged) {
      const effective = caps.has('deny') ? new Set<Capability>(['deny']) : caps;
      const isPrefix = path.endsWith('*');
      const body = isPrefix ? path.slice(0, -1) : path;
      const plus = body.indexOf('+');
      if (!isPrefix && plus < 0) {
        this.exact.set(path, effective);
        continue;
      }
      this.nonExact.push({
        path,
        caps: effective,
        isPrefix,
        firstWildcard: plus >= 0 ? plus : body.length,
        wildcards: body.split('/').filter((p) => p === '+').length,
        parts: body.split('/'),
      });
    }
  }

  /** Capabilities the most specific matching rule grants on `path` (empty when none match). */
  capabilities(path: string, operation?: Operation): Set<Capability> {
    if (this.root) return new Set(CAPABILITIES.filter((c) => c !== 'deny'));
    const exact = this.exact.get(path) ?? (operation === 'list' ? this.exact.get(path.replace(/\/$/, '')) : undefined);
    if (exact) return exact;
    let best: CompiledRule | undefined;
    for (const rule of this.nonExact) {
      const matches = rule.parts.includes('+') ? segmentMatch(rule, path) : path.startsWith(rule.path.slice(0, -1));
      if (matches && (best === undefined || lowerPriority(best, rule))) best = rule;
    }
    return best?.caps ?? new Set();
  }

  /** Deny by default; `deny` beats everything; root-protected paths also need `sudo`. */
  allows(path: string, operation: Operation, needsSudo: boolean): boolean {
    if (this.root) return true;
    const caps = this.capabilities(path, operation);
    if (caps.has('deny')) return false;
    if (needsSudo && !caps.has('sudo')) return false;
    return caps.has(operation);
  }
}

/** Vault's built-in `default` policy, trimmed to the endpoints the dev Vault serves. */
export const DEFAULT_POLICY = `# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
`;

/** The policy Vault gives wrapping tokens: they can only be unwrapped (and looked up). */
export const RESPONSE_WRAPPING_POLICY = `path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
`;
