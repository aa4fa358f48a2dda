test('probe', async () => {
  const c = await import('openid-client');
  const p = await import('oidc-provider');
  expect(typeof c.discovery).toBe('function');
  expect(typeof p.default).toBe('function');
});
