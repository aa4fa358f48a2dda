import { HostAllowList, canonicalHost, isAllowedUrl, parseHostPattern } from './allow-list';

describe('parseHostPattern', () => {
  it.each([
    ['portal.example.test', { host: 'portal.example.test', wildcard: false, port: undefined }],
    ['Portal.Example.TEST:8443', { host: 'portal.example.test', wildcard: false, port: 8443 }],
    ['*.example.test', { host: 'example.test', wildcard: true, port: undefined }],
    ['*.example.test:443', { host: 'example.test', wildcard: true, port: 443 }],
    ['127.0.0.1', { host: '127.0.0.1', wildcard: false, port: undefined }],
    ['[::1]:8080', { host: '[::1]', wildcard: false, port: 8080 }],
    ['[0:0:0:0:0:0:0:1]', { host: '[::1]', wildcard: false, port: undefined }],
    ['[2001:DB8::1]', { host: '[2001:db8::1]', wildcard: false, port: undefined }],
  ])('reads %s', (pattern, parts) => {
    expect(parseHostPattern(pattern)).toEqual(parts);
  });

  it.each([
    '',
    '*',
    '*.',
    'portal.example.test:0',
    'portal.example.test:65536',
    '*.[::1]',
    'a b',
    'http://x',
    'user@host',
    'host/path',
    '[::1',
    '999999999999',
  ])('refuses %j', (pattern) => {
    expect(parseHostPattern(pattern)).toBeUndefined();
  });
});

describe('canonicalHost', () => {
  it.each([
    ['0x7f.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['LOCALHOST', 'localhost'],
    ['[::ffff:127.0.0.1]', '[::ffff:7f00:1]'],
  ])('spells %s as %s', (input, canonical) => {
    expect(canonicalHost(input)).toBe(canonical);
  });
});

describe('HostAllowList', () => {
  it.each([
    ['an exact name on any port', ['portal.example.test'], 'portal.example.test', 8443, true, true],
    ['an exact name on its port', ['portal.example.test:443'], 'portal.example.test', 443, true, true],
    ['an exact name on another port', ['portal.example.test:443'], 'portal.example.test', 80, false, false],
    ['a wildcard subdomain', ['*.example.test'], 'app.example.test', 443, true, false],
    ['the bare domain of a wildcard', ['*.example.test'], 'example.test', 443, false, false],
    ['a look-alike of a wildcard', ['*.example.test'], 'evilexample.test', 443, false, false],
    ['an IPv4 literal', ['127.0.0.1'], '127.0.0.1', 3000, true, true],
    ['an IPv4 literal spelled in hex', ['127.0.0.1'], '0x7f000001', 3000, true, true],
    ['another loopback address', ['127.0.0.1'], '127.0.0.2', 3000, false, false],
    ['localhost for 127.0.0.1', ['127.0.0.1'], 'localhost', 3000, false, false],
    ['an IPv6 literal', ['[::1]'], '[::1]', 3000, true, true],
    ['an IPv6 literal spelled long', ['[::1]'], '[0:0:0:0:0:0:0:1]', 3000, true, true],
    ['an unparseable pattern', ['http://portal.example.test'], 'portal.example.test', 80, false, false],
    ['an empty list', [], 'portal.example.test', 443, false, false],
  ])('%s', (_what, hosts, host, port, allows, exactly) => {
    const list = new HostAllowList(hosts);
    expect(list.allows(host, port)).toBe(allows);
    expect(list.listsExactly(host, port)).toBe(exactly);
  });

  it('refuses a host that is not a name or literal', () => {
    expect(new HostAllowList(['portal.example.test']).allows('portal.example.test/evil', 443)).toBe(false);
  });
});

describe('isAllowedUrl (moved here from browser/launch.ts)', () => {
  it('treats another spelling of a listed address as that address', () => {
    expect(isAllowedUrl('http://0x7f000001:8080/', ['127.0.0.1:8080'])).toBe(true);
  });

  it('refuses a scheme the allow-list does not know', () => {
    expect(isAllowedUrl('ftp://portal.example.test/', ['portal.example.test'])).toBe(false);
  });
});
