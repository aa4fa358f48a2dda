import { safeNext } from './actions';

test('a step-up goes back to a console page only', () => {
  for (const ok of ['/console', '/console/bots/sleepy/1.0.0/promote', '/console/runs?bot=x&segment=demo']) expect(safeNext(ok)).toBe(ok);
  for (const bad of [
    '//evil.example/console',
    'https://evil.example/console',
    '/console/../v1/users',
    '/console/./x',
    '/console//evil.example',
    '/v1/me',
    '/consolex',
    '/console/x"><script>',
    '/console?next=%0d%0a\n',
    42,
    undefined,
  ]) {
    expect(safeNext(bad)).toBe('/console');
  }
});
