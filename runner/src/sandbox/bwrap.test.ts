import { bwrapArguments, SANDBOX_HOME } from './bwrap';

const spec = {
  codePaths: ['/srv/orderly/node_modules', '/srv/orderly/runner'],
  egressDir: '/tmp/orderly-egress-x',
  tmpBytes: 1024,
  fds: { seccomp: 4, info: 5, block: 6 },
  command: ['/usr/bin/node', '/srv/orderly/runner/dist/bot-host/host-main.js'],
};

/** Pairs `flag value [value]` as bwrap reads them, for asserting on what is bound where. */
function binds(args: string[], flag: string): string[] {
  return args.flatMap((arg, i) => (arg === flag ? [`${args[i + 1]} -> ${args[i + 2]}`] : []));
}

test('every namespace is new, user namespaces are closed inside, and no capability is kept', () => {
  const args = bwrapArguments(spec);
  for (const flag of ['--unshare-all', '--unshare-user', '--disable-userns', '--die-with-parent', '--new-session']) expect(args).toContain(flag);
  expect(args.slice(args.indexOf('--cap-drop'), args.indexOf('--cap-drop') + 2)).toEqual(['--cap-drop', 'ALL']);
  expect(args).not.toContain('--share-net');
  expect(args.slice(args.indexOf('--seccomp'), args.indexOf('--seccomp') + 2)).toEqual(['--seccomp', '4']);
});

test('only system paths and the code are visible, read-only; the egress socket directory is the one writable bind', () => {
  const args = bwrapArguments(spec);
  expect(binds(args, '--ro-bind')).toEqual([
    '/usr -> /usr',
    '/srv/orderly/node_modules -> /srv/orderly/node_modules',
    '/srv/orderly/runner -> /srv/orderly/runner',
  ]);
  expect(binds(args, '--bind')).toEqual(['/tmp/orderly-egress-x -> /run/orderly']);
  // /etc only in parts: never the whole of it, never the host's /home, /root, /var or /tmp.
  for (const hidden of ['/etc', '/home', '/root', '/var', '/tmp', '/run'])
    expect([...binds(args, '--ro-bind'), ...binds(args, '--ro-bind-try')].some((b) => b.startsWith(`${hidden} `))).toBe(false);
});

test('/tmp and HOME are private tmpfs of the given size, mounted before the code so a code path under /tmp stays visible', () => {
  const args = bwrapArguments({ ...spec, codePaths: ['/tmp/ci/main/node_modules'] });
  const tmpfs = args.flatMap((arg, i) => (arg === '--tmpfs' ? [`${args[i - 1]} ${args[i + 1]}`] : []));
  expect(tmpfs).toEqual(['1024 /tmp', `1024 ${SANDBOX_HOME}`]);
  expect(args.indexOf('/tmp/ci/main/node_modules')).toBeGreaterThan(args.lastIndexOf('--tmpfs'));
  expect(args.slice(args.indexOf('--'))).toEqual(['--', ...spec.command]);
});
