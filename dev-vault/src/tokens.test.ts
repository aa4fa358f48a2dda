import { TokenStore } from './tokens';

test('the auth block of a new or renewed token gives the granted TTL, even once a millisecond has passed', () => {
  let now = 1_700_000_000_000;
  const tokens = new TokenStore(() => now);
  const entry = tokens.create({ policies: ['default'], ttl: 300, renewable: true, path: 'auth/token/create' });
  now += 1;
  expect(tokens.authBlock(entry).lease_duration).toBe(300);
  now += 10_000;
  expect(tokens.renew(entry, 120).auth.lease_duration).toBe(120);
  now += 1;
  expect(tokens.authBlock(entry).lease_duration).toBe(120);
  // A lookup's `ttl` counts down as Vault's does.
  now += 1_500;
  expect(tokens.ttlOf(entry)).toBe(118);
});
