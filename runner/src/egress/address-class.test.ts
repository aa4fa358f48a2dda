import { AddressClass, classifyAddress, normalizeAddress } from './address-class';

describe('classifyAddress', () => {
  it.each<[string, AddressClass]>([
    ['93.184.215.14', 'public'],
    ['8.8.8.8', 'public'],
    ['2606:4700:4700::1111', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fec0::1', 'private'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['2002:7f00:1::', 'reserved'],
    // IPv4 inside IPv6 is judged as the IPv4 address it reaches.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['[::ffff:7f00:1]', 'loopback'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['::ffff:100.64.0.1', 'cgnat'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['::127.0.0.1', 'loopback'],
    ['0:0:0:0:0:ffff:192.168.0.1', 'private'],
    ['not-an-ip', 'invalid'],
    ['256.0.0.1', 'invalid'],
    ['', 'invalid'],
  ])('%s is %s', (address, expected) => {
    expect(classifyAddress(address)).toBe(expected);
  });
});

describe('normalizeAddress', () => {
  it('unwraps IPv4-mapped IPv6 to the IPv4 address', () => {
    expect(normalizeAddress('::ffff:127.0.0.1')).toEqual(normalizeAddress('127.0.0.1'));
    expect(normalizeAddress('::ffff:7f00:1')).toEqual(normalizeAddress('127.0.0.1'));
  });

  it('expands :: in IPv6', () => {
    expect(normalizeAddress('2001:db8::1')).toEqual({ family: 6, hextets: [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1] });
  });

  it.each(['1::2::3', '1:2:3:4:5:6:7:8:9', 'g::1', '1.2.3'])('refuses %s', (address) => {
    expect(normalizeAddress(address)).toBeUndefined();
  });
});
