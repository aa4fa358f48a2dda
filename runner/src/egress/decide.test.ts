import { normalizeAddress } from './address-class';
import { HostAllowList } from './allow-list';
import { EgressLookup, InfrastructureAddress, decide, isInfrastructure } from './decide';

function fakeDns(table: Record<string, string[]>): EgressLookup & jest.Mock {
  return jest.fn((host: string) => {
    const found = table[host];
    if (!found) return Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }));
    return Promise.resolve(found.map((address) => ({ address, family: address.includes(':') ? (6 as const) : (4 as const) })));
  });
}

function infra(host: string, port: number, name?: string): InfrastructureAddress {
  const address = normalizeAddress(host);
  if (!address) throw new Error(`bad test address ${host}`);
  return { name, address, port };
}

const REDIS = infra('127.0.0.1', 6379);
const VAULT = infra('10.0.0.7', 8200, 'vault.internal.test');

describe('decide', () => {
  it('refuses everything without a policy, resolving nothing', async () => {
    const lookup = fakeDns({ 'portal.example.test': ['93.184.215.14'] });
    await expect(decide('portal.example.test', 443, undefined, [], lookup)).resolves.toEqual({ allowed: false, reason: 'no-policy' });
    expect(lookup).not.toHaveBeenCalled();
  });

  it('refuses an unlisted name without resolving it', async () => {
    const lookup = fakeDns({ 'exfil.attacker.test': ['93.184.215.14'] });
    await expect(decide('secret-value.exfil.attacker.test', 443, new HostAllowList(['portal.example.test']), [], lookup)).resolves.toEqual({
      allowed: false,
      reason: 'not-listed',
    });
    expect(lookup).not.toHaveBeenCalled();
  });

  it('allows a listed name at its public address', async () => {
    const lookup = fakeDns({ 'portal.example.test': ['93.184.215.14'] });
    await expect(decide('portal.example.test', 443, new HostAllowList(['portal.example.test:443']), [], lookup)).resolves.toEqual({
      allowed: true,
      addresses: ['93.184.215.14'],
    });
    expect(lookup).toHaveBeenCalledTimes(1);
  });

  it('refuses a wildcard name that resolves to a private address', async () => {
    const lookup = fakeDns({ 'app.example.test': ['10.1.2.3'] });
    await expect(decide('app.example.test', 443, new HostAllowList(['*.example.test']), [], lookup)).resolves.toEqual({
      allowed: false,
      reason: 'blocked-address',
    });
  });

  it.each(['127.0.0.1', '::ffff:127.0.0.1', '169.254.169.254', 'fd00:ec2::254', '100.64.1.1', '0.0.0.0', '224.0.0.1'])(
    'refuses a wildcard name resolving to %s',
    async (address) => {
      const lookup = fakeDns({ 'app.example.test': [address] });
      await expect(decide('app.example.test', 80, new HostAllowList(['*.example.test']), [], lookup)).resolves.toMatchObject({
        allowed: false,
        reason: 'blocked-address',
      });
    },
  );

  it('allows a private address the manifest names exactly', async () => {
    const lookup = fakeDns({ 'portal.internal.test': ['10.1.2.3'] });
    await expect(decide('portal.internal.test', 443, new HostAllowList(['portal.internal.test']), [], lookup)).resolves.toEqual({
      allowed: true,
      addresses: ['10.1.2.3'],
    });
    await expect(decide('10.1.2.3', 443, new HostAllowList(['10.1.2.3:443']), [], lookup)).resolves.toEqual({ allowed: true, addresses: ['10.1.2.3'] });
  });

  it('keeps only the public addresses of a wildcard name that also resolves inward', async () => {
    const lookup = fakeDns({ 'app.example.test': ['127.0.0.1', '93.184.215.14'] });
    await expect(decide('app.example.test', 443, new HostAllowList(['*.example.test']), [], lookup)).resolves.toEqual({
      allowed: true,
      addresses: ['93.184.215.14'],
    });
  });

  it('refuses an IP literal outside the list without resolving anything', async () => {
    const lookup = fakeDns({});
    await expect(decide('127.0.0.1', 6380, new HostAllowList(['127.0.0.1:3000']), [], lookup)).resolves.toEqual({ allowed: false, reason: 'not-listed' });
    expect(lookup).not.toHaveBeenCalled();
  });

  it('refuses infrastructure even when listed, by any loopback spelling', async () => {
    const lookup = fakeDns({ localhost: ['127.0.0.1', '::1'] });
    const everything = new HostAllowList(['127.0.0.1', '127.0.0.2', 'localhost', '[::1]', '[::ffff:7f00:1]', '0.0.0.0']);
    for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '[::1]', '[::ffff:7f00:1]', '0.0.0.0']) {
      await expect(decide(host, 6379, everything, [REDIS], lookup)).resolves.toEqual({ allowed: false, reason: 'infrastructure' });
    }
    await expect(decide('127.0.0.1', 3000, everything, [REDIS], lookup)).resolves.toEqual({ allowed: true, addresses: ['127.0.0.1'] });
  });

  it('refuses infrastructure by name before resolving it, and by its address under another name', async () => {
    const lookup = fakeDns({ 'vault-alias.example.test': ['10.0.0.7'] });
    const list = new HostAllowList(['vault.internal.test', 'vault-alias.example.test']);
    await expect(decide('vault.internal.test', 8200, list, [VAULT], lookup)).resolves.toEqual({ allowed: false, reason: 'infrastructure' });
    expect(lookup).not.toHaveBeenCalled();
    await expect(decide('vault-alias.example.test', 8200, list, [VAULT], lookup)).resolves.toEqual({ allowed: false, reason: 'infrastructure' });
  });

  it('answers unresolvable for a listed name with no address', async () => {
    await expect(decide('gone.example.test', 443, new HostAllowList(['gone.example.test']), [], fakeDns({}))).resolves.toEqual({
      allowed: false,
      reason: 'unresolvable',
    });
  });
});

describe('isInfrastructure', () => {
  it('treats an endpoint bound to the unspecified address as listening on every local and inward address', () => {
    const anywhere = [infra('0.0.0.0', 6379)];
    for (const target of ['127.0.0.1', '10.1.2.3', '::1', '0.0.0.0']) {
      expect(isInfrastructure(normalizeAddress(target)!, 6379, anywhere)).toBe(true);
    }
    expect(isInfrastructure(normalizeAddress('127.0.0.1')!, 6380, anywhere)).toBe(false);
  });

  it('does not confuse a public address with loopback infrastructure', () => {
    expect(isInfrastructure(normalizeAddress('93.184.215.14')!, 6379, [REDIS])).toBe(false);
  });
});
