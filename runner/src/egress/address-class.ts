import { isIP } from 'node:net';

/**
 * What kind of destination an IP address is. Everything but `public` is refused by the egress
 * proxy unless the manifest names that host exactly: these are the runner's own machine, its
 * network, the cloud's metadata service and addresses that mean "anything" or "everyone".
 */
export type AddressClass =
  'public' | 'loopback' | 'private' | 'link-local' | 'metadata' | 'cgnat' | 'unspecified' | 'multicast' | 'broadcast' | 'reserved' | 'invalid';

/** An address reduced to what a connection reaches: IPv4 (also when embedded in IPv6) or IPv6. */
export type NormalizedAddress = { family: 4; value: number } | { family: 6; hextets: readonly number[] };

function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return value;
}

function parseIpv6(text: string): number[] | undefined {
  let rest = text.toLowerCase();
  const zone = rest.indexOf('%');
  if (zone >= 0) rest = rest.slice(0, zone);
  const tail: number[] = [];
  // An embedded dotted quad (`::ffff:127.0.0.1`) is two hextets.
  const lastColon = rest.lastIndexOf(':');
  if (rest.slice(lastColon + 1).includes('.')) {
    const v4 = parseIpv4(rest.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail.push(Math.floor(v4 / 65536), v4 % 65536);
    rest = rest.slice(0, lastColon + 1);
    if (!rest.endsWith('::')) rest = rest.slice(0, -1);
  }
  const toHextets = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    for (const h of s.split(':')) {
      if (!/^[0-9a-f]{1,4}$/.test(h)) return undefined;
      out.push(parseInt(h, 16));
    }
    return out;
  };
  const halves = rest.split('::');
  if (halves.length > 2) return undefined;
  const head = toHextets(halves[0] ?? '');
  const back = halves.length === 2 ? toHextets(halves[1] ?? '') : [];
  if (head === undefined || back === undefined) return undefined;
  const given = head.length + back.length + tail.length;
  if (halves.length === 2 ? given > 7 : given !== 8) return undefined;
  return [...head, ...new Array<number>(8 - given).fill(0), ...back, ...tail];
}

/**
 * Parses an IP literal (with or without IPv6 brackets) and unwraps IPv4 carried in IPv6
 * (IPv4-mapped `::ffff:0:0/96`, the old IPv4-compatible `::/96`, NAT64 `64:ff9b::/96`): a
 * connection to `::ffff:127.0.0.1` reaches 127.0.0.1, so it must be judged as 127.0.0.1.
 */
export function normalizeAddress(address: string): NormalizedAddress | undefined {
  const text = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const kind = isIP(text.split('%')[0] ?? '');
  if (kind === 4) {
    const value = parseIpv4(text);
    return value === undefined ? undefined : { family: 4, value };
  }
  if (kind !== 6) return undefined;
  const h = parseIpv6(text);
  if (h === undefined) return undefined;
  const embedded = (h[6] ?? 0) * 65536 + (h[7] ?? 0);
  const zeroTo = (n: number): boolean => h.slice(0, n).every((x) => x === 0);
  if (zeroTo(5) && h[5] === 0xffff) return { family: 4, value: embedded };
  if (h[0] === 0x64 && h[1] === 0xff9b && h.slice(2, 6).every((x) => x === 0)) return { family: 4, value: embedded };
  // `::` and `::1` are IPv6 themselves; other `::a.b.c.d` are the deprecated IPv4-compatible form.
  if (zeroTo(6) && embedded > 1) return { family: 4, value: embedded };
  return { family: 6, hextets: h };
}

/** A canonical text form of a normalized address, for comparing two addresses. */
export function addressKey(address: NormalizedAddress): string {
  if (address.family === 4) return `4:${address.value}`;
  return `6:${address.hextets.join(':')}`;
}

function inV4(value: number, base: string, bits: number): boolean {
  const start = parseIpv4(base) ?? 0;
  const size = 2 ** (32 - bits);
  return value >= start && value < start + size;
}

function classifyV4(value: number): AddressClass {
  if (value === parseIpv4('169.254.169.254')) return 'metadata';
  if (inV4(value, '0.0.0.0', 8)) return 'unspecified'; // Linux connects 0.0.0.0 to the local host.
  if (inV4(value, '127.0.0.0', 8)) return 'loopback';
  if (inV4(value, '10.0.0.0', 8) || inV4(value, '172.16.0.0', 12) || inV4(value, '192.168.0.0', 16)) return 'private';
  if (inV4(value, '169.254.0.0', 16)) return 'link-local';
  if (inV4(value, '100.64.0.0', 10)) return 'cgnat';
  if (value === 0xffffffff) return 'broadcast';
  if (inV4(value, '224.0.0.0', 4)) return 'multicast';
  if (
    inV4(value, '240.0.0.0', 4) ||
    inV4(value, '192.0.0.0', 24) ||
    inV4(value, '192.0.2.0', 24) ||
    inV4(value, '198.18.0.0', 15) ||
    inV4(value, '198.51.100.0', 24) ||
    inV4(value, '203.0.113.0', 24)
  ) {
    return 'reserved';
  }
  return 'public';
}

function classifyV6(h: readonly number[]): AddressClass {
  const [a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, last = 0] = h;
  const prefixZero = a === 0 && b === 0 && c === 0 && d === 0 && e === 0 && f === 0 && g === 0;
  if (prefixZero && last === 0) return 'unspecified';
  if (prefixZero && last === 1) return 'loopback';
  if (a === 0xfd00 && b === 0x0ec2 && c === 0 && d === 0 && e === 0 && f === 0 && g === 0 && last === 0x254) return 'metadata';
  if ((a & 0xfe00) === 0xfc00 || (a & 0xffc0) === 0xfec0) return 'private'; // unique local fc00::/7, old site-local fec0::/10
  if ((a & 0xffc0) === 0xfe80) return 'link-local';
  if ((a & 0xff00) === 0xff00) return 'multicast';
  if (a === 0x2001 && b === 0x0db8) return 'reserved'; // documentation
  if (a === 0x0100 && b === 0 && c === 0 && d === 0) return 'reserved'; // discard-only 100::/64
  if (a === 0x2002) return 'reserved'; // 6to4 embeds an IPv4 address a relay would reach
  if (a === 0 || a < 0x2000 || a > 0x3fff) return 'reserved'; // outside global unicast 2000::/3
  return 'public';
}

/** The class of an IP literal; `invalid` for anything that is not one. */
export function classifyAddress(address: string): AddressClass {
  const normalized = normalizeAddress(address);
  return normalized === undefined ? 'invalid' : classifyNormalized(normalized);
}

/** The class of an already normalized address. */
export function classifyNormalized(address: NormalizedAddress): AddressClass {
  return address.family === 4 ? classifyV4(address.value) : classifyV6(address.hextets);
}
