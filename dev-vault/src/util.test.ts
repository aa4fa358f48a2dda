import { loopbackBindAddress, startDevVault } from './server';
import { addressAllowed, decodeBase64Strict, formatGoDuration, parseDurationSeconds } from './util';

describe('durations', () => {
  it.each([
    [60, 60],
    ['60', 60],
    ['60s', 60],
    ['10m', 600],
    ['1h30m', 5400],
    ['1d', 86400],
    ['1.5h', 5400],
    ['', 0],
  ])('parses %p as %p seconds', (input, seconds) => {
    expect(parseDurationSeconds(input)).toBe(seconds);
  });

  it.each([['1x'], ['h'], ['-5'], [-5], [true], ['10m junk']])('refuses %p', (input) => {
    expect(parseDurationSeconds(input)).toBeUndefined();
  });

  it('formats like Go', () => {
    expect([0, 45, 600, 3600, 12319].map(formatGoDuration)).toEqual(['0s', '45s', '10m0s', '1h0m0s', '3h25m19s']);
  });
});

describe('base64 and CIDRs', () => {
  it('decodes only strict padded base64 (as Go does)', () => {
    expect(decodeBase64Strict('aGVsbG8=')?.toString()).toBe('hello');
    expect(decodeBase64Strict('Ab3==')).toBeUndefined();
    expect(decodeBase64Strict('aGVsbG8')).toBeUndefined();
  });

  it('checks addresses against CIDR lists, including IPv4-mapped IPv6', () => {
    expect(addressAllowed('127.0.0.1', [])).toBe(true);
    expect(addressAllowed('127.0.0.1', ['127.0.0.0/8'])).toBe(true);
    expect(addressAllowed('::ffff:127.0.0.1', ['127.0.0.1/32'])).toBe(true);
    expect(addressAllowed('10.1.2.3', ['127.0.0.0/8', '192.168.0.0/16'])).toBe(false);
    expect(addressAllowed('::1', ['::1/128'])).toBe(true);
  });
});

describe('loopback only', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['127.8.9.10', '127.8.9.10'],
    ['localhost', '127.0.0.1'],
    ['::1', '::1'],
    ['[::1]', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
  ])('binds %s as %s', (host, bound) => {
    expect(loopbackBindAddress(host)).toBe(bound);
  });

  it.each([['0.0.0.0'], ['::'], ['10.0.0.5'], ['192.168.1.10'], ['example.com'], ['::ffff:127.0.0.1'], ['128.0.0.1'], ['']])('refuses %p', (host) => {
    expect(() => loopbackBindAddress(host)).toThrow(
      expect.objectContaining({ code: 'ORDERLY_E_CONFIG_INVALID', message: expect.stringMatching(/only to loopback/) }),
    );
  });

  it('refuses to start on 0.0.0.0 before binding anything', async () => {
    await expect(startDevVault({ host: '0.0.0.0', port: 0 })).rejects.toMatchObject({ code: 'ORDERLY_E_CONFIG_INVALID' });
  });
});
