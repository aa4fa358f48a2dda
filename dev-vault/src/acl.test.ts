import { Acl, DEFAULT_POLICY, PolicyParseError, parsePolicy } from './acl';

const acl = (...policies: string[]): Acl => new Acl(policies.map((p) => parsePolicy(p)));

describe('parsePolicy', () => {
  it('parses path stanzas with comments, trailing commas and merges repeated paths', () => {
    const rules = parsePolicy(`
      # a comment
      path "secret/data/bots/*" { capabilities = ["read", "list",] } // trailing
      /* block
         comment */
      path "secret/data/bots/*" {
        capabilities = ["update"]
      }
      path "transit/+/orderly" { capabilities = ["update"] }
    `);
    expect(rules).toEqual([
      { path: 'secret/data/bots/*', capabilities: ['read', 'list', 'update'] },
      { path: 'transit/+/orderly', capabilities: ['update'] },
    ]);
  });

  it.each([
    ['path "a" { capabilities = ["reed"] }', /invalid capability "reed"/],
    ['path "a" { allowed_parameters = { } }', /does not support "allowed_parameters"/],
    ['path "a" { min_wrapping_ttl = "1s" }', /does not support "min_wrapping_ttl"/],
    ['path "a" { capabilities = ["read"]', /unexpected end/],
    ['path "a { capabilities = ["read"] }', /unterminated string/],
    ['name = "x"', /only path/],
    ['path "a" { }', /missing capabilities/],
  ])('refuses %s', (source, message) => {
    expect(() => parsePolicy(source)).toThrow(PolicyParseError);
    expect(() => parsePolicy(source)).toThrow(message);
  });

  it('parses the built-in default policy', () => {
    expect(parsePolicy(DEFAULT_POLICY).map((r) => r.path)).toContain('auth/token/renew-self');
  });
});

describe('Acl', () => {
  it('denies by default', () => {
    const a = acl('path "secret/data/a" { capabilities = ["read"] }');
    expect(a.allows('secret/data/b', 'read', false)).toBe(false);
    expect(a.allows('secret/data/a', 'update', false)).toBe(false);
    expect(a.allows('secret/data/a', 'read', false)).toBe(true);
    expect(new Acl([]).allows('sys/health', 'read', false)).toBe(false);
  });

  it('treats a trailing * as a prefix glob and + as exactly one segment', () => {
    const a = acl(`
      path "secret/data/bots/*" { capabilities = ["read"] }
      path "transit/encrypt/+/x" { capabilities = ["update"] }
    `);
    expect(a.allows('secret/data/bots/eligibility/portal', 'read', false)).toBe(true);
    expect(a.allows('secret/data/bots', 'read', false)).toBe(false);
    expect(a.allows('secret/data/botsx', 'read', false)).toBe(false);
    expect(a.allows('transit/encrypt/k1/x', 'update', false)).toBe(true);
    expect(a.allows('transit/encrypt/k1/k2/x', 'update', false)).toBe(false);
    expect(a.allows('transit/encrypt/k1/xy', 'update', false)).toBe(false);
  });

  it('picks the most specific rule, like Vault, rather than the union', () => {
    const a = acl(`
      path "secret/data/*" { capabilities = ["read", "update"] }
      path "secret/data/bots/*" { capabilities = ["read"] }
      path "secret/data/bots/+/admin" { capabilities = ["deny"] }
      path "secret/data/bots/x/exact" { capabilities = ["update"] }
    `);
    expect(a.allows('secret/data/other', 'update', false)).toBe(true);
    // The longer glob wins: no update under bots/.
    expect(a.allows('secret/data/bots/x/y', 'update', false)).toBe(false);
    expect(a.allows('secret/data/bots/x/y', 'read', false)).toBe(true);
    // + appears later than the glob's *, so it is more specific: deny.
    expect(a.allows('secret/data/bots/x/admin', 'read', false)).toBe(false);
    // Exact paths beat every pattern, and grant only what they list.
    expect(a.allows('secret/data/bots/x/exact', 'update', false)).toBe(true);
    expect(a.allows('secret/data/bots/x/exact', 'read', false)).toBe(false);
  });

  it('lets deny win when several policies name the same path', () => {
    const a = acl('path "secret/data/a" { capabilities = ["read", "update"] }', 'path "secret/data/a" { capabilities = ["deny"] }');
    expect(a.allows('secret/data/a', 'read', false)).toBe(false);
    const b = acl('path "secret/data/a" { capabilities = ["read"] }', 'path "secret/data/a" { capabilities = ["update"] }');
    expect(b.allows('secret/data/a', 'update', false)).toBe(true);
  });

  it('needs sudo for root-protected paths and lets root do anything', () => {
    const a = acl('path "sys/seal" { capabilities = ["update"] }', 'path "sys/auth/*" { capabilities = ["update", "sudo"] }');
    expect(a.allows('sys/seal', 'update', true)).toBe(false);
    expect(a.allows('sys/auth/approle2', 'update', true)).toBe(true);
    expect(new Acl([], true).allows('sys/seal', 'update', true)).toBe(true);
  });

  it('matches a LIST of `dir/` against an exact rule written without the slash', () => {
    const a = acl('path "secret/metadata/bots" { capabilities = ["list"] }');
    expect(a.allows('secret/metadata/bots/', 'list', false)).toBe(true);
    expect(a.allows('secret/metadata/bots/', 'read', false)).toBe(false);
  });
});
