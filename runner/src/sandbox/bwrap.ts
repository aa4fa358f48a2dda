import { dirname } from 'node:path';

/** What one sandbox gets: the only host paths it sees, its limits and the fds bwrap reads. */
export interface BwrapSpec {
  /** Host directories holding the runner's code (node_modules, dist): bound read-only, same path. */
  codePaths: readonly string[];
  /** The host directory holding the egress proxy's socket: bound read-write at `/run/orderly`. */
  egressDir: string | undefined;
  /** Size of the private /tmp and HOME tmpfs, in bytes. */
  tmpBytes: number;
  /** fds in the child: the seccomp program, bwrap's info output, the block until cgroups are joined. */
  fds: { seccomp: number; info: number; block: number };
  /** The program and arguments to run inside. */
  command: readonly string[];
}

export const SANDBOX_HOME = '/home/bot';
export const SANDBOX_EGRESS_SOCKET = '/run/orderly/egress.sock';

/**
 * System paths a browser and Node need, read-only. Only these parts of /etc: the rest of it (host
 * configuration, other services' files) is not the bot's business.
 */
const SYSTEM_PATHS = ['/usr'];
const ETC_PATHS = [
  '/etc/alternatives',
  '/etc/ca-certificates',
  '/etc/chromium',
  '/etc/chromium.d',
  '/etc/fonts',
  '/etc/ld.so.cache',
  '/etc/ld.so.conf',
  '/etc/ld.so.conf.d',
  '/etc/localtime',
  '/etc/mime.types',
  '/etc/ssl/certs',
  '/etc/ssl/openssl.cnf',
];
/** Debian's merged /usr: the top-level directories are symlinks into /usr. */
const USR_MERGE_LINKS: Array<[string, string]> = [
  ['usr/bin', '/bin'],
  ['usr/sbin', '/sbin'],
  ['usr/lib', '/lib'],
  ['usr/lib64', '/lib64'],
];

/**
 * bwrap's arguments for one run sandbox: every namespace new (user, pid, mount, ipc, uts, cgroup
 * and network, which has only its own loopback), no further user namespaces, no capabilities,
 * a new session (no terminal injection), death with the runner, read-only system and code, and
 * private tmpfs for /tmp and HOME. Nothing of the runner's data directory, token or keys is bound.
 */
export function bwrapArguments(spec: BwrapSpec): string[] {
  const args = ['--die-with-parent', '--new-session', '--unshare-all', '--unshare-user', '--disable-userns', '--cap-drop', 'ALL'];
  args.push('--seccomp', String(spec.fds.seccomp), '--info-fd', String(spec.fds.info), '--block-fd', String(spec.fds.block));
  for (const path of SYSTEM_PATHS) args.push('--ro-bind', path, path);
  for (const [target, link] of USR_MERGE_LINKS) args.push('--symlink', target, link);
  for (const path of ETC_PATHS) args.push('--ro-bind-try', path, path);
  args.push('--proc', '/proc', '--dev', '/dev');
  args.push('--size', String(spec.tmpBytes), '--tmpfs', '/tmp');
  args.push('--size', String(spec.tmpBytes), '--tmpfs', SANDBOX_HOME);
  for (const path of spec.codePaths) args.push('--ro-bind', path, path);
  if (spec.egressDir) args.push('--bind', spec.egressDir, dirname(SANDBOX_EGRESS_SOCKET));
  args.push('--chdir', SANDBOX_HOME, '--', ...spec.command);
  return args;
}

/** The environment inside: nothing of the runner's. */
export function sandboxEnvironment(): Record<string, string> {
  return { PATH: '/usr/bin:/bin', HOME: SANDBOX_HOME, TMPDIR: '/tmp', LANG: 'C.UTF-8' };
}
