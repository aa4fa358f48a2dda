import { isAllowedUrl } from './launch';

describe('isAllowedUrl', () => {
  it.each([
    ['an exact host', 'https://portal.example.test/login', ['portal.example.test']],
    ['an exact host over http', 'http://portal.example.test/', ['portal.example.test']],
    ['an upper-case URL host', 'https://PORTAL.Example.TEST/', ['portal.example.test']],
    ['an upper-case pattern', 'https://portal.example.test/', ['Portal.Example.Test']],
    ['one of several patterns', 'https://b.example.test/', ['a.example.test', 'b.example.test']],
    ['host:port', 'http://127.0.0.1:8080/members', ['127.0.0.1:8080']],
    ['host:443 for https without a port', 'https://portal.example.test/', ['portal.example.test:443']],
    ['host:80 for http without a port', 'http://portal.example.test/', ['portal.example.test:80']],
    ['host:443 for wss without a port', 'wss://portal.example.test/socket', ['portal.example.test:443']],
    ['an explicit default port', 'https://portal.example.test:443/', ['portal.example.test:443']],
    ['*.domain for a subdomain', 'https://app.example.test/', ['*.example.test']],
    ['*.domain for a deeper subdomain', 'https://a.b.example.test/', ['*.example.test']],
    ['*.domain:port', 'https://app.example.test:8443/', ['*.example.test:8443']],
    ['an IPv6 literal', 'http://[::1]/', ['[::1]']],
    ['an IPv6 literal with a port', 'http://[::1]:8080/', ['[::1]:8080']],
    ['an upper-case IPv6 pattern', 'http://[2001:db8::1]/', ['[2001:DB8::1]']],
    ['a data: URL', 'data:text/html,<p>fake</p>', []],
    ['about:blank', 'about:blank', []],
    ['a blob: URL', 'blob:https://portal.example.test/00000000-0000-4000-8000-000000000000', []],
  ])('allows %s', (_what, url, hosts) => {
    expect(isAllowedUrl(url, hosts)).toBe(true);
  });

  it.each([
    ['a host not on the list', 'https://evil.example/', ['portal.example.test']],
    ['anything with an empty list', 'https://portal.example.test/', []],
    ['a subdomain of an exact host', 'https://a.portal.example.test/', ['portal.example.test']],
    ['the bare domain for *.domain', 'https://example.test/', ['*.example.test']],
    ['a look-alike of the domain for *.domain', 'https://evilexample.test/', ['*.example.test']],
    ['a look-alike subdomain for *.domain', 'https://app.evilexample.test/', ['*.example.test']],
    ['the domain as a prefix of another host', 'https://app.example.test.evil.example/', ['*.example.test']],
    ['the exact host as a prefix of another host', 'https://portal.example.test.evil.example/', ['portal.example.test']],
    ['the allowed host as userinfo', 'https://portal.example.test@evil.example/', ['portal.example.test']],
    ['the allowed host in the query', 'https://evil.example/?next=portal.example.test', ['portal.example.test']],
    ['another port than host:port', 'http://127.0.0.1:6379/', ['127.0.0.1:8080']],
    ['http when host:443 is allowed', 'http://portal.example.test/', ['portal.example.test:443']],
    ['another port for *.domain:port', 'https://app.example.test/', ['*.example.test:8443']],
    ['another IPv6 address', 'http://[::2]/', ['[::1]']],
    ['another port for an IPv6 literal', 'http://[::1]:9090/', ['[::1]:8080']],
    ['an IPv4 host for an IPv6 pattern', 'http://127.0.0.1/', ['[::1]']],
    ['ftp:', 'ftp://portal.example.test/file', ['portal.example.test']],
    ['file:', 'file:///etc/passwd', ['portal.example.test', '']],
    ['javascript:', 'javascript:alert(1)', ['portal.example.test']],
    ['chrome:', 'chrome://settings', ['settings']],
    ['a malformed URL', 'http://', ['portal.example.test']],
    ['a relative URL', '/login', ['portal.example.test']],
    ['an empty string', '', ['portal.example.test']],
    ['text', 'portal.example.test', ['portal.example.test']],
  ])('refuses %s', (_what, url, hosts) => {
    expect(isAllowedUrl(url, hosts)).toBe(false);
  });
});
